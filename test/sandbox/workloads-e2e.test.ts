// The workload half end to end: the sandbox's API half with real processes behind it, driven by
// kubectl, the tofu stand-in and the sandbox's admin calls, as a runbook rehearsal would.
import { writeFileSync } from 'node:fs';
import t from 'tap';
import { measureWorkloads, processTreeRssBytes } from '../../sandbox/workloads/index.ts';
import { isAlive } from '../../sandbox/workloads/supervisor.ts';
import { secretPassword } from '../helpers/secret.ts';
import { eventually } from '../helpers/workloads-cluster.ts';
import { redisCli, redisPingFrom } from '../helpers/workloads-pods.ts';
import {
  type SandboxFixture,
  sandboxVars,
  startWholeSandbox,
} from '../helpers/workloads-sandbox.ts';

// Set once the sandbox is up: its own LoadBalancer pool.
let LB_IP = '';
let OUTSIDE = '';
// Real processes and a dozen tofu/kubectl runs: more than the default per-file timeout when
// the machine's two cores are shared with other suites.
t.setTimeout(240_000);

const pingFrom = (source: string, password: string) => redisPingFrom(source, LB_IP, 6379, password);
// Real processes under a shared CPU: a little longer than the helper's default.
const until = <T>(what: string, check: () => Promise<T | undefined | false>) =>
  eventually(what, check, 30_000);

t.test('the sandbox with real workloads', async (t) => {
  let fx: SandboxFixture | undefined;
  let pids: number[] = [];
  t.teardown(async () => {
    await fx?.close();
  });
  fx = await startWholeSandbox();
  const { kubectl, tofu, admin, sandbox } = fx;
  LB_IP = sandbox.network.redisLbIp;
  OUTSIDE = sandbox.network.outsideProbeSource;
  await sandbox.settled(30_000);
  const podIP = async (ns: string, pod: string) =>
    (await kubectl(['get', 'pod', pod, '-n', ns, '-o', 'jsonpath={.status.podIP}'])).trim();
  /** The pod's Ready condition, `True` or `False`. */
  const podReady = (ns: string, pod: string) =>
    kubectl([
      'get',
      'pod',
      pod,
      '-n',
      ns,
      '-o',
      'jsonpath={.status.conditions[?(@.type=="Ready")].status}',
    ]);

  await t.test('the bench measurements see every workload process', async (t) => {
    const measured = await measureWorkloads(fx!.workloads, sandbox.cluster, Date.now());
    t.ok(measured.processes >= 4, 'the sandbox, old Redis, beersystem and Prometheus');
    t.ok(measured.rssBytes > 0);
    // Memory moves a little between the two readings; the tree holds the same processes.
    t.ok(
      processTreeRssBytes(process.pid) >= measured.rssBytes * 0.9,
      'the process tree of the sandbox holds them all',
    );
  });

  await t.test("old Redis answers a Job's redis-cli PING through cluster DNS", async (t) => {
    const job = {
      apiVersion: 'batch/v1',
      kind: 'Job',
      metadata: { name: 'ping-old-redis', namespace: 'beersystem' },
      spec: {
        backoffLimit: 0,
        template: {
          spec: {
            restartPolicy: 'Never',
            containers: [
              {
                name: 'ping',
                image: 'redis:7',
                command: ['redis-cli', '-h', 'redis.beersystem.svc.cluster.local', 'PING'],
                env: [
                  {
                    name: 'REDISCLI_AUTH',
                    valueFrom: {
                      secretKeyRef: { name: 'beersystem-redis', key: 'redis-password' },
                    },
                  },
                ],
              },
            ],
          },
        },
      },
    };
    const file = `${fx!.runDir}/job.json`;
    writeFileSync(file, JSON.stringify(job));
    await kubectl(['apply', '--server-side', '-f', file]);
    await kubectl([
      'wait',
      '--for=condition=complete',
      'job/ping-old-redis',
      '-n',
      'beersystem',
      '--timeout=30s',
    ]);
    t.match(await kubectl(['logs', 'job/ping-old-redis', '-n', 'beersystem']), /PONG/);
  });

  let password = '';
  await t.test(
    'after a tofu apply the master and replica pods are Ready and replicate',
    async (t) => {
      const applied = await tofu(['apply', '-auto-approve', ...sandboxVars(sandbox.network)]);
      t.match(applied.stdout, /Apply complete! Resources: 8 added, 0 changed, 0 destroyed\./);
      await kubectl([
        'wait',
        '--for=condition=Ready',
        'pod/redis-shared-master-0',
        'pod/redis-shared-replicas-0',
        '-n',
        'redis',
        '--timeout=30s',
      ]);
      password = await secretPassword(kubectl, 'redis');
      t.equal(password.length, 32);
      t.notMatch(applied.stdout + applied.stderr, password, 'the password is not printed');
      // MetalLB's answer comes first, then the network plugin's listener: go on once it answers.
      await eventually(
        'this sandbox listening on the LoadBalancer address',
        async () => (await pingFrom('127.0.0.1', password)) === 'PONG',
        120_000,
      );
      t.equal(
        await redisCli(LB_IP, ['SET', 'sc007', 'kept'], password),
        'OK',
        'written on the master through the LoadBalancer',
      );
      const replicaIP = await podIP('redis', 'redis-shared-replicas-0');
      t.equal(
        await until(
          'the key on the replica',
          async () => (await redisCli(replicaIP, ['GET', 'sc007'], password)) === 'kept' && 'kept',
        ),
        'kept',
        'read on the replica',
      );
    },
  );

  await t.test('SC-007: a key survives kubectl delete pod redis-shared-master-0', async (t) => {
    const uid = () =>
      kubectl([
        'get',
        'pod',
        'redis-shared-master-0',
        '-n',
        'redis',
        '-o',
        'jsonpath={.metadata.uid}',
      ]);
    const before = await uid();
    // kubectl's own --wait lists by name after its first read and never ends when the
    // StatefulSet recreated the pod in between (kubectl 1.32): the pods are told apart by UID.
    await kubectl(['delete', 'pod', 'redis-shared-master-0', '-n', 'redis', '--wait=false']);
    await until(
      'the new master Ready',
      async () =>
        (await uid().catch(() => before)) !== before &&
        (await podReady('redis', 'redis-shared-master-0')) === 'True',
    );
    t.equal(await redisCli(LB_IP, ['GET', 'sc007'], password), 'kept');
  });

  await t.test(
    'SC-004: the LoadBalancer accepts 127.0.0.1 and drops an outside source',
    async (t) => {
      t.equal(await pingFrom('127.0.0.1', password), 'PONG');
      t.equal(
        await pingFrom(OUTSIDE, password),
        'timeout',
        'a source outside the ranges is dropped: no reply, the client times out',
      );
    },
  );

  await t.test(
    'beersystem follows its env to the new Redis after a change and restart',
    async (t) => {
      const applied = await tofu([
        'apply',
        '-auto-approve',
        ...sandboxVars(sandbox.network),
        '-var',
        'enable_beersystem_migration=true',
      ]);
      t.match(applied.stdout, /1 added, 0 changed, 0 destroyed/);
      await kubectl([
        'rollout',
        'status',
        'deployment/beersystem',
        '-n',
        'beersystem',
        '--timeout=30s',
      ]);
      const logs = await until('the new pod connected', async () => {
        const out = await kubectl(['logs', 'deployment/beersystem', '-n', 'beersystem']);
        return /connected to redis-shared-master\.redis\.svc\.cluster\.local:6379/.test(out) && out;
      });
      t.match(logs, /connected to redis-shared-master/);
      const health = await fetch(
        `${sandbox.url}/api/v1/namespaces/beersystem/services/beersystem:8080/proxy/healthz`,
      );
      t.equal(health.status, 200, 'healthz through the service proxy');
      const app = `${sandbox.url}/api/v1/namespaces/beersystem/services/beersystem:8080/proxy`;
      const login = (await (await fetch(`${app}/login?user=rehearsal`)).json()) as {
        session: string;
      };
      const session = (await (await fetch(`${app}/session?id=${login.session}`)).json()) as {
        user: string;
      };
      t.equal(session.user, 'rehearsal', 'T041: login and session through the service proxy');
      await fetch(`${app}/cache?key=beer&value=stout`);
      t.same(
        await (await fetch(`${app}/cache?key=beer`)).json(),
        { key: 'beer', hit: true, value: 'stout' },
        'T041: cache',
      );
      t.equal(
        await redisCli(LB_IP, ['GET', 'beersystem:cache:beer'], password),
        'stout',
        'kept in redis-shared',
      );
      t.match(
        await redisCli(LB_IP, ['CLIENT', 'LIST'], password),
        /name=beersystem/,
        'its connection is in CLIENT LIST',
      );
    },
  );

  await t.test(
    'Prometheus reports redis_up for both pods and RedisDown fires after fault kill',
    async (t) => {
      const prom = `${sandbox.url}/api/v1/namespaces/monitoring/services/kube-prometheus-stack-prometheus:9090/proxy`;
      const up = await until('redis_up for both pods', async () => {
        const res = (await (await fetch(`${prom}/api/v1/query?query=redis_up`)).json()) as {
          data: { result: Array<{ metric: { pod: string }; value: [number, string] }> };
        };
        const pods = res.data.result
          .filter((r) => r.value[1] === '1')
          .map((r) => r.metric.pod)
          .sort();
        return pods.length === 2 && pods;
      });
      t.same(up, ['redis-shared-master-0', 'redis-shared-replicas-0']);
      const containerLog = (container: string) =>
        kubectl(['logs', 'redis-shared-master-0', '-n', 'redis', '-c', container]);
      const exporterLog = await containerLog('metrics');
      t.match(exporterLog, /Redis Metrics Exporter/, 'logs -c metrics is the exporter output');
      t.notMatch(exporterLog, /Ready to accept connections/, 'and not the Redis log');
      t.match(
        await containerLog('redis'),
        /Ready to accept connections/,
        'logs -c redis is the Redis output',
      );
      t.match(
        await kubectl([
          'logs',
          '-n',
          'monitoring',
          'prometheus-kube-prometheus-stack-prometheus-0',
        ]),
        /Completed loading of configuration file/,
        "the Prometheus pod's log is the sandbox Prometheus's output, reloads included",
      );
      const killed = await admin('/sandbox/fault', {
        args: ['kill', 'redis/redis-shared-replicas-0'],
      });
      t.equal(killed.status, 200);
      t.match(killed.message, /killed redis\/redis-shared-replicas-0/);
      const alert = await until('RedisDown firing', async () => {
        const res = (await (await fetch(`${prom}/api/v1/alerts`)).json()) as {
          data: { alerts: Array<{ labels: Record<string, string>; state: string }> };
        };
        return res.data.alerts.find(
          (a) => a.labels.alertname === 'RedisDown' && a.state === 'firing',
        );
      });
      t.equal(alert.labels.pod, 'redis-shared-replicas-0');
      await kubectl([
        'wait',
        '--for=condition=Ready',
        'pod/redis-shared-replicas-0',
        '-n',
        'redis',
        '--timeout=30s',
      ]);
      t.match(
        await kubectl([
          'get',
          'pod',
          'redis-shared-replicas-0',
          '-n',
          'redis',
          '-o',
          'jsonpath={.status.containerStatuses[0].restartCount}',
        ]),
        /^[1-9]/,
        'the controller restarted it',
      );
    },
  );

  await t.test('fault partition cuts replication; fault heal restores it', async (t) => {
    const replicaIP = await podIP('redis', 'redis-shared-replicas-0');
    const info = () => redisCli(replicaIP, ['INFO', 'replication'], password);
    await until('replication up', async () => /master_link_status:up/.test(await info()));
    const cut = await admin('/sandbox/fault', {
      args: ['partition', 'redis/redis-shared-replicas-0'],
    });
    t.match(cut.message, /partitioned/);
    await until('replication down', async () => /master_link_status:down/.test(await info()));
    // The module's replica probes check only the local server (SC-002): a replica cut off from
    // its master stays Ready and keeps serving reads (test/sandbox/kubelet-probes.test.ts shows
    // the chart's default probes, which ping the master, taking it out).
    t.equal(await podReady('redis', 'redis-shared-replicas-0'), 'True', 'still Ready');
    const healed = await admin('/sandbox/fault', { args: ['heal'] });
    t.match(healed.message, /1 partition\(s\) lifted/);
    await until('replication up again', async () => /master_link_status:up/.test(await info()));
    await kubectl([
      'wait',
      '--for=condition=Ready',
      'pod/redis-shared-replicas-0',
      '-n',
      'redis',
      '--timeout=30s',
    ]);
    t.equal(await podReady('redis', 'redis-shared-replicas-0'), 'True', 'Ready after the heal');
    const bad = await admin('/sandbox/fault', { args: ['kill', 'redis/no-such-pod'] });
    t.equal(bad.status, 400);
    t.match(bad.message, /no running pod redis\/no-such-pod/);
  });

  await t.test('age moves the migration record back', async (t) => {
    const at = new Date().toISOString();
    await kubectl([
      'annotate',
      'deployment/beersystem',
      '-n',
      'beersystem',
      `redis-shared.runbooks/migrated-at=${at}`,
      '--overwrite',
    ]);
    const aged = await admin('/sandbox/age', { duration: '24h' });
    t.equal(aged.status, 200);
    const moved = await kubectl([
      'get',
      'deployment/beersystem',
      '-n',
      'beersystem',
      '-o',
      'jsonpath={.metadata.annotations.redis-shared\\.runbooks/migrated-at}',
    ]);
    t.equal(Date.parse(at) - Date.parse(moved), 24 * 3600 * 1000);
  });

  await t.test('stopping the sandbox leaves no process behind', async (t) => {
    pids = fx!.workloads.pids();
    t.ok(pids.length >= 8, `${pids.length} processes were running`);
    await fx!.sandbox.stop();
    t.same(pids.filter(isAlive), [], 'every PID is gone');
  });
});
