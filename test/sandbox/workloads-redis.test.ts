import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { assertBinaries, assertMountNamespaces } from '../../sandbox/workloads/binaries.ts';
import { isAlive } from '../../sandbox/workloads/supervisor.ts';
import {
  eventually,
  runPod,
  secret,
  service,
  startWorkloads,
  type WorkloadsFixture,
} from '../helpers/workloads-cluster.ts';
import { bitnamiPod, jobPod, oldRedisPod, PASSWORD, redisCli } from '../helpers/workloads-pods.ts';

t.test('a missing binary stops the workloads with the apt-get command to run', async (t) => {
  t.throws(() => assertBinaries('/nonexistent'), {
    message:
      /redis-server, redis-cli, redis-benchmark, prometheus, prometheus-redis-exporter.*apt-get install -y --no-install-recommends redis-server redis-tools prometheus prometheus-redis-exporter/,
  });
  t.doesNotThrow(() => assertBinaries());
  t.doesNotThrow(() => assertMountNamespaces(), 'mount namespaces work here (root)');
});

t.test('Redis pods run real redis-server processes', async (t) => {
  let fx: WorkloadsFixture | undefined;
  t.teardown(() => fx?.close());
  fx = await startWorkloads();
  const { cluster, workloads } = fx;
  cluster.apply(secret('beersystem', 'beersystem-redis', { password: PASSWORD }));
  cluster.apply(secret('redis', 'redis-credentials', { 'redis-password': PASSWORD }));
  cluster.apply(
    service('beersystem', 'redis', { app: 'redis' }, [
      { name: 'redis', port: 6379, targetPort: 'redis' },
    ]),
  );
  cluster.apply(
    service('redis', 'redis-shared-master', { 'app.kubernetes.io/component': 'master' }, [
      { name: 'tcp-redis', port: 6379, targetPort: 'redis' },
    ]),
  );

  await t.test("old Redis answers a Job's redis-cli PING through cluster DNS", async (t) => {
    const old = runPod(cluster, workloads, oldRedisPod());
    t.teardown(() => old.stop());
    await old.ready();
    const job = runPod(
      cluster,
      workloads,
      jobPod('beersystem', 'redis-ping-abcde', {
        command: ['redis-cli', '-h', 'redis.beersystem.svc.cluster.local', 'PING'],
        env: [
          {
            name: 'REDISCLI_AUTH',
            valueFrom: { secretKeyRef: { name: 'beersystem-redis', key: 'password' } },
          },
        ],
      }),
    );
    t.equal(await job.finished, 0, 'the Job succeeds');
    t.match(readFileSync(job.current().logFile, 'utf8'), /PONG/, 'its log is the command output');

    const shortName = runPod(
      cluster,
      workloads,
      jobPod('beersystem', 'redis-short-abcde', {
        // The password reaches redis-cli through its environment, never through argv.
        command: ['sh', '-c', 'redis-cli -h redis PING | grep -qx PONG && exit 3'],
        env: [
          {
            name: 'REDISCLI_AUTH',
            valueFrom: { secretKeyRef: { name: 'beersystem-redis', key: 'password' } },
          },
        ],
      }),
    );
    t.equal(
      await shortName.finished,
      3,
      "the short name resolves in the Service's namespace and the exit code is the Job's",
    );

    const elsewhere = runPod(
      cluster,
      workloads,
      jobPod('default', 'redis-other-abcde', { command: ['redis-cli', '-h', 'redis', 'PING'] }),
    );
    t.not(await elsewhere.finished, 0, 'the short name does not resolve from another namespace');

    cluster.apply(secret('default', 'beersystem-redis', { password: PASSWORD }));
    const qualified = runPod(
      cluster,
      workloads,
      jobPod('default', 'redis-qualified-abcde', {
        command: ['sh', '-c', 'redis-cli -h redis.beersystem PING | grep -qx PONG'],
        env: [
          {
            name: 'REDISCLI_AUTH',
            valueFrom: { secretKeyRef: { name: 'beersystem-redis', key: 'password' } },
          },
        ],
      }),
    );
    t.equal(await qualified.finished, 0, '<svc>.<ns> resolves from another namespace');
  });

  await t.test('the password is in a 0600 config file, never in argv', async (t) => {
    const old = runPod(cluster, workloads, oldRedisPod('redis-6d4b7-fghij'));
    t.teardown(() => old.stop());
    await old.ready();
    const conf = join(fx!.runDir, 'pods', 'beersystem', 'redis-6d4b7-fghij', 'redis.conf');
    t.equal(statSync(conf).mode & 0o777, 0o600);
    for (const pid of workloads.pids()) {
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      t.notMatch(cmdline, PASSWORD, `pid ${pid} argv has no password`);
    }
    const ip = cluster.get(
      { group: '', version: 'v1', kind: 'Pod' },
      'beersystem',
      'redis-6d4b7-fghij',
    )!.status.podIP;
    t.match(
      await redisCli(ip, ['SET', 'k', 'v'], 'wrong-password'),
      /NOAUTH|WRONGPASS/,
      'a wrong password is refused',
    );
  });

  await t.test(
    'master and replica replicate, keep data across pod deletion, refuse FLUSHALL',
    async (t) => {
      const master = runPod(cluster, workloads, bitnamiPod('master'));
      const replica = runPod(cluster, workloads, bitnamiPod('replica'));
      t.teardown(async () => {
        await replica.stop();
      });
      await Promise.all([master.ready(), replica.ready()]);
      const podIP = (name: string) =>
        cluster.get({ group: '', version: 'v1', kind: 'Pod' }, 'redis', name)!.status.podIP;
      const masterIP = podIP('redis-shared-master-0');
      const replicaIP = podIP('redis-shared-replicas-0');
      t.equal(await redisCli(masterIP, ['SET', 'sc007', 'kept']), 'OK');
      t.equal(
        await eventually(
          'the key on the replica',
          async () => (await redisCli(replicaIP, ['GET', 'sc007'])) === 'kept' && 'kept',
        ),
        'kept',
        'a key written on the master is read on the replica',
      );
      t.match(await redisCli(replicaIP, ['INFO', 'replication']), /role:slave/);
      t.match(await redisCli(masterIP, ['FLUSHALL']), /unknown command/i, 'FLUSHALL is disabled');
      t.match(await redisCli(masterIP, ['CONFIG', 'GET', 'appendonly']), /yes/, 'AOF is on');

      const pids = workloads.pids();
      await master.stop();
      const again = runPod(cluster, workloads, bitnamiPod('master'));
      t.teardown(() => again.stop());
      await again.ready();
      t.equal(
        await redisCli(podIP('redis-shared-master-0'), ['GET', 'sc007']),
        'kept',
        'SC-007: the key survives pod deletion',
      );
      t.ok(
        pids.some((pid) => !isAlive(pid)),
        'the old master process is gone',
      );
    },
  );
});
