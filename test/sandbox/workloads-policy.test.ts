// End to end with real processes: the tofu stand-in applies the fixed modules, MetalLB gives
// the external Service its address, and the chart's NetworkPolicy decides who reaches Redis —
// a Job in beersystem does, a Job in a namespace outside the policy does not, the private
// network does through the LoadBalancer.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { secretPassword } from '../helpers/secret.ts';
import { eventually } from '../helpers/workloads-cluster.ts';
import { redisPingFrom } from '../helpers/workloads-pods.ts';
import {
  type SandboxFixture,
  sandboxVars,
  startWholeSandbox,
} from '../helpers/workloads-sandbox.ts';

t.setTimeout(240_000);

t.test('NetworkPolicy on the connections the sandbox carries', async (t) => {
  let fx: SandboxFixture | undefined;
  t.teardown(async () => {
    await fx?.close();
  });
  fx = await startWholeSandbox();
  const { kubectl, tofu, sandbox } = fx;
  await sandbox.settled(30_000);
  const LB_IP = sandbox.network.redisLbIp;

  const applied = await tofu(['apply', '-auto-approve', ...sandboxVars(sandbox.network)]);
  t.match(applied.stdout, /Apply complete! Resources: 8 added, 0 changed, 0 destroyed\./);
  t.equal(
    await kubectl([
      'get',
      'svc',
      'redis-shared-external',
      '-n',
      'redis',
      '-o',
      'jsonpath={.status.loadBalancer.ingress[0].ip}',
    ]),
    LB_IP,
    'MetalLB assigned the address the annotations ask for',
  );
  await kubectl([
    'wait',
    '--for=condition=Ready',
    'pod/redis-shared-master-0',
    'pod/redis-shared-replicas-0',
    '-n',
    'redis',
    '--timeout=60s',
  ]);
  const password = await secretPassword(kubectl, 'redis');

  // MetalLB's answer comes first, then the network plugin's listener: go on once it answers.
  await eventually(
    'this sandbox listening on the LoadBalancer address',
    async () => (await redisPingFrom('127.0.0.1', LB_IP, 6379, password)) === 'PONG',
    120_000,
  );

  /** Runs redis-cli PING against `host` in a Job of `namespace`; returns its log and outcome. */
  const pingJob = async (name: string, namespace: string, host: string, auth: boolean) => {
    const job = {
      apiVersion: 'batch/v1',
      kind: 'Job',
      metadata: { name, namespace },
      spec: {
        backoffLimit: 0,
        template: {
          spec: {
            restartPolicy: 'Never',
            containers: [
              {
                name: 'ping',
                image: 'redis:7',
                command: ['redis-cli', '-h', host, 'PING'],
                env: auth
                  ? [
                      {
                        name: 'REDISCLI_AUTH',
                        valueFrom: {
                          secretKeyRef: { name: 'redis-credentials', key: 'redis-password' },
                        },
                      },
                    ]
                  : [],
              },
            ],
          },
        },
      },
    };
    const file = join(fx!.runDir, `${name}.json`);
    writeFileSync(file, JSON.stringify(job));
    await kubectl(['apply', '--server-side', '-f', file]);
    await kubectl([
      'wait',
      '--for=jsonpath={.status.conditions[0].status}=True',
      `job/${name}`,
      '-n',
      namespace,
      '--timeout=60s',
    ]);
    const succeeded = await kubectl([
      'get',
      `job/${name}`,
      '-n',
      namespace,
      '-o',
      'jsonpath={.status.succeeded}',
    ]);
    return {
      outcome: succeeded === '1' ? 'Complete' : 'Failed',
      log: await kubectl(['logs', `job/${name}`, '-n', namespace]),
    };
  };

  await t.test('a Job in beersystem reaches Redis through its Service', async (t) => {
    const inside = await pingJob(
      'ping-inside',
      'beersystem',
      'redis-shared-master.redis.svc.cluster.local',
      true,
    );
    t.equal(inside.outcome, 'Complete');
    t.match(inside.log, /PONG/);
  });

  await t.test('a Job in a namespace the policy does not admit is refused', async (t) => {
    // No password: the Secret copy is not in default, and what is tested is the connection.
    const outside = await pingJob(
      'ping-outside',
      'default',
      'redis-shared-master.redis.svc.cluster.local',
      false,
    );
    t.equal(outside.outcome, 'Failed');
    t.notMatch(outside.log, /PONG|NOAUTH/, 'Redis never answered');
    t.match(outside.log, /reset|closed|refused/i, `redis-cli: ${outside.log.trim()}`);
    const viaLb = await pingJob('ping-outside-lb', 'default', LB_IP, false);
    t.notMatch(viaLb.log, /PONG|NOAUTH/, 'not through the LoadBalancer address either');
    const log = readFileSync(join(fx!.runDir, 'logs', 'network.log'), 'utf8');
    t.match(
      log,
      /pod default\/ping-outside-\w+ → redis\/redis-shared-master-0:6379 refused by NetworkPolicy redis-shared/,
      'the refusal names the pod and the policy',
    );
  });

  await t.test('the private network reaches it through the LoadBalancer', async (t) => {
    t.equal(await redisPingFrom('127.0.0.1', LB_IP, 6379, password), 'PONG');
  });

  await t.test('replication, pod to master Service, is admitted', async (t) => {
    t.equal(
      await kubectl([
        'get',
        'pod',
        'redis-shared-replicas-0',
        '-n',
        'redis',
        '-o',
        'jsonpath={.status.conditions[?(@.type=="Ready")].status}',
      ]),
      'True',
    );
  });
});
