// A run lock file that names no holder (empty, half-written, null, [], a bare string) is judged
// by its age like any other lock, and says what is wrong with it, instead of failing every run
// with a TypeError or being taken over at once as "run undefined".
import { mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { FileRunLock, type LockOwner } from '../../lib/lock/lock.ts';

const dir = mkdtempSync(join(tmpdir(), 'run-lock-unreadable-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

const owner: LockOwner = {
  runId: 'next-run',
  runbook: '05-migrate',
  operator: 'alice',
  host: hostname(),
  pid: process.pid,
};
const TTL_MS = 60_000;
const CONTENTS = ['', 'null', '[]', '"x"', '42', '{"runId":"half', '{torn'];

t.test(
  'item 6: a fresh lock file that names no holder is respected, with a clear holder',
  async (t) => {
    for (const content of CONTENTS) {
      const path = join(mkdtempSync(join(dir, 'fresh-')), 'run.lock');
      writeFileSync(path, content);
      const result = await new FileRunLock(path, { ttlMs: TTL_MS }).acquire(owner);
      t.notOk(result.acquired, `${JSON.stringify(content)}: it may be a lock being written now`);
      t.match(
        result.holder.runId,
        /unknown \(.*run\.lock is unreadable: .*\)/,
        `${JSON.stringify(content)}: the holder says the file is unreadable`,
      );
      t.ok(Number.isFinite(Date.parse(result.holder.expiresAt)), 'and when it will count as stale');
    }
  },
);

t.test('item 6: an old lock file that names no holder is taken over, saying why', async (t) => {
  for (const content of CONTENTS) {
    const path = join(mkdtempSync(join(dir, 'old-')), 'run.lock');
    writeFileSync(path, content);
    const old = (Date.now() - TTL_MS - 1_000) / 1000;
    utimesSync(path, old, old);
    const lock = new FileRunLock(path, { ttlMs: TTL_MS });
    const result = await lock.acquire(owner);
    t.ok(result.acquired, `${JSON.stringify(content)}: taken over`);
    if (result.acquired) {
      t.match(result.takenOverFrom?.runId, /unreadable/, `${JSON.stringify(content)}: from whom`);
      t.match(
        result.takeoverReason,
        /run\.lock is unreadable .* and was last written more than 1m0s ago/,
        `${JSON.stringify(content)}: why`,
      );
    }
    await lock.release();
  }
});

t.test('item 6: a lock path that cannot be read is an error naming it', async (t) => {
  const path = join(mkdtempSync(join(dir, 'dir-')), 'run.lock');
  mkdirSync(path);
  await t.rejects(new FileRunLock(path, { ttlMs: TTL_MS }).acquire(owner), {
    message: /run\.lock/,
  });
});
