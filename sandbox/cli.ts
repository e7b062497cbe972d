// npm run sandbox -- up [--fake] [--json] | down | status | fault … | age <duration>
// Starts the rehearsal cluster as a background daemon (this same file, `daemon`), writes the
// files a shell and the runbooks need, and stops it again leaving no process behind.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { request } from './http-request.ts';
import {
  runbookNetworkSettings,
  type SandboxNetwork,
  sandboxNetwork,
  tofuNetworkVars,
} from './lb-pool.ts';

const SANDBOX_DIR = dirname(fileURLToPath(import.meta.url));
const REPO = dirname(SANDBOX_DIR);
/** Tests point this at a temp dir so they never touch a developer's running sandbox. */
const RUN_DIR = resolve(process.env.SANDBOX_RUN_DIR ?? join(SANDBOX_DIR, '.run'));
const STATE_FILE = join(RUN_DIR, 'state.json');
const DAEMON_LOG = join(RUN_DIR, 'logs', 'daemon.log');
// Every process the daemon starts inherits this, so `down` can find anything left behind.
const INSTANCE_ENV = 'REDIS_SHARED_SANDBOX_INSTANCE';

const USAGE = `Usage: npm run sandbox -- <command>

  up [--fake] [--json] [--metallb-version vX.Y.Z] [--servicelb]
                         start the sandbox cluster in the background (--fake: no real
                         processes; --metallb-version: behave as that MetalLB release, default
                         the current one; --servicelb: K3s's ServiceLB runs beside MetalLB)
  down                   stop it and everything it started
  status                 is it running, where, how many objects
  fault api-error <n> <code>
                         fail the next n mutating API requests with that HTTP code
  fault read-error <n> <code>
                         fail the next n API reads (GET, not watches) with that HTTP code
  fault throttle <n> <seconds>
                         answer the next n API requests 429 with Retry-After: <seconds>
  fault drop-watches     end every open watch now (clients must list and watch again)
  fault heal             clear every fault
  fault <args…>          a workload fault (see sandbox/README.md), e.g. fault kill <ns>/<pod>
  fault slow-ready <ns> <seconds>
                         app pods of <ns> pass readiness only that long after they start
  fault not-ready <ns> <text>
                         app pods of <ns> whose REDIS_HOST contains <text> never become Ready
  age <duration>         move the migration record back in time, e.g. age 24h
`;

// Every fault the sandbox knows: the API's (sandbox/api/faults.ts) and the workloads'
// (sandbox/workloads/faults.ts).
const FAULT_USAGE = `Usage: npm run sandbox -- fault <fault>

  api-error <n> <code>   fail the next n mutating API requests with that HTTP code (e.g. 2 500)
  kill <ns>/<pod>        the pod's main process dies; it restarts after the crash back-off
  partition <ns>/<pod>   the Service proxies cut and refuse its connections (replication down)
  heal                   clear every fault: API errors pending, partitions

e.g. npm run sandbox -- fault kill redis/redis-shared-master-0
`;

export interface SandboxState {
  pid: number;
  url: string;
  kubeconfig: string;
  fake: boolean;
  startedAt: string;
  /** Its LoadBalancer pool: the settings files point the runbooks at it. */
  network: SandboxNetwork;
}

/** What `up --json` prints. */
export interface UpResult {
  url: string;
  kubeconfig: string;
  env: string;
  envSandbox: string;
  pid: number;
  /** Its LoadBalancer pool (slot 0 for fake workloads, which listen on no address). */
  network: SandboxNetwork;
}

function readState(): SandboxState | undefined {
  try {
    return JSON.parse(readFileSync(STATE_FILE, 'utf8')) as SandboxState;
  } catch {
    return undefined;
  }
}

/** A zombie counts as gone: the daemon is nobody's child once `up` has exited. */
function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

const repoPath = (path: string) => {
  const rel = relative(REPO, path);
  return rel.startsWith('..') || isAbsolute(rel) ? path : rel;
};

function writeShellFiles(url: string, network: SandboxNetwork): UpResult & { pid: number } {
  const kubeconfig = join(RUN_DIR, 'kubeconfig');
  const env = join(RUN_DIR, 'env');
  const envSandbox = join(RUN_DIR, '.env.sandbox');
  const bin = join(SANDBOX_DIR, 'bin');
  writeFileSync(
    env,
    [
      '# Source this file: kubectl (and the tofu stand-in) then talk to the sandbox.',
      `export KUBECONFIG='${kubeconfig}'`,
      `export KUBECACHEDIR='${join(RUN_DIR, 'kube-cache')}'`,
      `export PATH='${bin}':"$PATH"`,
      // The tofu stand-in applies only where its variables point, as the real root module does.
      'export TF_VAR_kube_context=sandbox',
      `export TF_VAR_kubeconfig_path='${kubeconfig}'`,
      ...Object.entries(tofuNetworkVars(network)).map(([k, v]) => `export TF_VAR_${k}='${v}'`),
      '',
    ].join('\n'),
  );
  writeFileSync(
    envSandbox,
    [
      "# The runbooks' settings for the sandbox (see .env.example for what each one means).",
      'KUBE_CONTEXT=sandbox',
      `KUBECONFIG=${kubeconfig}`,
      ...Object.entries(runbookNetworkSettings(network)).map(([k, v]) => `${k}=${v}`),
      `TOFU_BIN=${join(bin, 'tofu')}`,
      `AUDIT_LOG=${repoPath(join(RUN_DIR, 'audit.jsonl'))}`,
      `BACKUP_DIR=${repoPath(join(RUN_DIR, 'backups'))}`,
      `REPORT_DIR=${repoPath(join(RUN_DIR, 'reports'))}`,
      // The sandbox's addresses stay out of the tracked docs/ip-assignments.md.
      `IP_TABLE_FILE=${repoPath(join(RUN_DIR, 'ip-assignments.md'))}`,
      '',
    ].join('\n'),
  );
  return { url, kubeconfig, env, envSandbox, pid: readState()?.pid ?? 0, network };
}

function printUsage(result: UpResult): void {
  console.log(`sandbox is up at ${result.url} (pid ${result.pid})

  source ${repoPath(result.env)}            # kubectl now talks to the sandbox
  kubectl get pods -A
  ./runbooks/<runbook>.mts --env-file ${repoPath(result.envSandbox)}

  npm run sandbox -- status | fault … | age 24h | down`);
}

/** The cluster settings `up` passes to the daemon: `--metallb-version <v>`, `--servicelb`. */
export function clusterSettings(args: string[]): { metallbVersion?: string; serviceLb?: boolean } {
  const at = args.indexOf('--metallb-version');
  const version = at >= 0 ? args[at + 1] : undefined;
  if (at >= 0 && !/^v?\d+\.\d+\.\d+$/.test(version ?? '')) {
    throw new Error(
      `--metallb-version needs a release such as v0.14.8, not ${JSON.stringify(version ?? '')}`,
    );
  }
  return {
    ...(version ? { metallbVersion: version.startsWith('v') ? version : `v${version}` } : {}),
    ...(args.includes('--servicelb') ? { serviceLb: true } : {}),
  };
}

function settingArgs(settings: ReturnType<typeof clusterSettings>): string[] {
  return [
    ...(settings.metallbVersion ? ['--metallb-version', settings.metallbVersion] : []),
    ...(settings.serviceLb ? ['--servicelb'] : []),
  ];
}

async function up(args: string[]): Promise<number> {
  const json = args.includes('--json');
  const fake = args.includes('--fake');
  let settings: ReturnType<typeof clusterSettings>;
  try {
    settings = clusterSettings(args);
  } catch (err) {
    console.error(`sandbox: ${(err as Error).message}`);
    return 2;
  }
  const running = readState();
  if (running && isAlive(running.pid)) {
    const result = writeShellFiles(running.url, running.network ?? sandboxNetwork(0));
    if (json) console.log(JSON.stringify(result));
    else printUsage(result);
    return 0;
  }
  rmSync(STATE_FILE, { force: true });
  mkdirSync(join(RUN_DIR, 'logs'), { recursive: true });
  const log = openSync(DAEMON_LOG, 'a');
  const child = spawn(
    process.execPath,
    [
      // The daemon starts from its cached bundle (launch.mjs), without a loader thread.
      join(SANDBOX_DIR, 'launch.mjs'),
      fileURLToPath(import.meta.url),
      'daemon',
      ...(fake ? ['--fake'] : []),
      ...settingArgs(settings),
    ],
    {
      cwd: REPO,
      detached: true,
      stdio: ['ignore', log, log, 'ipc'],
      env: { ...process.env, SANDBOX_RUN_DIR: RUN_DIR, [INSTANCE_ENV]: RUN_DIR },
    },
  );
  const outcome = await daemonOutcome(child);
  if (child.connected) child.disconnect();
  if (outcome.type === 'error') {
    console.error(`sandbox: ${outcome.message}`);
    await reap(child);
    return outcome.exitCode ?? 1;
  }
  child.unref();
  const result = writeShellFiles(outcome.url, outcome.network);
  if (json) console.log(JSON.stringify(result));
  else printUsage(result);
  return 0;
}

/** Waits until a daemon that failed to start has exited (killing it if it lingers). */
async function reap(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}

type DaemonMessage =
  | { type: 'ready'; url: string; network: SandboxNetwork }
  | { type: 'error'; message: string; exitCode?: number };

function daemonOutcome(child: ChildProcess): Promise<DaemonMessage> {
  return new Promise((resolveOutcome) => {
    child.once('message', (msg) => resolveOutcome(msg as DaemonMessage));
    child.once('exit', (code) => {
      let tail = '';
      try {
        tail = readFileSync(DAEMON_LOG, 'utf8').trim().split('\n').slice(-15).join('\n');
      } catch {}
      resolveOutcome({
        type: 'error',
        message: `the sandbox daemon exited (code ${code}) before it was ready; its log (${DAEMON_LOG}) ends with:\n${tail}`,
        exitCode: 1,
      });
    });
  });
}

/** Processes that belong to this sandbox: the daemon's process group, or marked by its env. */
function leftovers(daemonPid: number): number[] {
  const found: number[] = [];
  const marker = `${INSTANCE_ENV}=${RUN_DIR}`;
  for (const entry of readdirSync('/proc')) {
    const pid = Number(entry);
    if (!Number.isInteger(pid) || pid === process.pid) continue;
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (fields[0] === 'Z') continue;
      if (Number(fields[2]) === daemonPid) {
        found.push(pid);
        continue;
      }
      if (readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').includes(marker))
        found.push(pid);
    } catch {
      // Gone meanwhile, or not ours to read.
    }
  }
  return found;
}

async function waitGone(pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (isAlive(pid)) {
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 50));
  }
  return true;
}

async function down(): Promise<number> {
  const state = readState();
  if (!state || !isAlive(state.pid)) {
    rmSync(STATE_FILE, { force: true });
    const left = state ? leftovers(state.pid) : [];
    if (left.length === 0) {
      console.log('sandbox is not running');
      return 0;
    }
    return killLeftovers(left);
  }
  process.kill(state.pid, 'SIGTERM');
  if (!(await waitGone(state.pid, 30_000))) {
    process.kill(state.pid, 'SIGKILL');
    console.error(`sandbox: the daemon (pid ${state.pid}) did not stop within 30 s and was killed`);
    return killLeftovers(leftovers(state.pid)) || 1;
  }
  rmSync(STATE_FILE, { force: true });
  const left = leftovers(state.pid);
  if (left.length) return killLeftovers(left);
  console.log(`sandbox stopped (pid ${state.pid}); nothing left running`);
  return 0;
}

function killLeftovers(pids: number[]): number {
  const described = pids.map((pid) => {
    let cmd = '';
    try {
      cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').slice(0, 80);
    } catch {}
    return `${pid} ${cmd}`;
  });
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {}
  }
  console.error(
    `sandbox: these processes outlived the sandbox and were killed (a bug to report):\n  ${described.join('\n  ')}`,
  );
  return 1;
}

async function adminCall(path: string, body: unknown): Promise<number> {
  const state = readState();
  if (!state || !isAlive(state.pid)) {
    console.error('sandbox: not running; start it with `npm run sandbox -- up`');
    return 1;
  }
  const res = await request(`${state.url}${path}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
  });
  const answer = JSON.parse(res.text) as { message?: string };
  if (res.status < 200 || res.status >= 300) {
    console.error(`sandbox: ${answer.message ?? res.statusText}`);
    return 1;
  }
  console.log(answer.message ?? 'ok');
  return 0;
}

async function status(): Promise<number> {
  const state = readState();
  if (!state || !isAlive(state.pid)) {
    console.log('sandbox is not running');
    return 1;
  }
  try {
    const res = await request(`${state.url}/sandbox/status`);
    const info = JSON.parse(res.text) as { objects: number; pendingApiErrors: number };
    console.log(
      `sandbox is running at ${state.url} (pid ${state.pid}, ${state.fake ? 'fake' : 'real'} workloads, since ${state.startedAt}): ${info.objects} objects${info.pendingApiErrors ? `, ${info.pendingApiErrors} API errors armed` : ''}`,
    );
    return 0;
  } catch (err) {
    console.error(
      `sandbox: pid ${state.pid} is alive but ${state.url} does not answer: ${(err as Error).message}`,
    );
    return 1;
  }
}

async function daemon(args: string[]): Promise<void> {
  const send = (msg: DaemonMessage) => process.send?.(msg);
  const fake = args.includes('--fake');
  const { startSandbox } = await import('./server.ts');
  let runtime: import('./runtime.ts').PodRuntime | undefined;
  let plugins: import('./runtime.ts').SandboxPlugin[] = [];
  let network: SandboxNetwork | undefined;
  if (!fake) {
    try {
      const { createWorkloads } = await import('./workloads/index.ts');
      ({ runtime, plugins, network } = await createWorkloads({ runDir: RUN_DIR }));
    } catch (err) {
      send({ type: 'error', message: (err as Error).message, exitCode: 2 });
      process.exit(2);
    }
  }
  // A bug in one controller or plugin is logged; the daemon keeps serving so `down` still works.
  process.on('uncaughtException', (err) => console.error(`sandbox: uncaught: ${err.stack ?? err}`));
  process.on('unhandledRejection', (err) =>
    console.error(`sandbox: unhandled rejection: ${(err as Error)?.stack ?? err}`),
  );
  const sandbox = await startSandbox({
    runDir: RUN_DIR,
    ...(runtime ? { runtime } : {}),
    ...(network ? { network } : {}),
    plugins,
    ...clusterSettings(args),
  });
  let stopping = false;
  const shutdown = async () => {
    if (stopping) return;
    stopping = true;
    await sandbox.stop();
    rmSync(STATE_FILE, { force: true });
    process.exit(0);
  };
  process.on('SIGTERM', shutdown);
  process.on('SIGINT', shutdown);
  try {
    await sandbox.settled(runtime ? 120_000 : 30_000);
  } catch (err) {
    send({ type: 'error', message: (err as Error).message, exitCode: 1 });
    await shutdown();
  }
  const state: SandboxState = {
    pid: process.pid,
    url: sandbox.url,
    kubeconfig: sandbox.kubeconfigPath,
    fake: !runtime,
    startedAt: new Date().toISOString(),
    network: sandbox.network,
  };
  writeFileSync(STATE_FILE, `${JSON.stringify(state, null, 2)}\n`);
  console.log(`sandbox daemon ready at ${sandbox.url} (pid ${process.pid})`);
  send({ type: 'ready', url: sandbox.url, network: sandbox.network });
  process.disconnect?.();
}

async function main(argv: string[]): Promise<number> {
  const [command, ...args] = argv;
  switch (command) {
    case 'up':
      return up(args);
    case 'down':
      return down();
    case 'status':
      return status();
    case 'fault':
      if (args.length === 0 || args[0] === '--help' || args[0] === '-h') {
        process.stdout.write(FAULT_USAGE);
        return args.length === 0 ? 2 : 0;
      }
      return adminCall('/sandbox/fault', { args });
    case 'age':
      if (args.length !== 1) break;
      return adminCall('/sandbox/age', { duration: args[0] });
    case 'daemon':
      await daemon(args);
      return -1;
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      console.log(USAGE);
      return 0;
  }
  console.error(USAGE);
  return 64;
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exit(code);
  },
  (err) => {
    console.error(`sandbox: ${(err as Error).message}`);
    process.exit(1);
  },
);
