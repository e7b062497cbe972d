import { Redis } from 'ioredis';
import t from 'tap';
import {
  checkPersistenceMarker,
  countKeys,
  listClients,
  measureLatency,
  openRedis,
  PROBE_KEY_PREFIX,
  probeAuthRequired,
  probeConnectivity,
  probeReplication,
  readInfo,
  summarizeLatencies,
  writePersistenceMarker,
} from '../../lib/redis/redis-probe.ts';
import {
  fakeServer,
  freePort,
  redisCli,
  startRedisServer,
  waitForReplicaLink,
} from '../helpers/redis-server.ts';

// Distinctive, so a leak anywhere (result, error, stdout, stderr) is unmistakable.
const PASSWORD = 'Zq7-probe-Distinctive-Pw-4711';

// Everything the process prints while these tests run is kept, to prove the password never shows.
const printed: string[] = [];
for (const stream of [process.stdout, process.stderr]) {
  const write = stream.write.bind(stream) as (...args: unknown[]) => boolean;
  stream.write = ((chunk: unknown, ...rest: unknown[]) => {
    printed.push(String(chunk));
    return write(chunk, ...rest);
  }) as typeof stream.write;
}

function leaksPassword(value: unknown): boolean {
  const text = typeof value === 'string' ? value : JSON.stringify(value);
  return text.includes(PASSWORD);
}

t.test(
  'connectivity with the password: PING, SET/GET of a probe key, ordered latency percentiles',
  async (t) => {
    const server = await startRedisServer(t, { password: PASSWORD });
    const result = await probeConnectivity(server.target, { samples: 50 });
    t.ok(result.ok, result.evidence);
    t.equal(result.value?.pong, 'PONG');
    t.equal(result.value?.setGet, true);
    const l = result.value!.latency;
    t.equal(l.samples, 50);
    t.ok(
      l.p50Ms > 0 && l.p50Ms <= l.p95Ms && l.p95Ms <= l.p99Ms && l.p99Ms <= l.maxMs,
      'p50 ≤ p95 ≤ p99 ≤ max',
    );
    t.match(result.evidence, /PING → PONG; SET\/GET runbook:probe:connectivity:\S+ matched/);
    t.ok(result.durationMs > 0);
    t.equal((await redisCli(server, ['DBSIZE'])).trim(), '0', 'the probe key is cleaned up');
    t.notOk(leaksPassword(result), 'the result does not contain the password');
  },
);

t.test('measureLatency samples N round trips', async (t) => {
  const server = await startRedisServer(t, { password: PASSWORD });
  const result = await measureLatency(server.target, { samples: 20 });
  t.ok(result.ok);
  t.equal(result.value?.samples, 20);
  t.match(result.evidence, /20 round trips: p50 [\d.]+ ms, p95/);
});

t.test('summarizeLatencies uses nearest-rank percentiles', async (t) => {
  const samples = Array.from({ length: 100 }, (_, i) => i + 1);
  t.same(summarizeLatencies(samples), {
    samples: 100,
    p50Ms: 50,
    p95Ms: 95,
    p99Ms: 99,
    maxMs: 100,
  });
  t.same(summarizeLatencies([]), { samples: 0, p50Ms: 0, p95Ms: 0, p99Ms: 0, maxMs: 0 });
});

t.test('a wrong password gives a clear error without the password in it', async (t) => {
  const server = await startRedisServer(t, { password: PASSWORD });
  const wrong = { ...server.target, password: `${PASSWORD}-wrong` };
  const result = await probeConnectivity(wrong);
  t.equal(result.ok, false);
  t.equal(result.value, undefined);
  t.match(result.error, /rejected the password \(WRONGPASS\)/);
  t.match(result.evidence, /127\.0\.0\.1:\d+ rejected the password/);
  t.notOk(leaksPassword(result), 'the result does not contain the password');
  const err = await openRedis(wrong).catch((e: Error) => e);
  t.type(err, Error);
  t.match((err as Error).message, /WRONGPASS/);
  t.notOk(
    leaksPassword(`${(err as Error).message}\n${(err as Error).stack}`),
    'the thrown error does not contain the password',
  );
});

t.test('a missing password is named as such', async (t) => {
  const server = await startRedisServer(t, { password: PASSWORD });
  const result = await readInfo({ host: server.host, port: server.port });
  t.equal(result.ok, false);
  t.match(result.error, /requires a password and none was given \(NOAUTH\)/);
});

t.test('SC-008: a connection without the password is refused', async (t) => {
  const server = await startRedisServer(t, { password: PASSWORD });
  const result = await probeAuthRequired(server.target);
  t.ok(result.ok, result.evidence);
  t.match(result.value?.reply, /NOAUTH/);
  t.match(result.evidence, /refused PING without a password/);
  t.notOk(leaksPassword(result), 'the result does not contain the password');
});

t.test('SC-008: auth-required fails on a server without a password', async (t) => {
  const server = await startRedisServer(t);
  const result = await probeAuthRequired(server.target);
  t.equal(result.ok, false);
  t.equal(result.value?.reply, 'PONG');
  t.match(result.evidence, /authentication is NOT enforced/);
});

t.test('auth-required is not ok when nothing answers at all', async (t) => {
  const port = await freePort();
  const result = await probeAuthRequired({ host: '127.0.0.1', port });
  t.equal(result.ok, false);
  t.match(result.error, /refused the connection/);
});

t.test('an unreachable port returns ok: false, it does not throw', async (t) => {
  const port = await freePort();
  const result = await probeConnectivity({ host: '127.0.0.1', port, password: PASSWORD });
  t.equal(result.ok, false);
  t.match(result.error, /refused the connection: is Redis running there/);
  t.notOk(leaksPassword(result), 'the result does not contain the password');
});

t.test('a host that accepts but never answers returns ok: false within the timeout', async (t) => {
  const port = await fakeServer(t);
  const result = await probeConnectivity(
    { host: '127.0.0.1', port, password: PASSWORD },
    { connectTimeoutMs: 300, commandTimeoutMs: 300 },
  );
  t.equal(result.ok, false);
  t.match(result.error, /did not answer in time/);
  // Bounded by connect + command timeout (600 ms), not by ioredis' 10 s default.
  t.ok(result.durationMs < 5000, `returned after ${result.durationMs} ms`);
  t.notOk(leaksPassword(result), 'the result does not contain the password');
});

t.test('misuse throws: a target without a host or a valid port', async (t) => {
  t.throws(() => probeConnectivity({ host: '', port: 6379 }), TypeError);
  t.throws(() => probeAuthRequired({ host: 'x', port: 0 }), TypeError);
  t.throws(() => listClients({ host: 'x', port: 70000 }), TypeError);
});

t.test('US1 AS-2/AS-3: replication is healthy and a marker reaches the replica', async (t) => {
  const primary = await startRedisServer(t, { password: PASSWORD });
  const replica = await startRedisServer(t, {
    password: PASSWORD,
    replicaOf: { host: primary.host, port: primary.port, password: PASSWORD },
  });
  await waitForReplicaLink(replica);
  const result = await probeReplication(primary.target, replica.target);
  t.ok(result.ok, result.evidence);
  const v = result.value!;
  t.equal(v.primary.role, 'master');
  t.equal(v.primary.connectedSlaves, 1);
  t.equal(v.primary.replicas[0]?.port, replica.port);
  t.equal(v.replica.role, 'slave');
  t.equal(v.replica.masterLinkStatus, 'up');
  t.equal(v.replica.masterPort, primary.port);
  t.type(v.markerSeenAfterMs, 'number');
  t.match(result.evidence, /marker seen on the replica after \d+ ms/);
  t.equal((await redisCli(primary, ['KEYS', `${PROBE_KEY_PREFIX}*`])).trim(), '', 'marker removed');
  t.notOk(leaksPassword(result), 'the result does not contain the password');
});

t.test('SC-002: replication fails with evidence when the replica is stopped', async (t) => {
  const primary = await startRedisServer(t, { password: PASSWORD });
  const replica = await startRedisServer(t, {
    password: PASSWORD,
    replicaOf: { host: primary.host, port: primary.port, password: PASSWORD },
  });
  await waitForReplicaLink(replica);
  await replica.stop();
  const result = await probeReplication(primary.target, replica.target);
  t.equal(result.ok, false);
  t.match(result.error, /^replica unreachable: .*refused the connection/);
});

t.test('replication fails with evidence when the replica follows another primary', async (t) => {
  const primary = await startRedisServer(t, { password: PASSWORD });
  const other = await startRedisServer(t, { password: PASSWORD });
  const replica = await startRedisServer(t, {
    password: PASSWORD,
    replicaOf: { host: other.host, port: other.port, password: PASSWORD },
  });
  await waitForReplicaLink(replica);
  const result = await probeReplication(primary.target, replica.target, { markerTimeoutMs: 300 });
  t.equal(result.ok, false);
  t.match(result.evidence, /problem: primary has no connected replica/);
  t.match(result.evidence, /problem: replica follows replication ID \w+, the primary has \w+/);
  t.match(
    result.evidence,
    /problem: marker \S+ written on the primary was not on the replica after 300 ms/,
  );
  t.equal(result.value?.markerSeenAfterMs, undefined);
});

t.test('replication fails when the "replica" is a primary and the primary is down', async (t) => {
  const a = await startRedisServer(t, { password: PASSWORD });
  const b = await startRedisServer(t, { password: PASSWORD });
  const notReplicated = await probeReplication(a.target, b.target, { markerTimeoutMs: 100 });
  t.equal(notReplicated.ok, false);
  t.match(notReplicated.evidence, /problem: replica role is master, not slave/);
  await a.stop();
  const down = await probeReplication(a.target, b.target);
  t.equal(down.ok, false);
  t.match(down.error, /^primary unreachable/);
});

t.test('SC-007: a marker survives a restart with AOF', async (t) => {
  const server = await startRedisServer(t, { password: PASSWORD, persistence: 'aof' });
  const written = await writePersistenceMarker(server.target);
  t.ok(written.ok, written.evidence);
  t.equal(written.value?.settings.appendonly, 'yes');
  t.equal(written.value?.settings.info.aofEnabled, true);
  t.match(written.evidence, /appendonly=yes appendfsync=everysec/);
  await server.restart();
  const checked = await checkPersistenceMarker(server.target, written.value!);
  t.ok(checked.ok, checked.evidence);
  t.equal(checked.value?.found, true);
  t.match(checked.evidence, /survived the restart/);
  t.equal((await redisCli(server, ['EXISTS', written.value!.key])).trim(), '0', 'marker removed');
});

t.test('SC-007: a marker is reported lost without persistence', async (t) => {
  const server = await startRedisServer(t, { password: PASSWORD, persistence: 'none' });
  const written = await writePersistenceMarker(server.target);
  t.ok(written.ok);
  t.equal(written.value?.settings.appendonly, 'no');
  t.equal(written.value?.settings.save, '');
  await server.restart();
  const checked = await checkPersistenceMarker(server.target, written.value!);
  t.equal(checked.ok, false);
  t.equal(checked.value?.found, false);
  t.match(checked.evidence, /was LOST \(read null\)/);
});

t.test('the persistence check is ok: false when the server is down', async (t) => {
  const server = await startRedisServer(t, { password: PASSWORD, persistence: 'rdb' });
  const written = await writePersistenceMarker(server.target);
  t.match(written.value?.settings.save, /^3600 1/);
  await server.stop();
  const checked = await checkPersistenceMarker(server.target, written.value!);
  t.equal(checked.ok, false);
  t.match(checked.error, /refused the connection/);
});

t.test(
  'US4: CLIENT LIST shows who is connected, by name and address, without the probe itself',
  async (t) => {
    const server = await startRedisServer(t, { password: PASSWORD });
    const app = new Redis({
      host: server.host,
      port: server.port,
      password: PASSWORD,
      connectionName: 'beersystem',
      lazyConnect: true,
    });
    app.on('error', () => {});
    await app.connect();
    t.teardown(() => app.disconnect());
    const result = await listClients({ ...server.target, name: 'runbook-probe' });
    t.ok(result.ok);
    t.equal(result.value?.length, 1);
    const c = result.value![0]!;
    t.equal(c.name, 'beersystem');
    t.match(c.addr, /^127\.0\.0\.1:\d+$/);
    t.match(c.laddr, `127.0.0.1:${server.port}`);
    t.equal(c.db, 0);
    t.type(c.ageSeconds, 'number');
    t.match(result.evidence, /1 other client\(s\)\n127\.0\.0\.1:\d+ name=beersystem age=\d+s/);
  },
);

t.test('US4: nobody else is connected to an idle server', async (t) => {
  const server = await startRedisServer(t, { password: PASSWORD });
  const result = await listClients(server.target);
  t.ok(result.ok);
  t.same(result.value, []);
  t.match(result.evidence, /: 0 other client\(s\)$/);
});

t.test('INFO is parsed into typed sections; DBSIZE and keyspace count keys', async (t) => {
  const server = await startRedisServer(t, { password: PASSWORD });
  const info = await readInfo(server.target);
  t.ok(info.ok);
  t.match(info.value?.server?.redis_version, /^\d+\.\d+/);
  t.equal(info.value?.replication?.role, 'master');
  t.match(info.evidence, /redis_version=/);
  const one = await readInfo(server.target, { section: 'memory' });
  t.same(Object.keys(one.value ?? {}), ['memory']);

  await redisCli(server, ['MSET', 'a', '1', 'b', '2', 'c', '3']);
  await redisCli(server, ['EXPIRE', 'a', '100']);
  await redisCli(server, ['-n', '2', 'SET', 'x', '1']);
  const counted = await countKeys(server.target);
  t.ok(counted.ok);
  t.equal(counted.value?.dbsize, 3);
  t.same(
    counted.value?.keyspace.map((d) => [d.db, d.keys, d.expires]),
    [
      [0, 3, 1],
      [2, 1, 0],
    ],
  );
  t.match(counted.evidence, /DBSIZE 3; db0 keys=3 expires=1; db2 keys=1 expires=0/);
});

t.test('the password never appeared in anything printed', async (t) => {
  t.notOk(printed.join('').includes(PASSWORD));
});
