// The real kubectl 1.32 against the emulator: what the runbooks run must behave as on a cluster.
import { spawn } from 'node:child_process';
import { appendFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import t from 'tap';
import { startTestSandbox } from '../helpers/sandbox.ts';

const jobYaml = (name: string, annotations: Record<string, string> = {}) => `
apiVersion: batch/v1
kind: Job
metadata:
  name: ${name}
  namespace: default
spec:
  backoffLimit: 0
  template:
    metadata:
      annotations: ${JSON.stringify(annotations)}
    spec:
      restartPolicy: Never
      containers:
        - name: main
          image: busybox
          command: [sh, -c, "echo done"]
`;

t.test('get namespaces, nodes and pods of the homelab as it is today', async (t) => {
  const fx = await startTestSandbox(t);
  const namespaces = await fx.kubectlOk([
    'get',
    'namespaces',
    '-o',
    'jsonpath={.items[*].metadata.name}',
  ]);
  t.same(namespaces.split(' ').sort(), [
    'beersystem',
    'default',
    'kube-system',
    'metallb-system',
    'monitoring',
  ]);
  const nodes = JSON.parse(await fx.kubectlOk(['get', 'nodes', '-o', 'json']));
  t.equal(nodes.items.length, 4);
  t.ok(
    nodes.items.every((n: { status: { conditions: Array<{ type: string; status: string }> } }) =>
      n.status.conditions.some((c) => c.type === 'Ready' && c.status === 'True'),
    ),
    'every node is Ready',
  );
  const table = await fx.kubectlOk(['get', 'pods', '-n', 'beersystem']);
  t.match(table, /^NAME\s+READY\s+STATUS\s+RESTARTS\s+AGE/);
  t.match(table, /beersystem-\S+\s+1\/1\s+Running/);
  t.match(table, /redis-\S+\s+1\/1\s+Running/);
  const env = await fx.kubectlOk([
    'get',
    'deployment',
    'beersystem',
    '-n',
    'beersystem',
    '-o',
    'jsonpath={.spec.template.spec.containers[0].env[?(@.name=="REDIS_HOST")].value}',
  ]);
  t.equal(env, 'redis.beersystem.svc.cluster.local');
  const crds = await fx.kubectlOk(['get', 'crd', '-o', 'name']);
  t.same(crds.trim().split('\n').sort(), [
    'customresourcedefinition.apiextensions.k8s.io/bgpadvertisements.metallb.io',
    'customresourcedefinition.apiextensions.k8s.io/ipaddresspools.metallb.io',
    'customresourcedefinition.apiextensions.k8s.io/l2advertisements.metallb.io',
    'customresourcedefinition.apiextensions.k8s.io/prometheuses.monitoring.coreos.com',
    'customresourcedefinition.apiextensions.k8s.io/prometheusrules.monitoring.coreos.com',
    'customresourcedefinition.apiextensions.k8s.io/servicemonitors.monitoring.coreos.com',
  ]);
  const lbs = await fx.kubectlOk([
    'get',
    'services',
    '-A',
    '-o',
    'jsonpath={range .items[?(@.spec.type=="LoadBalancer")]}{.status.loadBalancer.ingress[0].ip} {end}',
  ]);
  t.same(lbs.trim().split(' ').sort(), Object.values(fx.sandbox.network.held).sort());
});

t.test('get secret -o jsonpath gives the base64 of a password generated at start', async (t) => {
  const fx = await startTestSandbox(t);
  const b64 = await fx.kubectlOk([
    'get',
    'secret',
    'beersystem-redis',
    '-n',
    'beersystem',
    '-o',
    'jsonpath={.data.redis-password}',
  ]);
  const password = Buffer.from(b64, 'base64').toString('utf8');
  t.match(password, /^[A-Za-z0-9_-]{24}$/);
  const other = await startTestSandbox(t);
  const b64Other = await other.kubectlOk([
    'get',
    'secret',
    'beersystem-redis',
    '-n',
    'beersystem',
    '-o',
    'jsonpath={.data.redis-password}',
  ]);
  t.not(b64Other, b64, 'every sandbox gets its own password');
});

t.test(
  'scale to 0 and wait for the pods to be deleted, scale back and wait for Ready',
  async (t) => {
    const fx = await startTestSandbox(t);
    await fx.kubectlOk(['scale', 'deployment', 'beersystem', '-n', 'beersystem', '--replicas=0']);
    await fx.kubectlOk([
      'wait',
      '--for=delete',
      'pod',
      '-l',
      'app=beersystem',
      '-n',
      'beersystem',
      '--timeout=30s',
    ]);
    const none = await fx.kubectlOk([
      'get',
      'pods',
      '-n',
      'beersystem',
      '-l',
      'app=beersystem',
      '-o',
      'name',
    ]);
    t.equal(none.trim(), '');
    await fx.kubectlOk(['scale', 'deployment', 'beersystem', '-n', 'beersystem', '--replicas=2']);
    const rollout = await fx.kubectlOk([
      'rollout',
      'status',
      'deployment/beersystem',
      '-n',
      'beersystem',
      '--timeout=30s',
    ]);
    t.match(rollout, /successfully rolled out/);
    await fx.kubectlOk([
      'wait',
      '--for=condition=Ready',
      'pod',
      '-l',
      'app=beersystem',
      '-n',
      'beersystem',
      '--timeout=30s',
    ]);
    const ready = await fx.kubectlOk([
      'get',
      'deployment',
      'beersystem',
      '-n',
      'beersystem',
      '-o',
      'jsonpath={.status.readyReplicas}',
    ]);
    t.equal(ready, '2');
  },
);

t.test(
  'a changed pod template rolls out a new ReplicaSet that rollout status waits for',
  async (t) => {
    const fx = await startTestSandbox(t);
    await fx.kubectlOk([
      'patch',
      'deployment',
      'beersystem',
      '-n',
      'beersystem',
      '-p',
      JSON.stringify({
        spec: {
          template: {
            spec: {
              containers: [
                {
                  name: 'beersystem',
                  env: [
                    { name: 'REDIS_HOST', value: 'redis-shared-master.redis.svc.cluster.local' },
                  ],
                },
              ],
            },
          },
        },
      }),
    ]);
    await fx.kubectlOk([
      'rollout',
      'status',
      'deployment/beersystem',
      '-n',
      'beersystem',
      '--timeout=30s',
    ]);
    const env = JSON.parse(
      await fx.kubectlOk([
        'get',
        'deployment',
        'beersystem',
        '-n',
        'beersystem',
        '-o',
        'jsonpath={.spec.template.spec.containers[0].env}',
      ]),
    );
    t.same(
      env.map((e: { name: string }) => e.name),
      ['REDIS_HOST', 'REDIS_PORT', 'REDIS_PASSWORD'],
      'a strategic merge patch merges env by name',
    );
    const rs = await fx.kubectlOk([
      'get',
      'rs',
      '-n',
      'beersystem',
      '-l',
      'app=beersystem',
      '-o',
      'jsonpath={range .items[*]}{.spec.replicas}{" "}{end}',
    ]);
    t.same(
      rs.trim().split(' ').sort(),
      ['0', '1'],
      'the old ReplicaSet is scaled to 0, the new one to 1',
    );
  },
);

t.test('a deleted pod is replaced by its ReplicaSet', async (t) => {
  const fx = await startTestSandbox(t);
  const before = (
    await fx.kubectlOk(['get', 'pods', '-n', 'beersystem', '-l', 'app=redis', '-o', 'name'])
  ).trim();
  await fx.kubectlOk(['delete', '-n', 'beersystem', before]);
  await fx.kubectlOk([
    'wait',
    '--for=condition=Available',
    'deployment/redis',
    '-n',
    'beersystem',
    '--timeout=30s',
  ]);
  await fx.kubectlOk([
    'wait',
    '--for=condition=Ready',
    'pod',
    '-l',
    'app=redis',
    '-n',
    'beersystem',
    '--timeout=30s',
  ]);
  const after = (
    await fx.kubectlOk(['get', 'pods', '-n', 'beersystem', '-l', 'app=redis', '-o', 'name'])
  ).trim();
  t.not(after, before);
  t.match(after, /^pod\/redis-/);
});

t.test('apply --server-side of a Job, wait for it, read logs job/<name>', async (t) => {
  const fx = await startTestSandbox(t);
  const applied = await fx.kubectlOk(
    ['apply', '--server-side', '-f', '-'],
    jobYaml('copy-keys', { 'sandbox.runbooks/log': 'copied 42 keys' }),
  );
  t.match(applied, /job.batch\/copy-keys serverside-applied/);
  await fx.kubectlOk(['wait', '--for=condition=complete', 'job/copy-keys', '--timeout=30s']);
  const logs = await fx.kubectlOk(['logs', 'job/copy-keys']);
  t.equal(logs, 'copied 42 keys\n');
  const again = await fx.kubectlOk(
    ['apply', '--server-side', '-f', '-'],
    jobYaml('copy-keys', { 'sandbox.runbooks/log': 'copied 42 keys' }),
  );
  t.match(again, /serverside-applied/, 'applying the same Job again is accepted');
});

t.test('a Job whose pod fails ends Failed after its backoff limit', async (t) => {
  const fx = await startTestSandbox(t);
  await fx.kubectlOk(
    ['apply', '--server-side', '-f', '-'],
    jobYaml('broken', { 'sandbox.runbooks/exit-code': '3' }),
  );
  await fx.kubectlOk(['wait', '--for=condition=failed', 'job/broken', '--timeout=30s']);
  const reason = await fx.kubectlOk([
    'get',
    'job',
    'broken',
    '-o',
    'jsonpath={.status.conditions[?(@.type=="Failed")].reason}',
  ]);
  t.equal(reason, 'BackoffLimitExceeded');
  const exitCode = await fx.kubectlOk([
    'get',
    'pods',
    '-l',
    'job-name=broken',
    '-o',
    'jsonpath={.items[0].status.containerStatuses[0].state.terminated.exitCode}',
  ]);
  t.equal(exitCode, '3');
});

t.test(
  'NotFound, AlreadyExists and Conflict read as kubectl prints them from a cluster',
  async (t) => {
    const fx = await startTestSandbox(t);
    const missing = await fx.kubectl(['get', 'pod', 'nope', '-n', 'beersystem']);
    t.equal(missing.code, 1);
    t.equal(missing.stderr.trim(), 'Error from server (NotFound): pods "nope" not found');
    const exists = await fx.kubectl(
      ['create', '-f', '-'],
      JSON.stringify({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'beersystem' } }),
    );
    t.equal(exists.code, 1);
    t.match(
      exists.stderr,
      /Error from server \(AlreadyExists\): .*namespaces "beersystem" already exists/,
    );
    const cm = JSON.parse(
      await fx.kubectlOk(
        ['create', '-f', '-', '-o', 'json'],
        JSON.stringify({
          apiVersion: 'v1',
          kind: 'ConfigMap',
          metadata: { name: 'c', namespace: 'default' },
          data: { a: '1' },
        }),
      ),
    );
    await fx.kubectlOk(['patch', 'configmap', 'c', '--type=merge', '-p', '{"data":{"a":"2"}}']);
    cm.data.a = '3';
    const stale = await fx.kubectl(['replace', '-f', '-'], JSON.stringify(cm));
    t.equal(stale.code, 1);
    t.match(
      stale.stderr,
      /Error from server \(Conflict\): .*Operation cannot be fulfilled on configmaps "c": the object has been modified/,
    );
    const deployMissing = await fx.kubectl([
      'scale',
      'deployment',
      'nope',
      '--replicas=1',
      '-n',
      'beersystem',
    ]);
    t.match(deployMissing.stderr, /deployments.apps "nope" not found/);
  },
);

t.test('deleting a namespace deletes everything in it, pods last', async (t) => {
  const fx = await startTestSandbox(t);
  await fx.kubectlOk(['delete', 'namespace', 'beersystem', '--wait=false']);
  await fx.kubectlOk(['wait', '--for=delete', 'namespace/beersystem', '--timeout=30s']);
  for (const kind of ['pods', 'deployments', 'replicasets', 'services', 'secrets']) {
    const left = await fx.kubectlOk(['get', kind, '-n', 'beersystem', '-o', 'name']);
    t.equal(left.trim(), '', `no ${kind} left in beersystem`);
  }
  const create = await fx.kubectl([
    'create',
    'configmap',
    'x',
    '-n',
    'beersystem',
    '--dry-run=client',
    '-o',
    'yaml',
  ]);
  const apply = await fx.kubectl(['apply', '--server-side', '-f', '-'], create.stdout);
  t.match(apply.stderr, /namespaces "beersystem" not found/);
});

t.test('deleting a Deployment and its Service cascades to ReplicaSets and pods', async (t) => {
  const fx = await startTestSandbox(t);
  await fx.kubectlOk(['delete', 'deployment/redis', 'service/redis', '-n', 'beersystem']);
  await fx.kubectlOk([
    'wait',
    '--for=delete',
    'pod',
    '-l',
    'app=redis',
    '-n',
    'beersystem',
    '--timeout=30s',
  ]);
  const rs = await fx.kubectlOk(['get', 'rs', '-n', 'beersystem', '-l', 'app=redis', '-o', 'name']);
  t.equal(rs.trim(), '');
  const ep = await fx.kubectl(['get', 'endpoints', 'redis', '-n', 'beersystem']);
  t.equal(ep.code, 1, 'the Service endpoints went with it');
  const beersystem = await fx.kubectlOk(['get', 'pods', '-n', 'beersystem', '-o', 'name']);
  t.match(beersystem, /pod\/beersystem-/, 'other workloads stay');
});

t.test(
  'a StatefulSet gets ordinal pods, one bound claim each, and keeps claims on scale-down',
  async (t) => {
    const fx = await startTestSandbox(t);
    const sts = {
      apiVersion: 'apps/v1',
      kind: 'StatefulSet',
      metadata: { name: 'cache', namespace: 'default' },
      spec: {
        replicas: 2,
        serviceName: 'cache-headless',
        selector: { matchLabels: { app: 'cache' } },
        template: {
          metadata: { labels: { app: 'cache' } },
          spec: { containers: [{ name: 'redis', image: 'redis:7' }] },
        },
        volumeClaimTemplates: [
          {
            metadata: { name: 'data' },
            spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '10Gi' } } },
          },
        ],
      },
    };
    await fx.kubectlOk(['apply', '--server-side', '-f', '-'], JSON.stringify(sts));
    await fx.kubectlOk(['rollout', 'status', 'statefulset/cache', '--timeout=30s']);
    const pods = await fx.kubectlOk([
      'get',
      'pods',
      '-l',
      'app=cache',
      '-o',
      'jsonpath={.items[*].metadata.name}',
    ]);
    t.equal(pods, 'cache-0 cache-1');
    const claims = await fx.kubectlOk([
      'get',
      'pvc',
      '-o',
      'jsonpath={range .items[*]}{.metadata.name}={.status.phase}/{.spec.storageClassName}/{.status.capacity.storage} {end}',
    ]);
    t.same(claims.trim().split(' '), [
      'data-cache-0=Bound/local-path/10Gi',
      'data-cache-1=Bound/local-path/10Gi',
    ]);
    await fx.kubectlOk(['scale', 'statefulset', 'cache', '--replicas=1']);
    await fx.kubectlOk(['wait', '--for=delete', 'pod/cache-1', '--timeout=30s']);
    const kept = await fx.kubectlOk([
      'get',
      'pvc',
      'data-cache-1',
      '-o',
      'jsonpath={.status.phase}',
    ]);
    t.equal(kept, 'Bound', 'the claim of a removed ordinal stays');
    const volume = await fx.kubectlOk([
      'get',
      'pvc',
      'data-cache-1',
      '-o',
      'jsonpath={.spec.volumeName}',
    ]);
    const pv = await fx.kubectlOk([
      'get',
      'pv',
      volume,
      '-o',
      'jsonpath={.status.phase} {.spec.claimRef.name} {.spec.capacity.storage}',
    ]);
    t.equal(pv, 'Bound data-cache-1 10Gi', 'local-path provisioned a volume for the claim');
    await fx.kubectlOk(['delete', 'pvc', 'data-cache-1']);
    await fx.kubectlOk(['wait', '--for=delete', `pv/${volume}`, '--timeout=30s']);
  },
);

t.test(
  'a LoadBalancer gets its address from eero-pool; an address in use is refused',
  async (t) => {
    const fx = await startTestSandbox(t);
    const lb = (name: string, ip: string) =>
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'Service',
        metadata: {
          name,
          namespace: 'default',
          annotations: { 'metallb.universe.tf/address-pool': 'eero-pool' },
        },
        spec: { type: 'LoadBalancer', loadBalancerIP: ip, ports: [{ port: 6379 }] },
      });
    const { redisLbIp, held } = fx.sandbox.network;
    await fx.kubectlOk(['apply', '--server-side', '-f', '-'], lb('redis-external', redisLbIp));
    await fx.kubectlOk([
      'wait',
      `--for=jsonpath={.status.loadBalancer.ingress[0].ip}=${redisLbIp}`,
      'service/redis-external',
      '--timeout=30s',
    ]);
    await fx.kubectlOk(['apply', '--server-side', '-f', '-'], lb('squatter', held.postgres));
    await fx.kubectlOk([
      'wait',
      '--for=jsonpath={.reason}=AllocationFailed',
      'events',
      '--field-selector',
      'involvedObject.name=squatter',
      '--timeout=30s',
    ]);
    const events = await fx.kubectlOk([
      'get',
      'events',
      '--field-selector',
      'involvedObject.name=squatter',
    ]);
    t.match(
      events,
      /AllocationFailed.*address also in use by default\/postgres-ha-postgresql-primary/,
    );
    const ingress = await fx.kubectlOk([
      'get',
      'service',
      'squatter',
      '-o',
      'jsonpath={.status.loadBalancer.ingress}',
    ]);
    t.equal(ingress, '', 'the refused Service has no address');
    const external = await fx.kubectlOk(['get', 'service', 'squatter']);
    t.match(external, /squatter\s+LoadBalancer\s+\S+\s+<pending>/);
  },
);

t.test('the service proxy forwards to the target the workload half registers', async (t) => {
  const fx = await startTestSandbox(t);
  const upstream = createServer((req, res) => {
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify({ status: 'success', path: req.url, method: req.method }));
  });
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  t.teardown(() => upstream.close());
  const port = (upstream.address() as AddressInfo).port;
  fx.sandbox.cluster.setServiceProxyTarget(
    'monitoring',
    'kube-prometheus-stack-prometheus',
    9090,
    `http://127.0.0.1:${port}`,
  );
  const body = await fx.kubectlOk([
    'get',
    '--raw',
    '/api/v1/namespaces/monitoring/services/kube-prometheus-stack-prometheus:9090/proxy/api/v1/query?query=up',
  ]);
  t.same(JSON.parse(body), { status: 'success', path: '/api/v1/query?query=up', method: 'GET' });
  const byName = await fx.kubectlOk([
    'get',
    '--raw',
    '/api/v1/namespaces/monitoring/services/kube-prometheus-stack-prometheus:http-web/proxy/-/ready',
  ]);
  t.equal(JSON.parse(byName).path, '/-/ready', 'a port can be named too');
  const missing = await fx.kubectl([
    'get',
    '--raw',
    '/api/v1/namespaces/beersystem/services/beersystem:8080/proxy/',
  ]);
  t.match(missing.stderr, /ServiceUnavailable|no endpoints available/);
});

t.test(
  'the journal records every mutating request, and --dry-run=server changes nothing',
  async (t) => {
    const fx = await startTestSandbox(t);
    const before = await fx.journal();
    t.equal(before.length, 0, 'reads are not journaled');
    await fx.kubectlOk([
      'scale',
      'deployment',
      'beersystem',
      '-n',
      'beersystem',
      '--replicas=0',
      '--dry-run=server',
    ]);
    const replicas = await fx.kubectlOk([
      'get',
      'deployment',
      'beersystem',
      '-n',
      'beersystem',
      '-o',
      'jsonpath={.spec.replicas}',
    ]);
    t.equal(replicas, '1', 'a server dry run changes nothing');
    await fx.kubectlOk([
      'annotate',
      'deployment',
      'beersystem',
      '-n',
      'beersystem',
      'example.com/touched=yes',
    ]);
    const entries = await fx.journal();
    t.equal(entries.length, 2);
    t.match(entries[0], {
      method: 'PATCH',
      path: /^\/apis\/apps\/v1\/namespaces\/beersystem\/deployments\/beersystem\/scale\?.*dryRun=All/,
      contentType: 'application/merge-patch+json',
      status: 200,
      dryRun: true,
    });
    t.match(entries[1], {
      method: 'PATCH',
      contentType: 'application/merge-patch+json',
      status: 200,
      dryRun: false,
    });
    t.ok(entries.every((e) => !Number.isNaN(Date.parse(e.time))));
  },
);

t.test('an injected API fault fails the next mutating requests with a Status', async (t) => {
  const fx = await startTestSandbox(t);
  const arm = await fetch(`${fx.sandbox.url}/sandbox/fault`, {
    method: 'POST',
    body: JSON.stringify({ args: ['api-error', '1', '503'] }),
  });
  t.equal(arm.status, 200);
  const failed = await fx.kubectl([
    'annotate',
    'deployment',
    'beersystem',
    '-n',
    'beersystem',
    'a=b',
  ]);
  t.equal(failed.code, 1);
  t.match(failed.stderr, /ServiceUnavailable|503/);
  const read = await fx.kubectl(['get', 'deployment', 'beersystem', '-n', 'beersystem']);
  t.equal(read.code, 0, 'reads are never failed');
  await fx.kubectlOk(['annotate', 'deployment', 'beersystem', '-n', 'beersystem', 'a=b']);
  const statuses = (await fx.journal()).map((e) => e.status);
  t.same(statuses, [503, 200]);
  const kill = await fetch(`${fx.sandbox.url}/sandbox/fault`, {
    method: 'POST',
    body: JSON.stringify({ args: ['kill', 'beersystem/redis'] }),
  });
  t.equal(kill.status, 400);
  t.match(
    ((await kill.json()) as { message: string }).message,
    /fake workloads: restart it with `npm run sandbox -- down && npm run sandbox -- up` \(without --fake\)/,
    'a workload fault on fake workloads says how to get real ones',
  );
});

t.test(
  'kubectl create namespace|secret|configmap and auth can-i send protobuf, and it is read',
  async (t) => {
    const fx = await startTestSandbox(t);
    await fx.kubectlOk(['create', 'namespace', 'redis']);
    await fx.kubectlOk([
      'create',
      'secret',
      'generic',
      'redis-credentials',
      '-n',
      'redis',
      '--from-literal=redis-password=not-a-real-one',
    ]);
    await fx.kubectlOk([
      'create',
      'configmap',
      'settings',
      '-n',
      'redis',
      '--from-literal=maxmemory=256mb',
    ]);
    const secret = await fx.kubectlOk([
      'get',
      'secret',
      'redis-credentials',
      '-n',
      'redis',
      '-o',
      'jsonpath={.type} {.data.redis-password}',
    ]);
    t.equal(secret, `Opaque ${Buffer.from('not-a-real-one').toString('base64')}`);
    const cm = await fx.kubectlOk([
      'get',
      'configmap',
      'settings',
      '-n',
      'redis',
      '-o',
      'jsonpath={.data.maxmemory}',
    ]);
    t.equal(cm, '256mb');
    const label = await fx.kubectlOk([
      'get',
      'namespace',
      'redis',
      '-o',
      'jsonpath={.metadata.labels.kubernetes\\.io/metadata\\.name}',
    ]);
    t.equal(label, 'redis');
    const canI = await fx.kubectlOk(['auth', 'can-i', 'delete', 'deployments', '-n', 'beersystem']);
    t.equal(canI.trim(), 'yes', 'no RBAC: every access review is allowed');
    const refused = await fx.kubectl([
      'create',
      'deployment',
      'x',
      '--image=redis:7',
      '-n',
      'redis',
    ]);
    t.equal(refused.code, 1);
    t.match(
      refused.stderr,
      /protobuf bodies of Namespaces, ConfigMaps, Secrets and ServiceAccounts only/,
    );
  },
);

t.test(
  'logs --follow streams new lines until the pod goes away; --tail picks the last lines',
  async (t) => {
    const fx = await startTestSandbox(t);
    const pod = (
      await fx.kubectlOk([
        'get',
        'pods',
        '-n',
        'beersystem',
        '-l',
        'app=redis',
        '-o',
        'jsonpath={.items[0].metadata.name}',
      ])
    ).trim();
    const logFile = join(fx.dir, 'logs', 'pods', `beersystem_${pod}.log`);
    const follower = spawn('kubectl', ['logs', '-f', '-n', 'beersystem', `pod/${pod}`], {
      env: fx.env,
    });
    t.teardown(() => follower.kill());
    let out = '';
    const seen = (text: string) =>
      new Promise<void>((resolve) => {
        const check = () => {
          if (out.includes(text)) {
            follower.stdout.off('data', onData);
            resolve();
          }
        };
        const onData = (chunk: Buffer) => {
          out += chunk.toString();
          check();
        };
        follower.stdout.on('data', onData);
        check();
      });
    await seen('(fake runtime)');
    appendFileSync(logFile, 'Ready to accept connections tcp\n');
    await seen('Ready to accept connections tcp');
    const exited = new Promise<number | null>((resolve) => follower.on('exit', resolve));
    await fx.kubectlOk(['delete', 'pod', pod, '-n', 'beersystem']);
    t.equal(await exited, 0, 'the stream ends when the pod is gone');
    appendFileSync(logFile, 'line two\nline three\n');
    const replacement = (
      await fx.kubectlOk([
        'get',
        'pods',
        '-n',
        'beersystem',
        '-l',
        'app=redis',
        '-o',
        'jsonpath={.items[0].metadata.name}',
      ])
    ).trim();
    t.not(replacement, pod);
    await fx.kubectlOk([
      'wait',
      '--for=condition=Ready',
      `pod/${replacement}`,
      '-n',
      'beersystem',
      '--timeout=30s',
    ]);
    appendFileSync(
      join(fx.dir, 'logs', 'pods', `beersystem_${replacement}.log`),
      'second\nthird\n',
    );
    const tail = await fx.kubectlOk(['logs', '--tail=2', '-n', 'beersystem', `pod/${replacement}`]);
    t.equal(tail, 'second\nthird\n');
    const named = await fx.kubectlOk([
      'logs',
      '-c',
      'redis',
      '-n',
      'beersystem',
      `pod/${replacement}`,
    ]);
    t.match(named, /third/, 'logs -c <the pod container> reads its log');
    const unknown = await fx.kubectl([
      'logs',
      '-c',
      'nope',
      '-n',
      'beersystem',
      `pod/${replacement}`,
    ]);
    t.equal(unknown.code, 1);
    t.match(unknown.stderr, `container nope is not valid for pod ${replacement}`);
    // kubectl checks the name itself; other clients (client-node) rely on the server's answer.
    const refused = await fetch(
      `${fx.sandbox.url}/api/v1/namespaces/beersystem/pods/${replacement}/log?container=nope`,
    );
    t.equal(refused.status, 400);
    t.match(
      ((await refused.json()) as { message: string }).message,
      `container nope is not valid for pod ${replacement}; its containers: redis`,
      'the server refuses an unknown container, naming the ones there are',
    );
  },
);

t.test('kubectl drain cordons a node and moves its pods elsewhere', async (t) => {
  const fx = await startTestSandbox(t);
  const nodeOf = async () =>
    (
      await fx.kubectlOk([
        'get',
        'pods',
        '-n',
        'beersystem',
        '-l',
        'app=redis',
        '-o',
        'jsonpath={.items[0].spec.nodeName}',
      ])
    ).trim();
  const node = await nodeOf();
  await fx.kubectlOk([
    'drain',
    node,
    '--ignore-daemonsets',
    '--delete-emptydir-data',
    '--timeout=30s',
  ]);
  const nodes = await fx.kubectlOk(['get', 'node', node]);
  t.match(nodes, /Ready,SchedulingDisabled/);
  await fx.kubectlOk([
    'rollout',
    'status',
    'deployment/redis',
    '-n',
    'beersystem',
    '--timeout=30s',
  ]);
  const moved = await nodeOf();
  t.not(moved, node, 'the replacement pod runs on another node');
  await fx.kubectlOk(['uncordon', node]);
  t.match(
    await fx.kubectlOk(['get', 'node', node, '--no-headers']),
    new RegExp(`^${node}\\s+Ready\\s`),
  );
});

t.test('rollout history and undo go back to the previous ReplicaSet', async (t) => {
  const fx = await startTestSandbox(t);
  const ns = ['-n', 'beersystem'];
  await fx.kubectlOk(['set', 'image', 'deployment/beersystem', 'beersystem=beersystem:v2', ...ns]);
  await fx.kubectlOk(['rollout', 'status', 'deployment/beersystem', '--timeout=30s', ...ns]);
  const history = await fx.kubectlOk(['rollout', 'history', 'deployment/beersystem', ...ns]);
  t.match(history, /REVISION\s+CHANGE-CAUSE\n1\s+<none>\n2\s+<none>/);
  await fx.kubectlOk(['rollout', 'undo', 'deployment/beersystem', ...ns]);
  await fx.kubectlOk(['rollout', 'status', 'deployment/beersystem', '--timeout=30s', ...ns]);
  const image = await fx.kubectlOk([
    'get',
    'deployment',
    'beersystem',
    '-o',
    'jsonpath={.spec.template.spec.containers[0].image}',
    ...ns,
  ]);
  t.equal(image, 'beersystem:latest');
  const replicaSets = await fx.kubectlOk([
    'get',
    'rs',
    '-l',
    'app=beersystem',
    '-o',
    'jsonpath={.items[*].metadata.name}',
    ...ns,
  ]);
  t.equal(replicaSets.split(' ').length, 2, 'the first ReplicaSet is used again, no third one');
});
