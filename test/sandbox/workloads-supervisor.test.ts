import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { isAlive, Supervisor, sweepOrphans } from '../../sandbox/workloads/supervisor.ts';

const TS_LOADER = fileURLToPath(new URL('../../lib/ts-loader/register.mjs', import.meta.url));
const CHILD = fileURLToPath(new URL('../helpers/workloads-crash-child.ts', import.meta.url));

async function gone(pids: number[], timeoutMs = 10_000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (pids.some(isAlive)) {
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 50));
  }
  return true;
}

t.test('processes die with a sandbox that is SIGKILLed', async (t) => {
  const runDir = mkdtempSync(join(tmpdir(), 'supervisor-crash-'));
  let pids: number[] = [];
  const child = spawn(process.execPath, ['--import', TS_LOADER, CHILD, runDir], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  t.teardown(() => {
    // The stand-in sandbox too, should the test fail before it kills it.
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    for (const pid of pids) if (isAlive(pid)) process.kill(pid, 'SIGKILL');
    rmSync(runDir, { recursive: true, force: true });
  });
  pids = await new Promise<number[]>((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (chunk) => {
      out += chunk;
      if (out.includes('\n')) resolve(JSON.parse(out));
    });
    child.on('exit', () => reject(new Error(`child exited early: ${out}`)));
  });
  t.equal(pids.length, 2);
  t.ok(pids.every(isAlive), 'both run');
  t.same(
    readdirSync(join(runDir, 'pids')).map(Number).sort(),
    [...pids].sort(),
    'their PIDs are recorded',
  );
  child.kill('SIGKILL');
  t.ok(await gone(pids), 'no orphan: both die with their parent');
  t.same(sweepOrphans(runDir), [], 'nothing left for the next start to kill');
});

t.test('a new start kills what a previous one left recorded, never a reused PID', async (t) => {
  const runDir = mkdtempSync(join(tmpdir(), 'supervisor-sweep-'));
  const supervisor = new Supervisor(runDir);
  t.teardown(async () => {
    await supervisor.stopAll();
    rmSync(runDir, { recursive: true, force: true });
  });
  const left = supervisor.spawn({
    name: 'left',
    command: 'sleep',
    args: ['infinity'],
    logFile: join(runDir, 'x.log'),
  });
  t.same(sweepOrphans(runDir), [left.pid]);
  t.equal(await left.exited, 137, 'killed by SIGKILL');

  const alive = supervisor.spawn({
    name: 'alive',
    command: 'sleep',
    args: ['infinity'],
    logFile: join(runDir, 'y.log'),
  });
  const record = join(runDir, 'pids', String(alive.pid));
  const [, ...rest] = readFileSync(record, 'utf8').split('\n');
  // Same PID, another start time: the PID was given to another process since.
  writeFileSync(record, ['1', ...rest].join('\n'));
  t.same(sweepOrphans(runDir), [], 'a PID with another start time is left alone');
  t.ok(isAlive(alive.pid));
  t.notOk(existsSync(record), 'its stale record is dropped');
  await alive.stop();
  t.notOk(alive.running);
});

t.test('output goes to the log file; stop escalates to SIGKILL', async (t) => {
  const runDir = mkdtempSync(join(tmpdir(), 'supervisor-log-'));
  const supervisor = new Supervisor(runDir);
  t.teardown(async () => {
    await supervisor.stopAll();
    rmSync(runDir, { recursive: true, force: true });
  });
  const log = join(runDir, 'p.log');
  const stubborn = supervisor.spawn({
    name: 'stubborn',
    command: 'sh',
    args: ['-c', 'trap "" TERM; echo started; echo oops >&2; while :; do sleep 0.05; done'],
    logFile: log,
  });
  while (!readFileSync(log, 'utf8').includes('oops')) await new Promise((r) => setTimeout(r, 20));
  t.match(readFileSync(log, 'utf8'), /started\noops/);
  await stubborn.stop(200);
  t.notOk(isAlive(stubborn.pid), 'SIGTERM ignored, SIGKILL after the grace period');
  t.throws(
    () =>
      supervisor.spawn({ name: 'x', command: 'true', args: [], cwd: '/nonexistent', logFile: log }),
    /could not start x/,
  );
});
