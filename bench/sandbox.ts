// Sandbox benchmark. API half: `up` to ready ≤ 2 s, median `kubectl get pods` round trip ≤ 150 ms
// with kubectl's own start-up, emulator RSS ≤ 150 MB after 1,000 objects. Workload half: `up`
// with every workload Ready ≤ 8 s, and the whole sandbox (daemon, redis-servers, exporters,
// Prometheus, beersystem) ≤ 600 MB RSS after redis-shared is applied and beersystem moved to it.
// Run with `npm run bench:sandbox` (`--fake-only` skips the real workloads).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { TS_LOADER } from '../lib/config.ts';
import { type SandboxNetwork, tofuNetworkVars } from '../sandbox/lb-pool.ts';
import { processTreeRssBytes } from '../sandbox/workloads/measure.ts';
import { median } from './measure.ts';

const REPO = dirname(dirname(fileURLToPath(import.meta.url)));
const CLI = join(REPO, 'sandbox', 'cli.ts');
const KUBECTL_RUNS = 20;
const OBJECTS = 1000;

export interface SandboxBenchResult {
  upMs: number;
  upRealMs?: number;
  applyMs?: number;
  wholeRssMb?: number;
  kubectlMedianMs: number;
  rssMbAfterObjects: number;
}

interface Up {
  url: string;
  kubeconfig: string;
  pid: number;
  network: SandboxNetwork;
}

function cli(
  runDir: string,
  args: string[],
): { status: number | null; stdout: string; stderr: string; ms: number } {
  const start = process.hrtime.bigint();
  const res = spawnSync(process.execPath, ['--import', TS_LOADER, CLI, ...args], {
    cwd: REPO,
    env: { ...process.env, SANDBOX_RUN_DIR: runDir },
    encoding: 'utf8',
  });
  return {
    status: res.status,
    stdout: res.stdout,
    stderr: res.stderr,
    ms: Number(process.hrtime.bigint() - start) / 1e6,
  };
}

function up(runDir: string, extra: string[]): { up: Up; ms: number } {
  const res = cli(runDir, ['up', '--json', ...extra]);
  if (res.status !== 0) throw new Error(`sandbox up failed (${res.status}): ${res.stderr}`);
  return { up: JSON.parse(res.stdout) as Up, ms: res.ms };
}

function rssMb(pid: number): number {
  const kb = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
  return Number(kb) / 1024;
}

async function createObjects(url: string, count: number): Promise<void> {
  for (let i = 0; i < count; i++) {
    const res = await fetch(`${url}/api/v1/namespaces/default/configmaps`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: { name: `bench-${i}`, labels: { bench: 'yes' } },
        data: { payload: 'x'.repeat(512) },
      }),
    });
    if (res.status !== 201) throw new Error(`creating object ${i} answered ${res.status}`);
  }
}

/** tofu stand-in apply of the root module with the migration on, then every pod Ready. */
function applyRedisShared(runDir: string, kubeconfig: string, network: SandboxNetwork): number {
  const vars = tofuNetworkVars(network);
  const env = {
    ...process.env,
    SANDBOX_RUN_DIR: runDir,
    KUBECONFIG: kubeconfig,
    KUBECACHEDIR: join(runDir, 'kube-cache'),
    TF_VAR_kube_context: 'sandbox',
    TF_VAR_kubeconfig_path: kubeconfig,
    TF_VAR_lb_ip: vars.lb_ip,
    TF_VAR_private_cidr: vars.private_cidr,
  };
  const start = process.hrtime.bigint();
  const apply = spawnSync(
    join(REPO, 'sandbox', 'bin', 'tofu'),
    ['apply', '-auto-approve', '-var', 'enable_beersystem_migration=true'],
    { cwd: join(REPO, 'terraform', 'environments', 'chocolandiadc-mvp'), env, encoding: 'utf8' },
  );
  if (apply.status !== 0) throw new Error(`tofu apply failed: ${apply.stderr}`);
  const wait = spawnSync(
    'kubectl',
    ['wait', '--for=condition=Ready', 'pods', '--all', '-A', '--timeout=60s'],
    { env, encoding: 'utf8' },
  );
  if (wait.status !== 0) throw new Error(`pods did not become Ready: ${wait.stderr}`);
  return Number(process.hrtime.bigint() - start) / 1e6;
}

function line(label: string, value: number, unit: string, target: number): void {
  const verdict = value <= target ? 'met' : 'MISSED';
  console.log(
    `${label.padEnd(34)} ${value.toFixed(0).padStart(6)} ${unit.padEnd(3)} (target ≤ ${target} ${unit}: ${verdict})`,
  );
}

async function main(): Promise<SandboxBenchResult> {
  const runDir = mkdtempSync(join(tmpdir(), 'sandbox-bench-'));
  const result: Partial<SandboxBenchResult> = {};
  try {
    const started = up(runDir, ['--fake']);
    result.upMs = started.ms;
    const env = {
      ...process.env,
      KUBECONFIG: started.up.kubeconfig,
      KUBECACHEDIR: join(runDir, 'kube-cache'),
    };
    // The first call fills kubectl's discovery cache, as an operator's first command would.
    spawnSync('kubectl', ['get', 'pods', '-A'], { env, stdio: 'ignore' });
    const times: number[] = [];
    for (let i = 0; i < KUBECTL_RUNS; i++) {
      const start = process.hrtime.bigint();
      const res = spawnSync('kubectl', ['get', 'pods', '-A'], { env, stdio: 'ignore' });
      if (res.status !== 0) throw new Error(`kubectl get pods exited ${res.status}`);
      times.push(Number(process.hrtime.bigint() - start) / 1e6);
    }
    result.kubectlMedianMs = median(times);
    await createObjects(started.up.url, OBJECTS);
    result.rssMbAfterObjects = rssMb(started.up.pid);
    const down = cli(runDir, ['down']);
    if (down.status !== 0) throw new Error(`sandbox down failed: ${down.stderr}`);
    if (!process.argv.includes('--fake-only')) {
      const real = up(runDir, []);
      result.upRealMs = real.ms;
      result.applyMs = applyRedisShared(runDir, real.up.kubeconfig, real.up.network);
      result.wholeRssMb = processTreeRssBytes(real.up.pid) / 2 ** 20;
    }
  } finally {
    cli(runDir, ['down']);
    rmSync(runDir, { recursive: true, force: true });
  }
  return result as SandboxBenchResult;
}

const result = await main();
line('up (fake workloads) to ready', result.upMs, 'ms', 2000);
if (result.upRealMs !== undefined) {
  line('up (real workloads) to all Ready', result.upRealMs, 'ms', 8000);
  console.log(
    `${'tofu apply + migration to all Ready'.padEnd(34)} ${result.applyMs?.toFixed(0).padStart(6)} ms  (no target)`,
  );
  line('whole sandbox RSS after apply', result.wholeRssMb ?? 0, 'MB', 600);
}
line(`kubectl get pods -A, median of ${KUBECTL_RUNS}`, result.kubectlMedianMs, 'ms', 150);
line(`emulator RSS after ${OBJECTS} more objects`, result.rssMbAfterObjects, 'MB', 150);
