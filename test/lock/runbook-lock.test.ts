import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { FileRunLock, type LockHolder, type LockOwner } from '../../lib/lock/lock.ts';
import { waitUntil } from '../helpers/wait.ts';

function lockPath(t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'lock-test-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return join(dir, 'nested', 'run.lock');
}

const owner = (runId: string, extra: Partial<LockOwner> = {}): LockOwner => ({
  runId,
  runbook: '05-migrate',
  operator: 'alice',
  host: hostname(),
  pid: process.pid,
  ...extra,
});

function writeHolder(path: string, holder: Partial<LockHolder>): void {
  writeFileSync(
    path,
    JSON.stringify({
      runId: 'old',
      runbook: '02-deploy',
      operator: 'bob',
      host: 'elsewhere',
      pid: 4242,
      acquiredAt: new Date().toISOString(),
      expiresAt: new Date(Date.now() + 60_000).toISOString(),
      ...holder,
    }),
  );
}

t.test('one holder at a time; release lets the next one in', async (t) => {
  const path = lockPath(t);
  const a = new FileRunLock(path, { ttlMs: 60_000 });
  const b = new FileRunLock(path, { ttlMs: 60_000 });
  const first = await a.acquire(owner('run-a'));
  t.ok(first.acquired);
  t.equal(a.location, path);
  const second = await b.acquire(owner('run-b'));
  t.notOk(second.acquired);
  t.equal(second.holder.runId, 'run-a');
  t.equal(second.holder.operator, 'alice');
  await a.release();
  t.notOk(existsSync(path));
  t.ok((await b.acquire(owner('run-b'))).acquired);
  await b.release();
  await b.release();
});

t.test('two runs racing for a free lock: exactly one gets it', async (t) => {
  const path = lockPath(t);
  const locks = Array.from({ length: 6 }, () => new FileRunLock(path, { ttlMs: 60_000 }));
  const results = await Promise.all(locks.map((lock, i) => lock.acquire(owner(`run-${i}`))));
  t.equal(results.filter((r) => r.acquired).length, 1);
  await Promise.all(locks.map((lock) => lock.release()));
});

t.test('an expired lock is taken over, with the previous holder and the reason', async (t) => {
  const path = lockPath(t);
  await new FileRunLock(path, { ttlMs: 1 }).acquire(owner('setup')).then(() => undefined);
  writeHolder(path, { runId: 'expired', expiresAt: '2020-01-01T00:00:00.000Z' });
  const lock = new FileRunLock(path, { ttlMs: 60_000 });
  const result = await lock.acquire(owner('new'));
  t.ok(result.acquired);
  if (result.acquired) {
    t.equal(result.takenOverFrom?.runId, 'expired');
    t.equal(result.takeoverReason, 'it expired at 2020-01-01T00:00:00.000Z');
  }
  t.equal((JSON.parse(readFileSync(path, 'utf8')) as LockHolder).runId, 'new');
  await lock.release();
});

t.test('several runs taking over the same stale lock: exactly one wins', async (t) => {
  const path = lockPath(t);
  await new FileRunLock(path, { ttlMs: 1 }).acquire(owner('setup'));
  writeHolder(path, { runId: 'expired', expiresAt: '2020-01-01T00:00:00.000Z' });
  const locks = Array.from({ length: 6 }, () => new FileRunLock(path, { ttlMs: 60_000 }));
  const results = await Promise.all(locks.map((lock, i) => lock.acquire(owner(`run-${i}`))));
  t.equal(results.filter((r) => r.acquired).length, 1);
  const holder = JSON.parse(readFileSync(path, 'utf8')) as LockHolder;
  t.ok(results.some((r) => r.acquired && r.holder.runId === holder.runId));
  await Promise.all(locks.map((lock) => lock.release()));
});

t.test('a lock left by a dead process on this host is stale at once', async (t) => {
  const path = lockPath(t);
  await new FileRunLock(path, { ttlMs: 1 }).acquire(owner('setup'));
  const dead = spawnSync('sh', ['-c', 'echo $$']).stdout.toString().trim();
  writeHolder(path, { runId: 'killed', host: hostname(), pid: Number(dead) });
  const lock = new FileRunLock(path, { ttlMs: 60_000 });
  const result = await lock.acquire(owner('next'));
  t.ok(result.acquired);
  if (result.acquired) t.match(result.takeoverReason, /process \d+ on .* no longer exists/);
  await lock.release();
});

t.test('a live holder on another host is respected until it expires', async (t) => {
  const path = lockPath(t);
  await new FileRunLock(path, { ttlMs: 1 }).acquire(owner('setup'));
  writeHolder(path, { runId: 'remote', host: 'another-laptop', pid: 1 });
  const result = await new FileRunLock(path, { ttlMs: 60_000 }).acquire(owner('me'));
  t.notOk(result.acquired);
  t.equal(result.holder.runId, 'remote');
});

t.test('an unreadable lock file is stale once it is older than the TTL', async (t) => {
  const path = lockPath(t);
  await new FileRunLock(path, { ttlMs: 1 }).acquire(owner('setup'));
  writeFileSync(path, '{torn');
  const old = (Date.now() - 61_000) / 1000;
  utimesSync(path, old, old);
  const lock = new FileRunLock(path, { ttlMs: 60_000 });
  const result = await lock.acquire(owner('next'));
  t.ok(result.acquired);
  if (result.acquired) t.match(result.takeoverReason, /run\.lock is unreadable/);
  await lock.release();
});

t.test('a takeover under way elsewhere is not raced', async (t) => {
  const path = lockPath(t);
  await new FileRunLock(path, { ttlMs: 1 }).acquire(owner('setup'));
  writeFileSync(`${path}.takeover`, '');
  const lock = new FileRunLock(path, { ttlMs: 60_000 });
  const result = await lock.acquire(owner('next'));
  t.notOk(result.acquired, 'another taker holds the takeover: this one does not go ahead');
  const old = new Date(Date.now() - 60_000);
  utimesSync(`${path}.takeover`, old, old);
  t.ok((await lock.acquire(owner('next'))).acquired, 'a takeover left by a dead taker is cleared');
  await lock.release();
});

t.test('a held lock is renewed, so a long run does not expire under itself', async (t) => {
  const path = lockPath(t);
  let now = Date.parse('2030-01-01T00:00:00.000Z');
  const lock = new FileRunLock(path, { ttlMs: 60_000, renewEveryMs: 10, now: () => now });
  await lock.acquire(owner('long'));
  const expiry = () => (JSON.parse(readFileSync(path, 'utf8')) as LockHolder).expiresAt;
  t.equal(expiry(), '2030-01-01T00:01:00.000Z');
  now += 45_000;
  await waitUntil(
    'the renewal to move the expiry to 00:01:45',
    () => expiry() === '2030-01-01T00:01:45.000Z',
  );
  t.pass('the expiry moved forward');
  await lock.release();
  t.notOk(existsSync(path));
});

t.test('release never removes a lock that someone else has taken over', async (t) => {
  const path = lockPath(t);
  const lock = new FileRunLock(path, { ttlMs: 60_000 });
  await lock.acquire(owner('mine'));
  writeHolder(path, { runId: 'theirs' });
  await lock.release();
  t.ok(existsSync(path));
  t.equal((JSON.parse(readFileSync(path, 'utf8')) as LockHolder).runId, 'theirs');
});
