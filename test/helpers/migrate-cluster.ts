// A whole sandbox where 02–04 are done, for the tests of 05-migrate, 06-decommission and 07-polish:
// the API emulator, real redis-server, exporter and Prometheus, the beersystem stand-in, real
// kubectl and the tofu stand-in. The phases before 05 are laid down by the tofu stand-in and
// recorded as completed, so a test starts where 05 starts; each runbook runs as a real child
// process, and every output is kept for the password check.
import './exit-promptly.ts';
import { execFile, spawn } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import type { Test } from 'tap';
import { AuditLog, readAuditEntries } from '../../lib/audit/audit.ts';
import { logIdOf } from '../../lib/audit/cluster-records.ts';
import type { JournalEntry } from '../../sandbox/api/journal.ts';
import { runbookNetworkSettings } from '../../sandbox/lb-pool.ts';
import { POD } from '../../sandbox/workloads/kinds.ts';
import { replicaLinkUp } from '../../sandbox/workloads/probes.ts';
import { jsonLines } from './json-lines.ts';
import { LOADER, REPO, type RunningCli, startCli, withoutCoverage } from './run-cli.ts';
import { secretPassword } from './secret.ts';
import { eventually } from './workloads-cluster.ts';
import {
  ENVIRONMENT_DIR,
  type SandboxFixture,
  sandboxVars,
  startWholeSandbox,
  TOFU,
} from './workloads-sandbox.ts';

const exec = promisify(execFile);

export const MIGRATE = join(REPO, 'runbooks', '05-migrate.mts');
export const DECOMMISSION = join(REPO, 'runbooks', '06-decommission.mts');
export const POLISH = join(REPO, 'runbooks', '07-polish.mts');
export const AUDIT = join(REPO, 'runbooks', 'audit.mts');

export interface Cluster {
  fx: SandboxFixture;
  /** audit log, backups, reports: everything the runbooks write, apart from the sandbox */
  out: string;
  env: Record<string, string>;
  /** every stdout and stderr of every run, for the password check */
  outputs: string[];
  password: string;
  oldPassword: string;
  run(
    script: string,
    args: string[],
    input?: string,
  ): Promise<{ code: number | null; stdout: string; stderr: string }>;
  start(script: string, args: string[]): RunningCli;
  journal(): JournalEntry[];
  kubectl(args: string[]): Promise<string>;
  proxy(path: string): Promise<{ status: number; body: Record<string, unknown> }>;
}

export async function startCluster(t: Test): Promise<Cluster> {
  const fx = await startWholeSandbox();
  const out = mkdtempSync(join(tmpdir(), 'runbooks-05-07-'));
  t.teardown(async () => {
    await fx.close();
    rmSync(out, { recursive: true, force: true });
  });
  // Phase 2 as 02-deploy leaves it: redis-shared applied, migration off.
  await exec(TOFU, ['apply', '-auto-approve', ...sandboxVars(fx.sandbox.network)], {
    env: fx.env,
    cwd: ENVIRONMENT_DIR,
    maxBuffer: 16 << 20,
  });
  const auditLog = join(out, 'audit.jsonl');
  // Their completions, where `requires` reads them: the runbooks' record in the cluster (and the
  // audit log, which counts only when no cluster answers).
  const records: string[] = [];
  for (const runbook of ['02-deploy', '03-access', '04-monitoring']) {
    const audit = new AuditLog(auditLog, { run_id: `fixture-${runbook}`, runbook });
    await audit.append({ event: 'run-start', detail: { mode: 'default', fixture: true } });
    const end = await audit.append({
      event: 'run-end',
      outcome: 'ok',
      detail: { complete: true, mode: 'default', fixture: true },
    });
    const record = {
      run_id: `fixture-${runbook}`,
      operator: 'test',
      host: 'test',
      time: end.ts,
      git_rev: null,
      audit_head: {
        log_id: logIdOf((await readAuditEntries(auditLog))[0]!),
        seq: end.seq,
        hash: end.hash,
      },
    };
    records.push(`--from-literal=${runbook}=${JSON.stringify(record)}`);
  }
  await fx.kubectl(['create', 'configmap', 'redis-shared-runbooks', '-n', 'default', ...records]);
  const secret = (ns: string, name: string) => secretPassword((a) => fx.kubectl(a), ns, name);
  const password = await secret('redis', 'redis-credentials');
  // 02-deploy (T014) and 03-access (T019) leave the replica in sync with the master; so does this
  // stand-in for them, or a test's migration would start while the replica still syncs.
  await eventually(
    'redis-shared-replicas-0 in sync with the master',
    async () => {
      const ip: string | undefined = fx.object(POD, 'redis', 'redis-shared-replicas-0').status
        ?.podIP;
      return ip !== undefined && (await replicaLinkUp(ip, 6379, password));
    },
    60_000,
  );
  const env = {
    KUBE_CONTEXT: 'sandbox',
    KUBECONFIG: fx.sandbox.kubeconfigPath,
    KUBECACHEDIR: join(out, 'kube-cache'),
    ...runbookNetworkSettings(fx.sandbox.network),
    TOFU_BIN: TOFU,
    AUDIT_LOG: auditLog,
    BACKUP_DIR: join(out, 'backups'),
    REPORT_DIR: join(out, 'reports'),
    SANDBOX_RUN_DIR: fx.runDir,
    // The runbooks' own temp files (saved plans, which hold the password) land in `out`, so the
    // password check sees any left behind.
    TMPDIR: join(out, 'tmp'),
  };
  mkdirSync(env.TMPDIR, { recursive: true });
  const outputs: string[] = [];
  const cluster: Cluster = {
    fx,
    out,
    env,
    outputs,
    password,
    oldPassword: await secret('beersystem', 'beersystem-redis'),
    async run(script, args, input) {
      const r = await startCli(script, ['--env-file', '/dev/null', ...args], {
        env,
        ...(input ? { input } : {}),
      }).result;
      outputs.push(r.stdout, r.stderr);
      return r;
    },
    start(script, args) {
      const running = startCli(script, ['--env-file', '/dev/null', ...args], { env });
      running.result.then((r) => outputs.push(r.stdout, r.stderr));
      return running;
    },
    journal() {
      const text = (() => {
        try {
          return readFileSync(fx.sandbox.journalPath, 'utf8');
        } catch {
          return '';
        }
      })();
      return jsonLines<JournalEntry>(text);
    },
    kubectl: (args) => fx.kubectl(args),
    async proxy(path) {
      const res = await fetch(
        `${fx.sandbox.url}/api/v1/namespaces/beersystem/services/beersystem:8080/proxy${path}`,
      );
      const text = await res.text();
      let body: Record<string, unknown> = {};
      try {
        body = JSON.parse(text);
      } catch {}
      return { status: res.status, body };
    },
  };
  return cluster;
}

/** Fields of the beersystem Deployment, as kubectl's jsonpath prints them. */
export function beersystemFields(c: Cluster, jsonpath: string): Promise<string> {
  return c.kubectl([
    'get',
    'deployment',
    'beersystem',
    '-n',
    'beersystem',
    '-o',
    `jsonpath=${jsonpath}`,
  ]);
}

export function beersystemEnv(c: Cluster): Promise<string> {
  return beersystemFields(c, '{.spec.replicas} {.spec.template.spec.containers[0].env[0].value}');
}

/** A client on the old Redis under `name`, as a forgotten application would hold one. */
export async function oldRedisClient(c: Cluster, name: string): Promise<Redis> {
  const client = new Redis({
    host: await oldRedisPodIp(c),
    port: 6379,
    password: c.oldPassword,
    connectionName: name,
    lazyConnect: true,
  });
  client.on('error', () => {});
  await client.connect();
  return client;
}

// A real run takes the Lease and writes the runbooks' record: bookkeeping, not a change.
export const BOOKKEEPING =
  /^\/(apis\/coordination\.k8s\.io\/v1\/namespaces\/default\/leases|api\/v1\/namespaces\/default\/configmaps)(\/[\w-]+)?(\?.*)?$/;

export function mutations(entries: JournalEntry[]): JournalEntry[] {
  return entries.filter((e) => !e.dryRun && !BOOKKEEPING.test(e.path));
}

export function scalesOfBeersystem(entries: JournalEntry[]): JournalEntry[] {
  return entries.filter((e) => e.path.includes('/deployments/beersystem/scale') && !e.dryRun);
}

export async function oldRedisPodIp(c: Cluster): Promise<string> {
  return (
    await c.kubectl([
      'get',
      'pods',
      '-n',
      'beersystem',
      '-l',
      'app=redis',
      '-o',
      'jsonpath={.items[0].status.podIP}',
    ])
  ).trim();
}

/** Every file the runbooks wrote, and every output, must be free of both passwords. */
export function assertNoPassword(t: Test, c: Cluster, extraFiles: string[] = []): void {
  t.same(
    readdirSync(c.env.TMPDIR!).filter((name) => /^beersystem-(migration|rollback)-/.test(name)),
    [],
    'no saved plan in TMPDIR',
  );
  t.same(
    existsSync(join(c.out, 'plans')) ? readdirSync(join(c.out, 'plans')) : [],
    [],
    'no saved plan outlives its attempt',
  );
  const files = [...listFiles(c.out), ...extraFiles];
  for (const secret of [c.password, c.oldPassword]) {
    t.ok(secret.length >= 8, 'the password is known to the test');
    t.notOk(
      c.outputs.some((o) => o.includes(secret)),
      'no password in any output',
    );
    const leaking = files.filter((f) => readFileSync(f).includes(secret));
    t.same(leaking, [], `no password in ${files.length} files (audit log, backups, reports)`);
  }
}

export function listFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...listFiles(path));
    else out.push(path);
  }
  return out;
}

/** When the terminal shows `when`, run `first` (if any), then type `send`. */
export interface Answer {
  when: RegExp;
  send: string;
  first?: () => Promise<unknown>;
}

/**
 * Runs 05 in a pseudo-terminal (script(1)), answering its questions in order as an operator
 * would; each answer waits for its own prompt, looked for in the output after the last one.
 */
export function runInPty(c: Cluster, args: string[], answers: Answer[]) {
  const command = [
    process.execPath,
    '--import',
    LOADER,
    MIGRATE,
    '--env-file',
    '/dev/null',
    ...args,
  ]
    .map((a) => `'${a.replace(/'/g, `'\\''`)}'`)
    .join(' ');
  const child = spawn('script', ['-qfec', command, '/dev/null'], {
    env: withoutCoverage({ ...c.env, TERM: 'xterm' }),
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let output = '';
  let answered = 0;
  let searchFrom = 0;
  let busy = false;
  return new Promise<{ code: number | null; output: string; screen: string; answered: number }>(
    (resolve) => {
      const next = async () => {
        const answer = answers[answered];
        if (busy || !answer) return;
        const seen = output.slice(searchFrom);
        const match = answer.when.exec(seen);
        if (!match) return;
        busy = true;
        searchFrom += match.index + match[0].length;
        await answer.first?.();
        answered++;
        child.stdin.write(answer.send);
        busy = false;
        await next();
      };
      const onData = (chunk: Buffer) => {
        output += chunk.toString('utf8');
        void next();
      };
      child.stdout.on('data', onData);
      child.stderr.on('data', onData);
      child.on('close', (code) => {
        c.outputs.push(output);
        // The terminal's wrapping and cursor moves, gone: the text as an operator reads it.
        const text = output.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '').replace(/\r\n?/g, '\n');
        // `output` as one line (the terminal wraps long ones); `screen` keeps the lines
        resolve({ code, output: text.replace(/\n/g, ''), screen: text, answered });
      });
    },
  );
}

/**
 * A line the runbook printed, run as an operator pastes it: by a shell, from the repository,
 * with none of the runbooks' settings in its environment (only the sandbox's own run directory
 * and the test's TMPDIR), and the answer the line leaves to the operator (--yes) at its end.
 */
export function paste(c: Cluster, line: string) {
  return new Promise<{ code: number | null; output: string }>((resolve) => {
    const child = spawn('sh', ['-c', `${line} --yes`], {
      cwd: REPO,
      env: withoutCoverage({
        ...Object.fromEntries(Object.keys(c.env).map((k) => [k, undefined])),
        SANDBOX_RUN_DIR: c.env.SANDBOX_RUN_DIR,
        TMPDIR: c.env.TMPDIR,
      }),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (d: Buffer) => {
      output += d.toString('utf8');
    });
    child.stderr.on('data', (d: Buffer) => {
      output += d.toString('utf8');
    });
    child.on('close', (code) => {
      c.outputs.push(output);
      resolve({ code, output });
    });
  });
}
