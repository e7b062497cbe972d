// The scratch server a backup is checked in: a real redis-server loads a real RDB snapshot
// (taken with redis-cli --rdb from a real server), answers on loopback, never writes the copy
// back, and leaves no process or directory behind, also when the file is not a snapshot.
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { startScratchServer } from '../../lib/redis/scratch-server.ts';
import { redisCli, startRedisServer } from '../helpers/redis-server.ts';

const PASSWORD = 'scratch-test-password-0123456789abcdef';

async function scratchDirs(): Promise<string[]> {
  return (await readdir(tmpdir())).filter((d) => d.startsWith('redis-shared-verify-'));
}

t.test('a snapshot taken with redis-cli --rdb loads with its keys and types', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'scratch-test-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const source = await startRedisServer(t, { password: PASSWORD, persistence: 'none' });
  await redisCli(source, ['SET', 'a', '1']);
  await redisCli(source, ['HSET', 'h', 'f', 'v']);
  await redisCli(source, ['RPUSH', 'l', 'x', 'y']);
  const file = join(dir, 'snap.rdb');
  await redisCli(source, ['--rdb', file]);
  const before = await scratchDirs();

  const scratch = await startScratchServer(file);
  let stopped = false;
  t.teardown(() => (stopped ? undefined : scratch.stop()));
  t.equal(await scratch.client.dbsize(), 3, 'every key loaded');
  t.equal(await scratch.client.type('h'), 'hash');
  t.equal(await scratch.client.type('l'), 'list');
  t.same(await scratch.client.config('GET', 'save'), ['save', ''], 'no persistence after load');
  t.equal((await scratchDirs()).length, before.length + 1, 'its own temp directory');
  await scratch.stop();
  stopped = true;
  t.same(await scratchDirs(), before, 'the temp directory is removed');
  t.rejects(
    redisCli({ port: scratch.port, target: { host: '127.0.0.1', port: scratch.port } }, ['PING']),
    'the server is gone',
  );
  t.ok(existsSync(file), 'the backup itself is untouched');
});

t.test('a file that is no snapshot fails with the server output and leaves nothing', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'scratch-test-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, 'broken.rdb');
  await writeFile(file, 'this is not an RDB file at all');
  const before = await scratchDirs();
  await t.rejects(startScratchServer(file), /exited with .* while loading the snapshot/);
  t.same(await scratchDirs(), before, 'the temp directory is removed');
});

t.test('a missing redis-server binary says what to install', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'scratch-test-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, 'x.rdb');
  await writeFile(file, '');
  await t.rejects(
    startScratchServer(file, { bin: join(dir, 'no-redis-server') }),
    /apt-get install redis-server/,
  );
});
