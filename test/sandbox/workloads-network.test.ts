import { readFileSync } from 'node:fs';
import t from 'tap';
import { KILL_BACKOFF_MS } from '../../sandbox/workloads/pod-process.ts';
import {
  eventually,
  runPod,
  secret,
  service,
  startWorkloads,
  type WorkloadsFixture,
} from '../helpers/workloads-cluster.ts';
import { bitnamiPod, PASSWORD, redisCli, redisPingFrom } from '../helpers/workloads-pods.ts';

const POD = { group: '', version: 'v1', kind: 'Pod' };
// This sandbox's own Redis LoadBalancer address (sandbox/lb-pool.ts), which no other holds.
let LB_IP = '';

const pingFrom = (source: string, host: string, port: number) => redisPingFrom(source, host, port);

const lbPool = () => ({
  apiVersion: 'metallb.io/v1beta1',
  kind: 'IPAddressPool',
  metadata: { name: 'test-pool', namespace: 'metallb-system' },
  spec: { addresses: [`${LB_IP}/32`] },
});
const l2Advertisement = {
  apiVersion: 'metallb.io/v1beta1',
  kind: 'L2Advertisement',
  metadata: { name: 'test-l2', namespace: 'metallb-system' },
  spec: { ipAddressPools: ['test-pool'] },
};

t.test('Services, LoadBalancer, partitions and kills', async (t) => {
  let fx: WorkloadsFixture | undefined;
  t.teardown(() => fx?.close());
  fx = await startWorkloads();
  const { cluster, workloads } = fx;
  LB_IP = workloads.network.redisLbIp;
  cluster.apply(secret('redis', 'redis-credentials', { 'redis-password': PASSWORD }));
  const masterSelector = {
    'app.kubernetes.io/instance': 'redis-shared',
    'app.kubernetes.io/component': 'master',
  };
  cluster.apply(
    service('redis', 'redis-shared-master', masterSelector, [
      { name: 'tcp-redis', port: 6379, targetPort: 'redis' },
    ]),
  );
  // MetalLB's view of the address: a pool holding it, an advertisement announcing that pool, and
  // the pool recorded on the Service (the workload half answers only for announced addresses).
  cluster.apply(lbPool());
  cluster.apply(l2Advertisement);
  const external = service(
    'redis',
    'redis-shared-external',
    masterSelector,
    [{ name: 'redis', port: 6379, targetPort: 6379 }],
    {
      spec: {
        type: 'LoadBalancer',
        loadBalancerSourceRanges: ['127.0.0.0/24'],
        externalTrafficPolicy: 'Local',
      },
      status: { loadBalancer: { ingress: [{ ip: LB_IP }] } },
    },
  );
  external.metadata.annotations = { 'metallb.io/ip-allocated-from-pool': 'test-pool' };
  cluster.apply(external);
  const master = runPod(cluster, workloads, bitnamiPod('master', 0, false));
  const replica = runPod(cluster, workloads, bitnamiPod('replica', 0, false));
  t.teardown(async () => {
    await replica.stop();
    await master.stop();
  });
  await Promise.all([master.ready(), replica.ready()]);
  const replicaIP = cluster.get(POD, 'redis', 'redis-shared-replicas-0')!.status.podIP;
  const masterIP = cluster.get(POD, 'redis', 'redis-shared-master-0')!.status.podIP;

  await t.test(
    'SC-004: the LoadBalancer accepts 127.0.0.1 and drops a source outside the ranges',
    async (t) => {
      await eventually(
        'the LB listening',
        async () => (await pingFrom('127.0.0.1', LB_IP, 6379)) === 'PONG',
      );
      t.equal(await pingFrom('127.0.0.1', LB_IP, 6379), 'PONG', 'inside 127.0.0.0/24');
      const started = Date.now();
      t.equal(
        await pingFrom('127.0.1.5', LB_IP, 6379),
        'timeout',
        'from 127.0.1.5 nothing comes back: dropped as kube-proxy drops it, not reset',
      );
      t.ok(Date.now() - started >= 2900, 'the client waited out its own timeout');
      cluster.patch(
        { group: '', version: 'v1', kind: 'Service' },
        'redis',
        'redis-shared-external',
        {
          spec: { loadBalancerSourceRanges: ['127.0.1.0/24'] },
        },
      );
      t.equal(
        await pingFrom('127.0.1.5', LB_IP, 6379),
        'PONG',
        'a changed range applies to new connections',
      );
      t.equal(
        await pingFrom('127.0.0.1', LB_IP, 6379),
        'timeout',
        'and 127.0.0.1, now outside it, is dropped',
      );
      cluster.patch(
        { group: '', version: 'v1', kind: 'Service' },
        'redis',
        'redis-shared-external',
        { spec: { loadBalancerSourceRanges: ['127.0.0.0/24'] } },
      );
    },
  );

  await t.test('an address no advertisement announces does not answer', async (t) => {
    await eventually(
      'the LB answering',
      async () => (await pingFrom('127.0.0.1', LB_IP, 6379)) === 'PONG',
    );
    cluster.delete('L2Advertisement', 'metallb-system', 'test-l2');
    t.equal(
      await eventually('the LB silent', async () => {
        const r = await pingFrom('127.0.0.1', LB_IP, 6379);
        return r !== 'PONG' && r;
      }),
      'ECONNREFUSED',
      'without an L2Advertisement for its pool nothing answers at the address',
    );
    cluster.apply({ ...l2Advertisement, spec: {} });
    t.equal(
      await eventually(
        'the LB back',
        async () => (await pingFrom('127.0.0.1', LB_IP, 6379)) === 'PONG' && 'PONG',
      ),
      'PONG',
      'an advertisement with no pool list announces every pool',
    );
  });

  await t.test('HTTP reaches a Service through the service proxy target', async (t) => {
    const target = cluster.proxyTargets.get('redis/redis-shared-master:6379');
    t.match(target, /^http:\/\/127\.\d+\.128\.\d+:6379$/, 'the target is the ClusterIP');
  });

  await t.test('partition cuts the replica from its master; heal restores it', async (t) => {
    await eventually('replication up', async () =>
      /master_link_status:up/.test(await redisCli(replicaIP, ['INFO', 'replication'])),
    );
    const readiness: boolean[] = [];
    replica.current().onReadinessChange?.((ready) => readiness.push(ready));
    const faults = workloads.plugins.find((p) => p.name === 'faults')!;
    t.match(
      await faults.handleFault!(['partition', 'redis/redis-shared-replicas-0']),
      /partitioned/,
    );
    await eventually('replication down', async () =>
      /master_link_status:down/.test(await redisCli(replicaIP, ['INFO', 'replication'])),
    );
    await redisCli(masterIP, ['SET', 'during-partition', 'x']);
    t.equal(
      await redisCli(replicaIP, ['GET', 'during-partition']),
      '',
      'a write during the partition does not reach the replica',
    );
    await eventually('the replica not Ready', () => readiness.length >= 1);
    t.same(readiness, [false], 'its readiness probe sees the cut link');
    t.match(await faults.handleFault!(['heal']), /1 partition/);
    t.equal(
      await eventually(
        'the key after heal',
        async () => (await redisCli(replicaIP, ['GET', 'during-partition'])) === 'x' && 'x',
      ),
      'x',
      'after heal the replica catches up',
    );
    await eventually('the replica Ready again', () => readiness.length >= 2);
    t.same(readiness, [false, true], 'not Ready while cut off, Ready again once healed');
    t.equal(
      await faults.handleFault!(['api-error', '3', '500']),
      undefined,
      "other faults are not this plugin's",
    );
    await t.rejects(faults.handleFault!(['kill', 'redis/nope']), /no running pod redis\/nope/);
  });

  await t.test('fault kill: the process dies and restarts after the back-off', async (t) => {
    const faults = workloads.plugins.find((p) => p.name === 'faults')!;
    const before = replica.current();
    const pid = workloads
      .pids()
      .find((p) => readFileSync(`/proc/${p}/cmdline`, 'utf8').startsWith('redis-server'));
    t.ok(pid);
    const started = Date.now();
    replica.expectRestarts();
    t.match(await faults.handleFault!(['kill', 'redis/redis-shared-replicas-0']), /killed/);
    t.equal(await before.exited, 137, 'the process was killed');
    await eventually(
      'the restarted replica',
      async () => {
        if (replica.current() === before) return false;
        await replica.ready();
        return true;
      },
      30_000,
    );
    t.ok(Date.now() - started >= KILL_BACKOFF_MS - 100, 'it came back after the crash back-off');
    t.equal(replica.restarts(), 1);
    t.match(await redisCli(replicaIP, ['PING']), 'PONG');
  });
});
