// The crash matrix of 05-migrate (docs/crash-matrix.md): a run killed at a step of its window,
// then resumed or rolled back from the state it left. The run is frozen (SIGSTOP) the moment the
// audit log says the step started, or at the step's own moment (the apply in flight, the wait for
// Ready), so the signal lands inside that step; every process the run started carries a marker in
// its environment, so what outlives the run can be found after its parent is gone.
import { readdirSync, readFileSync, watch } from 'node:fs';
import type { Test } from 'tap';
import { readAuditEntries } from '../../lib/audit/audit.ts';
import { MIGRATION_ANNOTATION } from '../../lib/names.ts';
import { jsonLines } from './json-lines.ts';
import {
  AUDIT,
  beersystemEnv,
  beersystemFields,
  type Cluster,
  MIGRATE,
} from './migrate-cluster.ts';
import { runCli, startCli } from './run-cli.ts';

export type WindowStep = 'T035' | 'T036' | 'T039' | 'T040' | 'T041' | 'P05';
export type CrashSignal = 'SIGKILL' | 'SIGINT';
export type Recovery = 'resume' | 'rollback';

export interface CrashCell {
  step: WindowStep;
  recovery: Recovery;
}

export interface CellResult {
  /** from the signal to the end of the recovery run */
  recoveryMs: number;
  /** from the signal until the lease could be taken from anywhere */
  leaseFreeMs: number;
  /** from the signal until no process the run started was left */
  orphansGoneMs: number;
}

const ON_SHARED = '1 redis-shared-master.redis.svc.cluster.local';
const ON_OLD = '1 redis.beersystem.svc.cluster.local';

/** Pids of live processes whose environment carries `marker` (the run and what it started). */
export function markedProcesses(marker: string): number[] {
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    const pid = Number(entry);
    if (!Number.isInteger(pid) || pid === process.pid) continue;
    try {
      if (readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.startsWith('Z')) continue;
      if (readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').includes(marker)) {
        found.push(pid);
      }
    } catch {
      // gone meanwhile, or not ours to read
    }
  }
  return found;
}

function commandLine(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ');
  } catch {
    return '';
  }
}

/** Resolves when `check` is true, looked at on every change of the file and every 100 ms. */
async function until(what: string, file: string, check: () => boolean, timeoutMs: number) {
  if (check()) return;
  await new Promise<void>((resolve, reject) => {
    let watcher: ReturnType<typeof watch> | undefined;
    const done = (err?: Error) => {
      clearInterval(timer);
      clearTimeout(deadline);
      watcher?.close();
      if (err) reject(err);
      else resolve();
    };
    const look = () => {
      try {
        if (check()) done();
      } catch (err) {
        done(err as Error);
      }
    };
    try {
      watcher = watch(file, look);
    } catch {
      // not there yet: the interval looks
    }
    const timer = setInterval(look, 100);
    const deadline = setTimeout(
      () => done(new Error(`not seen within ${timeoutMs} ms: ${what}`)),
      timeoutMs,
    );
  });
}

/** The audit log's complete entries (the run being watched may be writing one). */
function auditEntries(auditLog: string): { event: string; step?: string }[] {
  try {
    return jsonLines(readFileSync(auditLog, 'utf8'));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
}

/** The steps started by the runs after the first `from` entries of the audit log, in order. */
function startedSteps(auditLog: string, from: number): string[] {
  return auditEntries(auditLog)
    .slice(from)
    .filter((e) => e.event === 'step-start' && e.step)
    .map((e) => e.step as string);
}

function auditLines(auditLog: string): number {
  return auditEntries(auditLog).length;
}

export async function migrationRecord(c: Cluster): Promise<string | undefined> {
  const annotations = await beersystemFields(c, '{.metadata.annotations}');
  return (JSON.parse(annotations || '{}') as Record<string, string>)[MIGRATION_ANNOTATION];
}

/** The latest Ready transition of beersystem's pods, as the cluster recorded it. */
export async function readySince(c: Cluster): Promise<string> {
  const pods = JSON.parse(
    await c.kubectl(['get', 'pods', '-n', 'beersystem', '-l', 'app=beersystem', '-o', 'json']),
  ).items as {
    status: { conditions?: { type: string; status: string; lastTransitionTime: string }[] };
  }[];
  const times = pods.map((p) =>
    Date.parse(
      p.status.conditions?.find((c) => c.type === 'Ready' && c.status === 'True')
        ?.lastTransitionTime ?? '',
    ),
  );
  return new Date(Math.max(...times)).toISOString();
}

async function lease(c: Cluster) {
  return JSON.parse(
    await c.kubectl(['get', 'lease', 'redis-shared-runbooks', '-n', 'default', '-o', 'json']),
  ) as {
    spec: { holderIdentity?: string; renewTime?: string; leaseDurationSeconds?: number };
  };
}

async function fault(c: Cluster, args: string[]): Promise<void> {
  const r = await c.fx.admin('/sandbox/fault', { args });
  if (r.status !== 200) throw new Error(`fault ${args.join(' ')}: ${r.message}`);
}

/** The beersystem pod's process, which the sandbox runs as `beersystem/app.ts`. */
function beersystemPid(c: Cluster): number | undefined {
  return c.fx.workloads.pids().find((p) => commandLine(p).includes('beersystem/app.ts'));
}

/**
 * Starts 05 and freezes it inside `step`. T036 waits for a pod that does not stop (its process is
 * paused), T039 is frozen while its `tofu apply` runs, T040 while it waits for a beersystem that
 * is slow to become Ready; the others the moment they start.
 */
async function runFrozenIn(c: Cluster, step: WindowStep, marker: string) {
  const from = auditLines(c.env.AUDIT_LOG!);
  const [key, value] = marker.split('=') as [string, string];
  let pausedPod: number | undefined;
  if (step === 'T040') await fault(c, ['slow-ready', 'beersystem', '30']);
  const running = startCli(MIGRATE, ['--env-file', '/dev/null', '--yes'], {
    env: { ...c.env, [key]: value },
  });
  running.result.then((r) => c.outputs.push(r.stdout, r.stderr));
  const pid = running.child.pid!;
  const started = (id: string) => startedSteps(c.env.AUDIT_LOG!, from).includes(id);
  const ended = running.result.then((r) => {
    throw new Error(
      `05 ended (code ${r.code}) before it reached ${step}:\n${r.stderr.slice(-2000)}`,
    );
  });
  const reached = (async () => {
    if (step === 'T036') {
      await until('T035 started', c.env.AUDIT_LOG!, () => started('T035'), 600_000);
      pausedPod = beersystemPid(c);
      if (pausedPod) process.kill(pausedPod, 'SIGSTOP');
    }
    await until(`${step} started`, c.env.AUDIT_LOG!, () => started(step), 600_000);
    if (step === 'T039') {
      await until(
        'the tofu apply of T039 running',
        c.env.AUDIT_LOG!,
        () => markedProcesses(marker).some((p) => / apply /.test(`${commandLine(p)} `)),
        120_000,
      );
    }
    if (step === 'T040') await running.waitForStderr(/waiting for beersystem Ready and healthy/);
  })();
  await Promise.race([reached, ended]);
  process.kill(pid, 'SIGSTOP');
  ended.catch(() => undefined);
  return { running, pid, pausedPod, steps: () => startedSteps(c.env.AUDIT_LOG!, from) };
}

/**
 * One cell: 05 killed with `signal` inside `cell.step`, then resumed or rolled back. Checks what
 * the issue asks of every cell and returns the measured times.
 */
export async function crashCell(
  t: Test,
  c: Cluster,
  signal: CrashSignal,
  cell: CrashCell,
  earlierRecords: Set<string>,
): Promise<CellResult> {
  const marker = `CRASH_CELL=${signal}-${cell.step}-${Date.now()}`;
  const frozen = await runFrozenIn(c, cell.step, marker);
  t.equal(frozen.steps().at(-1), cell.step, `the run is inside ${cell.step}`);
  const killedAt = Date.now();
  process.kill(frozen.pid, signal);
  if (signal === 'SIGINT') process.kill(frozen.pid, 'SIGCONT');
  const killed = await frozen.running.result;
  if (frozen.pausedPod) process.kill(frozen.pausedPod, 'SIGCONT');
  await fault(c, ['heal']);
  if (signal === 'SIGKILL') t.equal(killed.signal, 'SIGKILL', 'killed');
  else t.equal(killed.code, 130, 'interrupted: exit 130', { stderr: killed.stderr.slice(-2000) });

  const held = await lease(c);
  const renewed = Date.parse(held.spec.renewTime ?? '');
  const leaseFreeMs = held.spec.holderIdentity
    ? renewed + (held.spec.leaseDurationSeconds ?? 0) * 1000 - killedAt
    : 0;
  t.ok(leaseFreeMs < 60_000, `the lease is free from anywhere within a minute (${leaseFreeMs} ms)`);

  await until(
    'no process of the killed run left',
    c.env.AUDIT_LOG!,
    () => markedProcesses(marker).length === 0,
    45_000,
  ).catch(() => undefined);
  const orphansGoneMs = Date.now() - killedAt;
  t.same(
    markedProcesses(marker).map(commandLine),
    [],
    'no command of the killed run is still running',
  );

  const recovery = await runCli(
    MIGRATE,
    ['--env-file', '/dev/null', '--yes', ...(cell.recovery === 'rollback' ? ['--rollback'] : [])],
    { env: c.env },
  );
  c.outputs.push(recovery.stdout, recovery.stderr);
  const recoveryMs = Date.now() - killedAt;
  t.equal(recovery.code, 0, `the ${cell.recovery} completes`, {
    stderr: recovery.stderr.slice(-3000),
  });
  const health = await c.proxy('/healthz');
  t.equal(health.status, 200, 'beersystem answers healthy');
  const record = await migrationRecord(c);
  if (cell.recovery === 'resume') {
    t.equal((await beersystemEnv(c)).trim(), ON_SHARED, 'on redis-shared');
    t.match(String(health.body.redis), /^redis-shared/, 'and it says so itself');
    t.equal(record, await readySince(c), 'the record is this attempt’s Ready time');
    t.notOk(record && earlierRecords.has(record), 'not an earlier attempt’s');
    if (record) earlierRecords.add(record);
  } else {
    t.equal((await beersystemEnv(c)).trim(), ON_OLD, 'back on its old Redis');
    t.match(String(health.body.redis), /^redis\.beersystem/, 'and it says so itself');
    t.equal(record, undefined, 'no migration record');
  }
  await checkLeftovers(t, c);
  if (cell.recovery === 'resume') {
    // The next cell starts where a migration starts: on the old Redis.
    const back = await runCli(MIGRATE, ['--env-file', '/dev/null', '--yes', '--rollback'], {
      env: c.env,
    });
    c.outputs.push(back.stdout, back.stderr);
    t.equal(back.code, 0, 'a planned rollback resets the stand', {
      stderr: back.stderr.slice(-2000),
    });
  }
  return { recoveryMs, leaseFreeMs, orphansGoneMs };
}

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

/** No saved plan outlives its attempt, the audit log verifies, the lease is free. */
export async function checkLeftovers(t: Test, c: Cluster): Promise<void> {
  const plans = `${c.out}/plans`;
  let left: string[] = [];
  try {
    left = readdirSync(plans);
  } catch {}
  t.same(left, [], 'no saved plan outlives its attempt');
  const verify = await runCli(AUDIT, ['verify', '--env-file', '/dev/null'], { env: c.env });
  t.equal(verify.code, 0, 'audit.mts verify', { stderr: verify.stderr.slice(-1500) });
  t.notOk((await lease(c)).spec.holderIdentity, 'the lease is free');
  const runs = (await readAuditEntries(c.env.AUDIT_LOG!)).filter((e) => e.event === 'run-start');
  t.ok(runs.length > 0, 'the runs are in the audit log');
}

/**
 * A file of the matrix: a migration and its rollback first (so every resume can show it does not
 * take the rolled-back attempt's record), then each cell in turn on the same stand.
 */
export async function crashMatrix(
  t: Test,
  c: Cluster,
  signal: CrashSignal,
  cells: readonly CrashCell[],
): Promise<void> {
  const earlier = new Set<string>();
  const first = await c.run(MIGRATE, ['--yes']);
  t.equal(first.code, 0, 'a first migration', { stderr: first.stderr.slice(-2000) });
  const firstRecord = await migrationRecord(c);
  if (firstRecord) earlier.add(firstRecord);
  const back = await c.run(MIGRATE, ['--yes', '--rollback']);
  t.equal(back.code, 0, 'and its rollback', { stderr: back.stderr.slice(-2000) });
  for (const cell of cells) {
    await t.test(`${signal} inside ${cell.step}, then ${cell.recovery}`, async (t) => {
      const measured = await crashCell(t, c, signal, cell, earlier);
      t.comment(
        `${signal} in ${cell.step} → ${cell.recovery}: its commands gone after ${seconds(measured.orphansGoneMs)}; lease free after ${seconds(Math.max(0, measured.leaseFreeMs))}; recovered ${seconds(measured.recoveryMs)} after the signal`,
      );
    });
  }
}
