// The probe Job: its manifest holds the password only by reference, its output is parsed, and its
// scripts are run for real (sh, redis-cli, redis-benchmark) against a real master and replica.
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { promisify } from 'node:util';
import t from 'tap';
import {
  MARKER_SEEN,
  manifestHasLiteral,
  parseProbeOutput,
  parseReadLoopOutput,
  probeJobManifest,
  probeScript,
  readLoopJobManifest,
  readLoopScript,
  splitSections,
} from '../../lib/cluster/probe-job.ts';
import { redisCli, startRedisServer, waitForReplicaLink } from '../helpers/redis-server.ts';
import { eventually } from '../helpers/workloads-cluster.ts';

const exec = promisify(execFile);

const SECRET = 'probe-job-secret-7f3a9c1e55';

t.test('the probe Job carries the password only by reference', async (t) => {
  const input = {
    name: 'redis-shared-probe-abc',
    namespace: 'beersystem',
    image: 'bitnamilegacy/redis:8.2.1-debian-12-r0',
    secretName: 'redis-credentials',
    secretKey: 'redis-password',
    masterHost: 'redis-shared-master.redis.svc.cluster.local',
    replicaHost: 'redis-shared-replicas.redis.svc.cluster.local',
    port: 6379,
    probeKey: 'runbook:probe:abc',
    roundTrips: 1000,
  };
  const job = probeJobManifest(input);
  const container = job.spec.template.spec.containers[0];
  t.same(container.env, [
    {
      name: 'REDIS_PASSWORD',
      valueFrom: { secretKeyRef: { name: 'redis-credentials', key: 'redis-password' } },
    },
  ]);
  t.equal(job.spec.backoffLimit, 0);
  t.equal(job.spec.template.spec.restartPolicy, 'Never');
  t.notOk(manifestHasLiteral(job, SECRET));
  t.ok(manifestHasLiteral({ env: [{ value: SECRET }] }, SECRET));
  t.notOk(manifestHasLiteral(job, ''));
  const loop = readLoopJobManifest({
    ...input,
    name: 'redis-shared-failover-reads',
    markerKey: 'k',
    doneKey: 'd',
    maxSeconds: 120,
  });
  t.equal(loop.spec.activeDeadlineSeconds, 180);
  t.same(loop.spec.template.spec.containers[0].env, container.env);
});

t.test('probe output parsing: anything missing is a failed check', async (t) => {
  t.same(splitSections('noise\n==a==\nx\n==b=='), { a: 'x\n', b: '' });
  const empty = parseProbeOutput('');
  t.notOk(empty.pong);
  t.notOk(empty.setOk);
  t.notOk(empty.getMatched);
  t.equal(empty.resolved, undefined);
  t.equal(empty.markerTries, undefined);
  t.same(empty.bench, []);
  t.notOk(empty.complete);
  const unresolved = parseProbeOutput(
    '==dns==\nunresolved x\n==get==\n(error) NOAUTH x\n==marker==\ntries=50 value=\n',
  );
  t.equal(unresolved.resolved, undefined);
  t.notOk(unresolved.getMatched);
  t.equal(unresolved.markerTries, undefined);
  t.equal(parseReadLoopOutput('nothing'), undefined);
  t.same(parseReadLoopOutput('read failed: x\nreads ok=10 failed=1\n'), {
    ok: 10,
    failed: 1,
    sawDone: true,
  });
  t.same(parseReadLoopOutput('gave up after 5s\nreads ok=3 failed=0\n'), {
    ok: 3,
    failed: 0,
    sawDone: false,
  });
});

/** The probe Job's script against two local servers, run here by `sh` as the Job would. */
function localProbeScript(
  master: { host: string; port: number },
  replica: { port: number },
  probeKey: string,
  roundTrips: number,
): string {
  return probeScript({
    name: 'x',
    namespace: 'beersystem',
    image: 'unused',
    secretName: 's',
    secretKey: 'k',
    masterHost: master.host,
    // The replica's own name resolves to the same loopback address; only its port differs.
    replicaHost: 'localhost',
    port: master.port,
    replicaPort: replica.port,
    probeKey,
    roundTrips,
  });
}

t.test('the probe script, run for real against a master and its replica', async (t) => {
  const master = await startRedisServer(t, { password: SECRET });
  const replica = await startRedisServer(t, {
    password: SECRET,
    replicaOf: { host: master.host, port: master.port, password: SECRET },
  });
  await waitForReplicaLink(replica);
  const script = localProbeScript(master, replica, 'runbook:probe:test', 200);
  const { stdout, stderr } = await exec('sh', ['-c', script], {
    env: { ...process.env, REDIS_PASSWORD: SECRET, HOSTNAME: 'probe-pod' },
  });
  t.notOk(stdout.includes(SECRET) || stderr.includes(SECRET), 'the password is never printed');
  const out = parseProbeOutput(stdout, 'probe-pod');
  t.equal(out.resolved, '127.0.0.1');
  t.ok(out.pong, 'PING answered with the password from the environment');
  t.ok(out.setOk);
  t.ok(out.getMatched);
  t.same(
    out.bench.map((r) => r.test),
    ['SET', 'GET'],
  );
  t.ok((out.bench[0]?.p95LatencyMs ?? -1) >= 0);
  t.equal(out.master.role, 'master');
  t.equal(out.replica.role, 'slave');
  t.equal(out.replica.masterLinkStatus, 'up');
  t.type(out.markerTries, 'number', 'the marker written on the master was read on the replica');
  t.ok(out.complete);
});

t.test(
  'a replica still in its first sync is given time: its link and the master count it',
  async (t) => {
    const master = await startRedisServer(t, { password: SECRET });
    const replica = await startRedisServer(t, { password: SECRET });
    const script = localProbeScript(master, replica, 'runbook:probe:sync', 10);
    const child = spawn('sh', ['-c', script], {
      env: { ...process.env, REDIS_PASSWORD: SECRET, HOSTNAME: 'probe-pod' },
    });
    let stdout = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    const exited = once(child, 'close');
    // Only once the script waits on the replica's link does the replica start replicating.
    await eventually('the script reached the replica', () => stdout.includes('==info-replica=='));
    await redisCli(replica, ['CONFIG', 'SET', 'masterauth', SECRET]);
    await redisCli(replica, ['REPLICAOF', master.host, String(master.port)]);
    await exited;
    const out = parseProbeOutput(stdout, 'probe-pod');
    t.equal(out.replica.masterLinkStatus, 'up', 'the link came up while the script waited');
    t.equal(out.master.connectedSlaves, 1, "the master's INFO, taken after, counts the replica");
    t.type(out.markerTries, 'number');
    t.ok(out.complete);
  },
);

t.test(
  'the replica read loop counts reads from the marker on and stops on the done key',
  async (t) => {
    const server = await startRedisServer(t, { password: SECRET });
    const cli = (...args: string[]) =>
      exec(
        'redis-cli',
        ['--no-auth-warning', '-h', server.host, '-p', String(server.port), ...args],
        {
          env: { ...process.env, REDISCLI_AUTH: SECRET },
        },
      );
    const script = (markerKey: string, doneKey: string, maxSeconds: number) =>
      readLoopScript({
        name: 'x',
        namespace: 'beersystem',
        image: 'unused',
        secretName: 's',
        secretKey: 'k',
        replicaHost: server.host,
        port: server.port,
        markerKey,
        doneKey,
        maxSeconds,
      });
    const env = { ...process.env, REDIS_PASSWORD: SECRET };

    // The marker not there yet (a replica catching up): not counted, the loop gives up in time.
    const absent = await exec('sh', ['-c', script('absent', 'never', 1)], { env });
    t.same(parseReadLoopOutput(absent.stdout), { ok: 0, failed: 0, sawDone: false });
    t.notMatch(absent.stdout, MARKER_SEEN);

    // Seen, then lost (what a failed read is), then done.
    await cli('SET', 'marker', 'v');
    const child = spawn('sh', ['-c', script('marker', 'done', 30)], { env });
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
    });
    const closed = once(child, 'close');
    await eventually(
      'the loop to see the marker',
      async () => out.includes(MARKER_SEEN) || undefined,
      10_000,
    );
    await cli('DEL', 'marker');
    await eventually('a failed read', async () => out.includes('read failed') || undefined, 10_000);
    await cli('SET', 'done', 'done');
    await closed;
    const tally = parseReadLoopOutput(out);
    t.ok((tally?.ok ?? 0) >= 1, 'the reads that found the marker');
    t.ok(
      (tally?.failed ?? 0) >= 1,
      'a read after the marker was seen that found nothing is a failure',
    );
    t.equal(tally?.sawDone, true);
  },
);
