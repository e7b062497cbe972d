import { Redis } from 'ioredis';
import t from 'tap';
import { type CopyProgress, copyKeys, verifyCopy } from '../../lib/redis/redis-copy.ts';
import { freePort, type RedisServer, startRedisServer } from '../helpers/redis-server.ts';

const SOURCE_PASSWORD = 'Zq7-copy-source-Distinctive-Pw';
const TARGET_PASSWORD = 'Zq7-copy-target-Distinctive-Pw';

function leaksPassword(value: unknown): boolean {
  const text = typeof value === 'string' ? value : JSON.stringify(value);
  return text.includes(SOURCE_PASSWORD) || text.includes(TARGET_PASSWORD);
}

async function client(
  t: { teardown(fn: () => unknown): void },
  server: RedisServer,
): Promise<Redis> {
  const c = new Redis({
    host: server.host,
    port: server.port,
    password: server.target.password,
    lazyConnect: true,
  });
  c.on('error', () => {});
  await c.connect();
  t.teardown(() => c.disconnect());
  return c;
}

async function seed(c: Redis): Promise<void> {
  await c.set('s:plain', 'hello');
  await c.set('s:ttl', 'expires', 'PX', 600_000);
  await c.set(Buffer.from([0x6b, 0xff, 0x00, 0x01]), Buffer.from([0, 1, 2, 255]));
  await c.hset('h:user', { name: 'ana', beers: '3' });
  await c.pexpire('h:user', 300_000);
  await c.rpush('l:queue', 'a', 'b', 'c', 'a');
  await c.pexpire('l:queue', 400_000);
  await c.sadd('set:tags', 'x', 'y', 'z');
  await c.pexpire('set:tags', 500_000);
  await c.zadd('z:score', 1.5, 'low', 10, 'high', -2, 'neg');
  await c.expire('z:score', 1000);
}

async function setup(t: { teardown(fn: () => unknown): void }) {
  const source = await startRedisServer(t, { password: SOURCE_PASSWORD });
  const target = await startRedisServer(t, { password: TARGET_PASSWORD });
  const src = await client(t, source);
  const dst = await client(t, target);
  await seed(src);
  return { source, target, src, dst };
}

t.test(
  'copy preserves values and TTLs of strings, hashes, lists, sets and sorted sets',
  async (t) => {
    const { source, target, dst } = await setup(t);
    const progress: CopyProgress[] = [];
    const result = await copyKeys(source.target, target.target, {
      batchSize: 2,
      onProgress: (p) => progress.push(p),
    });
    t.equal(result.dryRun, false);
    t.equal(result.scanned, 7);
    t.equal(result.copied, 7);
    t.equal(result.skipped, 0);
    t.equal(result.failed, 0);
    t.same(result.errors, []);
    t.ok(result.verification?.ok, result.verification?.evidence ?? '');
    t.equal(result.verification?.sourceKeys, 7);
    t.equal(result.verification?.targetKeys, 7);
    t.equal(result.verification?.sampled, 7);
    t.ok(progress.length >= 2, 'progress is reported per batch');
    t.equal(progress.at(-1)?.copied, 7);
    t.match(result.evidence, /copied 7 of 7 key\(s\) matching \* in \d+ ms; skipped 0, failed 0/);

    t.equal(await dst.get('s:plain'), 'hello');
    t.equal(await dst.pttl('s:plain'), -1, 'no TTL stays no TTL');
    const ttl = await dst.pttl('s:ttl');
    t.ok(ttl > 590_000 && ttl <= 600_000, `string TTL kept (${ttl} ms)`);
    t.same(await dst.getBuffer(Buffer.from([0x6b, 0xff, 0x00, 0x01])), Buffer.from([0, 1, 2, 255]));
    t.same(await dst.hgetall('h:user'), { name: 'ana', beers: '3' });
    t.ok((await dst.pttl('h:user')) > 290_000, 'hash TTL kept');
    t.same(await dst.lrange('l:queue', 0, -1), ['a', 'b', 'c', 'a']);
    const listTtl = await dst.pttl('l:queue');
    t.ok(listTtl > 390_000 && listTtl <= 400_000, `list TTL kept (${listTtl} ms)`);
    t.same((await dst.smembers('set:tags')).sort(), ['x', 'y', 'z']);
    const setTtl = await dst.pttl('set:tags');
    t.ok(setTtl > 490_000 && setTtl <= 500_000, `set TTL kept (${setTtl} ms)`);
    t.same(await dst.zrange('z:score', 0, '-1', 'WITHSCORES'), [
      'neg',
      '-2',
      'low',
      '1.5',
      'high',
      '10',
    ]);
    t.ok((await dst.ttl('z:score')) > 990, 'sorted set TTL kept');
    t.notOk(leaksPassword(result), 'the result does not contain a password');
  },
);

t.test(
  'REPLACE semantics: existing target keys are replaced by default, kept with replace: false',
  async (t) => {
    const { source, target, dst } = await setup(t);
    await dst.set('s:plain', 'old value on target');
    await dst.set('target:only', 'untouched');

    const kept = await copyKeys(source.target, target.target, { replace: false });
    t.equal(kept.copied, 6);
    t.equal(kept.skipped, 1, 'the existing key is skipped');
    t.equal(await dst.get('s:plain'), 'old value on target');
    t.equal(
      kept.verification?.sampled,
      6,
      'only copied keys are sampled, the kept one is intended',
    );
    t.equal(kept.verification?.ok, true);
    t.match(kept.evidence, /copied 6 of 7 key\(s\) matching \* in \d+ ms; skipped 1, failed 0/);

    const verified = await verifyCopy(source.target, target.target);
    t.equal(verified.ok, false);
    t.same(verified.mismatches, [{ key: 's:plain', reason: 'string value differs' }]);
    t.match(verified.evidence, /mismatch s:plain: string value differs/);

    const replaced = await copyKeys(source.target, target.target);
    t.equal(replaced.copied, 7);
    t.equal(replaced.skipped, 0);
    t.equal(await dst.get('s:plain'), 'hello');
    t.equal(await dst.get('target:only'), 'untouched', 'keys only on the target are left alone');
    t.ok(replaced.verification?.ok, replaced.verification?.evidence ?? '');
    t.equal(replaced.verification?.targetKeys, 8);
  },
);

t.test('dry run counts what it would copy and writes nothing', async (t) => {
  const { source, target, dst } = await setup(t);
  await dst.set('h:user', 'already here');
  const result = await copyKeys(source.target, target.target, { dryRun: true });
  t.equal(result.dryRun, true);
  t.equal(result.scanned, 7);
  t.equal(result.copied, 0);
  t.equal(result.existingOnTarget, 1);
  t.equal(result.verification, undefined);
  t.equal(await dst.dbsize(), 1);
  t.equal(await dst.get('h:user'), 'already here');
  t.match(
    result.evidence,
    /^dry run: would copy 7 key\(s\) matching \*; 1 already exist on the target and would be replaced/,
  );
});

t.test('a MATCH pattern limits the copy and the count comparison', async (t) => {
  const { source, target, dst } = await setup(t);
  const result = await copyKeys(source.target, target.target, { match: 's:*' });
  t.equal(result.copied, 2);
  t.equal(await dst.dbsize(), 2);
  t.ok(result.verification?.ok);
  t.equal(result.verification?.sourceKeys, 2);
});

t.test('verification reports missing keys, wrong types and TTL differences', async (t) => {
  const { source, target, src, dst } = await setup(t);
  await copyKeys(source.target, target.target);
  await dst.del('l:queue');
  await dst.del('set:tags');
  await dst.set('set:tags', 'now a string');
  await dst.persist('s:ttl');
  await dst.pexpire('h:user', 10_000);
  await src.set('s:plain', 'hello');
  const v = await verifyCopy(source.target, target.target, { sampleSize: 100 });
  t.equal(v.ok, false);
  t.equal(v.sourceKeys, 7);
  t.equal(v.targetKeys, 6);
  const byKey = Object.fromEntries(v.mismatches.map((m) => [m.key, m.reason]));
  t.equal(byKey['l:queue'], 'missing on the target');
  t.equal(byKey['set:tags'], 'type set on the source, string on the target');
  t.match(byKey['s:ttl'], /^TTL \d+ ms on the source, none on the target$/);
  t.match(byKey['h:user'], /^TTL \d+ ms on the source, \d+ ms on the target$/);
  t.equal(v.mismatches.length, 4);
});

t.test('an unreachable target fails with a clear, masked error', async (t) => {
  const source = await startRedisServer(t, { password: SOURCE_PASSWORD });
  const port = await freePort();
  const err = await copyKeys(source.target, {
    host: '127.0.0.1',
    port,
    password: TARGET_PASSWORD,
  }).catch((e: Error) => e);
  t.type(err, Error);
  t.match((err as Error).message, /^data copy failed: 127\.0\.0\.1:\d+ refused the connection/);
  t.notOk(leaksPassword(`${(err as Error).message}${(err as Error).stack}`));
});

t.test('a wrong source password fails before anything is written', async (t) => {
  const source = await startRedisServer(t, { password: SOURCE_PASSWORD });
  const target = await startRedisServer(t, { password: TARGET_PASSWORD });
  const err = await verifyCopy(
    { ...source.target, password: TARGET_PASSWORD },
    target.target,
  ).catch((e: Error) => e);
  t.match((err as Error).message, /rejected the password \(WRONGPASS\)/);
  t.notOk(leaksPassword((err as Error).message));
});
