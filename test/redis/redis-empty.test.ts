// Emptying a real redis-server the way the restore empties redis-shared: FLUSHALL and FLUSHDB
// renamed away as the chart does, keys in several databases, a replica that follows, and no
// password in what it returns or throws.
import { Redis } from 'ioredis';
import t from 'tap';
import { databasesWithKeys, deleteEveryKey } from '../../lib/redis/redis-empty.ts';
import { startRedisServer, waitForReplicaLink } from '../helpers/redis-server.ts';

const PASSWORD = 'Zq7-empty-Distinctive-Pw';
const CHART_CONFIG = ['rename-command FLUSHALL ""', 'rename-command FLUSHDB ""'];

t.test('the databases INFO keyspace lists with keys', async (t) => {
  t.same(
    databasesWithKeys(
      '# Keyspace\r\ndb0:keys=3,expires=1,avg_ttl=0\r\ndb2:keys=1,expires=0,avg_ttl=0\r\ndb5:keys=0,expires=0\r\n',
    ),
    [0, 2],
  );
  t.same(databasesWithKeys('# Keyspace\r\n'), []);
});

t.test(
  'every key of every database is deleted without FLUSHALL, and the replica follows',
  async (t) => {
    const master = await startRedisServer(t, { password: PASSWORD, config: CHART_CONFIG });
    const replica = await startRedisServer(t, {
      password: PASSWORD,
      config: CHART_CONFIG,
      replicaOf: { host: master.host, port: master.port, password: PASSWORD },
    });
    await waitForReplicaLink(replica);
    const c = new Redis({ host: master.host, port: master.port, password: PASSWORD });
    t.teardown(() => c.disconnect());
    await t.rejects(
      c.call('FLUSHALL'),
      /unknown command/,
      'FLUSHALL is not there, as in the chart',
    );
    const write = c.pipeline();
    for (let i = 0; i < 1200; i++) write.set(`k:${i}`, String(i), 'PX', 600_000);
    await write.exec();
    await c.select(3);
    await c.hset('elsewhere', 'f', 'v');
    await c.select(0);

    const result = await deleteEveryKey(master.target);
    t.same(result, { deleted: 1201, left: 0, passes: 1 });
    t.equal(await c.dbsize(), 0);
    t.same(databasesWithKeys(await c.info('keyspace')), [], 'no database holds a key');
    await c.call('WAIT', '1', '5000');
    const r = new Redis({ host: replica.host, port: replica.port, password: PASSWORD });
    t.teardown(() => r.disconnect());
    t.equal(await r.dbsize(), 0, 'the replica is empty too');
    t.notOk(JSON.stringify(result).includes(PASSWORD));
    t.same(
      await deleteEveryKey(master.target),
      { deleted: 0, left: 0, passes: 0 },
      'an empty server',
    );
  },
);

t.test('a failure says so without the password', async (t) => {
  const server = await startRedisServer(t, { password: PASSWORD });
  const error = await deleteEveryKey({ ...server.target, password: `${PASSWORD}-wrong` }).catch(
    (e: Error) => e,
  );
  t.ok(error instanceof Error);
  t.notOk(String((error as Error).message).includes(PASSWORD), (error as Error).message);
});
