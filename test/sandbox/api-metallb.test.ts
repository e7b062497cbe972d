// The sandbox's MetalLB behaves as the release it is set to (metallb.io/* annotations read only
// from v0.14.9), a pool's serviceAllocation limits who takes its addresses, and K3s's ServiceLB,
// when switched on, takes LoadBalancer Services with svclb DaemonSets and node addresses.
import t from 'tap';
import { startTestSandbox } from '../helpers/sandbox.ts';

const SERVICE = { group: '', version: 'v1', kind: 'Service' };

function lb(name: string, namespace: string, annotations: Record<string, string>): string {
  return JSON.stringify({
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace, annotations },
    spec: { type: 'LoadBalancer', ports: [{ port: 6379 }] },
  });
}

type Fixture = Awaited<ReturnType<typeof startTestSandbox>>;

async function ingressOf(fx: Fixture, name: string, namespace = 'default'): Promise<string> {
  await fx.kubectlOk([
    'wait',
    '-n',
    namespace,
    '--for=jsonpath={.status.loadBalancer.ingress[0].ip}',
    `service/${name}`,
    '--timeout=30s',
  ]);
  return fx.sandbox.cluster.get(SERVICE, namespace, name)?.status?.loadBalancer?.ingress?.[0]?.ip;
}

async function eventsOf(fx: Fixture, name: string, namespace = 'default') {
  return JSON.parse(
    await fx.kubectlOk([
      'get',
      'events',
      '-n',
      namespace,
      '--field-selector',
      `involvedObject.name=${name}`,
      '-o',
      'json',
    ]),
  ).items as Array<{ reason: string; message: string; type: string }>;
}

const ASK = { 'metallb.io/loadBalancerIPs': '127.0.0.205', 'metallb.io/address-pool': 'eero-pool' };

t.test(
  'MetalLB v0.14.8 ignores the metallb.io annotations and hands out any free address',
  async (t) => {
    const fx = await startTestSandbox(t, { metallbVersion: 'v0.14.8' });
    const image = await fx.kubectlOk([
      'get',
      'deployment',
      'controller',
      '-n',
      'metallb-system',
      '-o',
      'jsonpath={.spec.template.spec.containers[0].image}',
    ]);
    t.equal(image, 'quay.io/metallb/controller:v0.14.8', 'the version shows in the image tag');
    await fx.kubectlOk(['apply', '--server-side', '-f', '-'], lb('asks', 'default', ASK));
    t.equal(await ingressOf(fx, 'asks'), '127.0.0.203', 'the first free address, not .205');
    const svc = fx.sandbox.cluster.get(SERVICE, 'default', 'asks');
    t.equal(svc?.metadata.annotations?.['metallb.universe.tf/ip-allocated-from-pool'], 'eero-pool');
    t.equal(svc?.metadata.annotations?.['metallb.io/ip-allocated-from-pool'], undefined);
  },
);

t.test('the current MetalLB reads metallb.io first and warns about the old prefix', async (t) => {
  const fx = await startTestSandbox(t);
  await fx.kubectlOk(['apply', '--server-side', '-f', '-'], lb('asks', 'default', ASK));
  t.equal(await ingressOf(fx, 'asks'), '127.0.0.205');
  await fx.kubectlOk(
    ['apply', '--server-side', '-f', '-'],
    lb('both-prefixes', 'default', {
      'metallb.io/loadBalancerIPs': '127.0.0.206',
      'metallb.universe.tf/loadBalancerIPs': '127.0.0.207',
    }),
  );
  t.equal(await ingressOf(fx, 'both-prefixes'), '127.0.0.206', 'metallb.io wins');
  const events = await eventsOf(fx, 'both-prefixes');
  t.match(
    events.find((e) => e.reason === 'deprecatedAnnotation'),
    {
      type: 'Warning',
      message: 'Service uses deprecated annotation metallb.universe.tf/loadBalancerIPs',
    },
  );
});

t.test("a pool's serviceAllocation decides which namespaces take its addresses", async (t) => {
  const fx = await startTestSandbox(t);
  await fx.kubectlOk(['create', 'namespace', 'redis']);
  await fx.kubectlOk([
    'patch',
    'ipaddresspool',
    'eero-pool',
    '-n',
    'metallb-system',
    '--type=merge',
    '-p',
    JSON.stringify({ spec: { serviceAllocation: { namespaces: ['default'] } } }),
  ]);
  await fx.kubectlOk(
    ['apply', '--server-side', '-f', '-'],
    lb('shut-out', 'redis', { 'metallb.io/address-pool': 'eero-pool' }),
  );
  await fx.kubectlOk([
    'wait',
    '-n',
    'redis',
    '--for=jsonpath={.reason}=AllocationFailed',
    'events',
    '--field-selector',
    'involvedObject.name=shut-out',
    '--timeout=30s',
  ]);
  const failed = (await eventsOf(fx, 'shut-out', 'redis')).find(
    (e) => e.reason === 'AllocationFailed',
  );
  t.equal(
    failed?.message,
    'Failed to allocate IP for "redis/shut-out": pool eero-pool not compatible for ip assignment',
  );
  await fx.kubectlOk([
    'patch',
    'ipaddresspool',
    'eero-pool',
    '-n',
    'metallb-system',
    '--type=merge',
    '-p',
    JSON.stringify({ spec: { serviceAllocation: { namespaces: ['default', 'redis'] } } }),
  ]);
  t.equal(await ingressOf(fx, 'shut-out', 'redis'), '127.0.0.203', 'admitted once listed');
});

t.test(
  'K3s ServiceLB takes LoadBalancer Services: svclb DaemonSets and node addresses',
  async (t) => {
    const fx = await startTestSandbox(t, { serviceLb: true });
    const list = JSON.parse(
      await fx.kubectlOk(['get', 'daemonsets', '-n', 'kube-system', '-o', 'json']),
    ).items as Array<{
      metadata: { name: string; labels: Record<string, string> };
      spec: {
        template: {
          spec: { containers: Array<{ name: string; ports: Array<{ hostPort: number }> }> };
        };
      };
    }>;
    const traefik = list.find(
      (ds) => ds.metadata.labels['svccontroller.k3s.cattle.io/svcname'] === 'traefik',
    );
    t.match(traefik?.metadata.name, /^svclb-traefik-[0-9a-f]{8}$/);
    t.equal(traefik?.metadata.labels['svccontroller.k3s.cattle.io/svcnamespace'], 'kube-system');
    t.same(
      traefik?.spec.template.spec.containers.map(
        (c: { name: string; ports: Array<{ hostPort: number }> }) => [c.name, c.ports[0]!.hostPort],
      ),
      [
        ['lb-tcp-80', 80],
        ['lb-tcp-443', 443],
      ],
    );
    await fx.kubectlOk(['apply', '--server-side', '-f', '-'], lb('redis-lb', 'default', ASK));
    await fx.kubectlOk([
      'wait',
      '--for=jsonpath={.status.loadBalancer.ingress[0].ip}=127.0.0.1',
      'service/redis-lb',
      '--timeout=30s',
    ]);
    t.same(
      fx.sandbox.cluster.get(SERVICE, 'default', 'redis-lb')?.status?.loadBalancer?.ingress,
      [{ ip: '127.0.0.1', ipMode: 'VIP' }],
      "the nodes' address, over MetalLB's",
    );
    await fx.kubectlOk(['delete', 'service', 'redis-lb']);
    const left = await fx.kubectlOk(['get', 'daemonsets', '-n', 'kube-system', '-o', 'name']);
    t.notMatch(left, /svclb-redis-lb-/, 'its DaemonSet goes with the Service');
  },
);
