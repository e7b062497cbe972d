import { readFileSync } from 'node:fs';
import t from 'tap';
import {
  clusterForSeconds,
  durationSeconds,
  SANDBOX_FOR_DIVISOR,
} from '../../sandbox/workloads/prometheus-config.ts';
import { loadAlerts } from '../helpers/terraform-alerts.ts';
import {
  eventually,
  runPod,
  secret,
  service,
  startWorkloads,
  type WorkloadsFixture,
} from '../helpers/workloads-cluster.ts';
import {
  beersystemPod,
  bitnamiPod,
  oldRedisPod,
  PASSWORD,
  redisCli,
} from '../helpers/workloads-pods.ts';

const POD = { group: '', version: 'v1', kind: 'Pod' };
const SERVICE_MONITOR = { group: 'monitoring.coreos.com', version: 'v1', kind: 'ServiceMonitor' };

t.test('beersystem stand-in and Prometheus', async (t) => {
  let fx: WorkloadsFixture | undefined;
  t.teardown(() => fx?.close());
  fx = await startWorkloads();
  const { cluster, workloads } = fx;
  cluster.apply(secret('beersystem', 'beersystem-redis', { password: PASSWORD }));
  cluster.apply(secret('beersystem', 'redis-credentials', { 'redis-password': PASSWORD }));
  cluster.apply(secret('redis', 'redis-credentials', { 'redis-password': PASSWORD }));
  cluster.apply(
    service('beersystem', 'redis', { app: 'redis' }, [{ port: 6379, targetPort: 6379 }]),
  );
  cluster.apply(
    service('beersystem', 'beersystem', { app: 'beersystem' }, [
      { name: 'http', port: 8080, targetPort: 'http' },
    ]),
  );
  const instance = {
    'app.kubernetes.io/name': 'redis',
    'app.kubernetes.io/instance': 'redis-shared',
  };
  cluster.apply(
    service(
      'redis',
      'redis-shared-master',
      { ...instance, 'app.kubernetes.io/component': 'master' },
      [{ name: 'tcp-redis', port: 6379, targetPort: 'redis' }],
    ),
  );
  cluster.apply(
    service(
      'redis',
      'redis-shared-metrics',
      instance,
      [{ name: 'http-metrics', port: 9121, targetPort: 'metrics' }],
      {
        labels: { ...instance, 'app.kubernetes.io/component': 'metrics' },
      },
    ),
  );
  const old = runPod(cluster, workloads, oldRedisPod());
  const master = runPod(cluster, workloads, bitnamiPod('master'));
  const replica = runPod(cluster, workloads, bitnamiPod('replica'));
  t.teardown(async () => {
    await Promise.all([old.stop(), master.stop(), replica.stop()]);
  });
  await Promise.all([old.ready(), master.ready(), replica.ready()]);
  const podIP = (ns: string, name: string) => cluster.get(POD, ns, name)!.status.podIP as string;

  await t.test(
    'SC-009: beersystem follows its env to the new Redis after a change and restart',
    async (t) => {
      const oldEnv = [
        { name: 'REDIS_HOST', value: 'redis.beersystem.svc.cluster.local' },
        { name: 'REDIS_PORT', value: '6379' },
        {
          name: 'REDIS_PASSWORD',
          valueFrom: { secretKeyRef: { name: 'beersystem-redis', key: 'password' } },
        },
      ];
      const app = runPod(cluster, workloads, beersystemPod(oldEnv));
      await app.ready();
      const base = `http://${podIP('beersystem', 'beersystem-7f9c8-xyz12')}:8080`;
      t.match(
        readFileSync(app.current().logFile, 'utf8'),
        /connected to redis\.beersystem\.svc\.cluster\.local:6379/,
      );
      t.match(
        await redisCli(podIP('beersystem', 'redis-6d4b7-abcde'), ['CLIENT', 'LIST']),
        /name=beersystem/,
      );
      const login = (await (await fetch(`${base}/login?user=ana`)).json()) as { session: string };
      t.match(login.session, /^[0-9a-f-]{36}$/, 'login gives a session');
      const session = (await (await fetch(`${base}/session?id=${login.session}`)).json()) as {
        user: string;
        ttl: number;
      };
      t.equal(session.user, 'ana', 'the session is kept in Redis');
      t.ok(session.ttl > 0, 'with a TTL');
      await fetch(`${base}/cache`, {
        method: 'POST',
        body: JSON.stringify({ key: 'beer', value: 'ipa' }),
      });
      t.same(await (await fetch(`${base}/cache?key=beer`)).json(), {
        key: 'beer',
        hit: true,
        value: 'ipa',
      });
      await app.stop();

      const newEnv = [
        { name: 'REDIS_HOST', value: 'redis-shared-master.redis.svc.cluster.local' },
        { name: 'REDIS_PORT', value: '6379' },
        {
          name: 'REDIS_PASSWORD',
          valueFrom: { secretKeyRef: { name: 'redis-credentials', key: 'redis-password' } },
        },
      ];
      const moved = runPod(cluster, workloads, beersystemPod(newEnv, 'beersystem-7f9c8-new01'));
      t.teardown(() => moved.stop());
      await moved.ready();
      t.match(
        readFileSync(moved.current().logFile, 'utf8'),
        /connected to redis-shared-master\.redis\.svc\.cluster\.local:6379/,
      );
      t.match(
        await redisCli(podIP('redis', 'redis-shared-master-0'), ['CLIENT', 'LIST']),
        /name=beersystem/,
      );
      const keys = await eventually('keys written with TTLs', async () => {
        const out = await redisCli(podIP('redis', 'redis-shared-master-0'), [
          'TTL',
          'beersystem:cache:heartbeat',
        ]);
        return Number(out) > 0 && out;
      });
      t.ok(Number(keys) > 0, 'the app writes cache keys with TTLs on the new Redis');
    },
  );

  await t.test(
    "SC-005: Prometheus scrapes both exporters and the module's RedisDown fires when the replica is killed",
    async (t) => {
      cluster.apply({
        apiVersion: 'monitoring.coreos.com/v1',
        kind: 'ServiceMonitor',
        metadata: {
          name: 'redis-shared',
          namespace: 'monitoring',
          labels: { release: 'kube-prometheus-stack' },
        },
        spec: {
          namespaceSelector: { matchNames: ['redis'] },
          selector: { matchLabels: { ...instance, 'app.kubernetes.io/component': 'metrics' } },
          endpoints: [{ port: 'http-metrics', interval: '15s' }],
        },
      });
      // The rules that ship: alerts.yaml rendered as the module (and the tofu stand-in) does.
      const { groups } = await loadAlerts();
      const shipped = groups.flatMap((g) => g.rules).find((r) => r.alert === 'RedisDown');
      cluster.apply({
        apiVersion: 'monitoring.coreos.com/v1',
        kind: 'PrometheusRule',
        metadata: { name: 'redis-shared', namespace: 'monitoring' },
        spec: { groups },
      });
      t.ok(cluster.get(SERVICE_MONITOR, 'monitoring', 'redis-shared'));
      const url = workloads.prometheusUrl();
      const query = async (q: string) =>
        (
          (await (await fetch(`${url}/api/v1/query?query=${encodeURIComponent(q)}`)).json()) as {
            data: { result: Array<{ metric: Record<string, string>; value: [number, string] }> };
          }
        ).data.result;
      const up = await eventually('redis_up for both pods', async () => {
        const result = await query('redis_up{service="redis-shared-metrics"}');
        return result.length === 2 && result.every((r) => r.value[1] === '1') && result;
      });
      t.same(up.map((r) => r.metric.pod).sort(), [
        'redis-shared-master-0',
        'redis-shared-replicas-0',
      ]);
      t.equal(up[0]?.metric.namespace, 'redis', 'targets carry the operator labels');

      const alerts = async () =>
        (
          (await (await fetch(`${url}/api/v1/alerts`)).json()) as {
            data: { alerts: Array<{ labels: Record<string, string>; state: string }> };
          }
        ).data.alerts;
      const loadedRules = await eventually('RedisDown loaded', async () => {
        const rules = (await (await fetch(`${url}/api/v1/rules`)).json()) as {
          data: {
            groups: Array<{ rules: Array<{ name: string; duration: number; query: string }> }>;
          };
        };
        const all = rules.data.groups.flatMap((g) => g.rules);
        return all.some((r) => r.name === 'RedisDown') ? all : undefined;
      });
      const loaded = loadedRules.find((r) => r.name === 'RedisDown')!;
      t.match(
        loadedRules.find((r) => r.name === 'RedisLowHitRate')?.query,
        /rate\(redis_keyspace_hits_total\[10s\]\)/,
        'range windows run on the same compressed clock as for: ([5m] → [10s])',
      );
      t.equal(
        loaded.duration,
        durationSeconds(shipped?.for ?? '') / SANDBOX_FOR_DIVISOR,
        `the sandbox runs RedisDown's for: ${shipped?.for} divided by ${SANDBOX_FOR_DIVISOR}`,
      );
      t.equal(
        clusterForSeconds(loaded.duration),
        60,
        'the shipped for: 1m is recovered from the rules API',
      );
      const faults = workloads.plugins.find((p) => p.name === 'faults')!;
      replica.expectRestarts();
      await faults.handleFault!(['kill', 'redis/redis-shared-replicas-0']);
      const firing = await eventually(
        'RedisDown firing',
        async () =>
          (await alerts()).find((a) => a.labels.alertname === 'RedisDown' && a.state === 'firing'),
        20_000,
      );
      t.equal(
        firing.labels.pod,
        'redis-shared-replicas-0',
        'RedisDown fires for the killed replica',
      );
      await eventually(
        'the replica back',
        () => replica.ready().then(() => replica.restarts() === 1),
        30_000,
      );
    },
  );

  await t.test('a Prometheus that dies is started again', async (t) => {
    const url = workloads.prometheusUrl();
    const pidOf = () =>
      workloads
        .pids()
        .find((pid) => readFileSync(`/proc/${pid}/cmdline`, 'utf8').startsWith('prometheus'));
    const before = pidOf();
    t.ok(before);
    process.kill(before!, 'SIGKILL');
    const after = await eventually('a new prometheus', async () => {
      const pid = pidOf();
      return pid !== undefined && pid !== before && (await fetch(`${url}/-/ready`)).ok && pid;
    });
    t.not(after, before);
  });
});
