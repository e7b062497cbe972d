// replicasAcknowledged (lib/redis/replica-ack.ts), against a real master and replica: the WAIT's
// own timeout decides, not the client's: a replica that acknowledges after more than the
// client's usual 2 s is counted, and none in time is 0, not an error.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import t from 'tap';
import { openRedis } from '../../lib/redis/redis-probe.ts';
import { replicasAcknowledged } from '../../lib/redis/replica-ack.ts';
import { redisCli, startRedisServer, waitForReplicaLink } from '../helpers/redis-server.ts';

const exec = promisify(execFile);
const SECRET = 'replica-ack-secret';

async function linkedPair(t: Parameters<typeof startRedisServer>[0]) {
  const master = await startRedisServer(t, { password: SECRET });
  const replica = await startRedisServer(t, {
    password: SECRET,
    replicaOf: { host: master.host, port: master.port, password: SECRET },
    config: ['enable-debug-command yes'],
  });
  await waitForReplicaLink(replica);
  return { master, replica };
}

/**
 * The replica blocks for `seconds` (DEBUG SLEEP): it acknowledges nothing meanwhile. Resolves once
 * it is asleep (a new connection gets no answer within 600 ms); `woken` once it is back.
 */
async function replicaAsleep(
  replica: Awaited<ReturnType<typeof startRedisServer>>,
  seconds: number,
) {
  const woken = exec('redis-cli', ['-p', String(replica.port), 'DEBUG', 'SLEEP', String(seconds)], {
    env: { ...process.env, REDISCLI_AUTH: SECRET },
  });
  for (;;) {
    const client = await openRedis(replica.target, {
      connectTimeoutMs: 300,
      commandTimeoutMs: 300,
    }).catch(() => undefined);
    const answered = await client?.ping().then(
      () => true,
      () => false,
    );
    client?.disconnect();
    if (answered === false || client === undefined) return { woken };
  }
}

t.test(
  'a replica that acknowledges after 4 s or so is counted (the client waits as long as WAIT)',
  async (t) => {
    const { master, replica } = await linkedPair(t);
    const { woken } = await replicaAsleep(replica, 5);
    await redisCli(master, ['SET', 'restored', 'yes']);
    t.equal(await replicasAcknowledged(master.target, 10_000), 1);
    await woken;
  },
);

t.test('no replica in time is 0, not an error', async (t) => {
  const { master, replica } = await linkedPair(t);
  const { woken } = await replicaAsleep(replica, 5);
  await redisCli(master, ['SET', 'restored', 'yes']);
  t.equal(await replicasAcknowledged(master.target, 500), 0);
  await woken;
});
