import t from 'tap';
import {
  type AddressPoolLike,
  ipAssignments,
  poolEntryContains,
  renderIpTable,
  type ServiceLike,
} from '../../lib/phases/ip-table.ts';
import { startTestSandbox } from '../helpers/sandbox.ts';

const pool: AddressPoolLike = {
  metadata: { name: 'eero-pool' },
  spec: { addresses: ['192.168.4.200-192.168.4.210'] },
};
const lb = (
  ns: string,
  name: string,
  ip: string | undefined,
  extra: Partial<ServiceLike['spec']> = {},
  annotations: Record<string, string> = {},
): ServiceLike => ({
  metadata: { name, namespace: ns, annotations },
  spec: { type: 'LoadBalancer', ports: [{ port: 6379 }], ...extra },
  status: { loadBalancer: { ingress: ip ? [{ ip }] : [] } },
});

t.test('pool entries: ranges and CIDRs', async (t) => {
  t.ok(poolEntryContains('192.168.4.200-192.168.4.210', '192.168.4.203'));
  t.notOk(poolEntryContains('192.168.4.200-192.168.4.210', '192.168.4.211'));
  t.ok(poolEntryContains('192.168.4.200/29', '192.168.4.207'));
  t.notOk(poolEntryContains('192.168.4.200/29', '192.168.4.208'));
  t.notOk(poolEntryContains('nonsense', '192.168.4.1'));
  t.notOk(poolEntryContains('192.168.4.0/24', 'not-an-ip'));
});

t.test(
  'T047: every LoadBalancer Service, sorted by address, pool from annotation or range',
  async (t) => {
    const rows = ipAssignments(
      [
        lb(
          'redis',
          'redis-shared-external',
          '192.168.4.203',
          {},
          { 'metallb.io/address-pool': 'eero-pool' },
        ),
        lb('default', 'pihole-dns', '192.168.4.201', { ports: [{ port: 53, protocol: 'UDP' }] }),
        lb('kube-system', 'traefik', '192.168.4.30'),
        { metadata: { name: 'internal', namespace: 'x' }, spec: { type: 'ClusterIP' } },
        lb('x', 'waiting', undefined, { loadBalancerIP: '192.168.4.209' }),
        lb('x', 'nothing-asked', undefined),
        lb('x', 'annotated', undefined, {}, { 'metallb.io/loadBalancerIPs': '192.168.4.205' }),
      ],
      [pool],
    );
    t.same(
      rows.map((r) => [r.ip, r.pool, `${r.namespace}/${r.name}`, r.ports]),
      [
        ['192.168.4.30', '(no pool contains it)', 'kube-system/traefik', '6379/TCP'],
        ['192.168.4.201', 'eero-pool', 'default/pihole-dns', '53/UDP'],
        ['192.168.4.203', 'eero-pool', 'redis/redis-shared-external', '6379/TCP'],
        ['(pending)', '', 'x/nothing-asked', '6379/TCP'],
        ['192.168.4.205 (pending)', 'eero-pool', 'x/annotated', '6379/TCP'],
        ['192.168.4.209 (pending)', 'eero-pool', 'x/waiting', '6379/TCP'],
      ],
    );
    const md = renderIpTable(rows, {
      context: 'chocolandiadc-mvp',
      generatedAt: '2026-11-30T15:00:00Z',
      runId: 'r1',
    });
    t.match(md, /\| 192\.168\.4\.203 \| eero-pool \| redis\/redis-shared-external \| 6379\/TCP \|/);
    t.match(md, /from the cluster `chocolandiadc-mvp` at 2026-11-30T15:00:00Z, run r1/);
  },
);

t.test('T047 against the sandbox: the addresses its MetalLB controller assigned', async (t) => {
  const fx = await startTestSandbox(t);
  await fx.kubectlOk(['create', 'namespace', 'redis']);
  await fx.kubectlOk(
    ['apply', '--server-side', '-f', '-'],
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: {
        name: 'redis-shared-external',
        namespace: 'redis',
        annotations: {
          'metallb.io/loadBalancerIPs': '127.0.0.203',
          'metallb.io/address-pool': 'eero-pool',
        },
      },
      spec: { type: 'LoadBalancer', ports: [{ port: 6379 }], selector: { app: 'x' } },
    }),
  );
  let rows: ReturnType<typeof ipAssignments> = [];
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    const services = JSON.parse(await fx.kubectlOk(['get', 'services', '-A', '-o', 'json'])).items;
    const pools = JSON.parse(
      await fx.kubectlOk(['get', 'ipaddresspools', '-A', '-o', 'json']),
    ).items;
    rows = ipAssignments(services, pools);
    if (rows.every((r) => !r.ip.includes('pending'))) break;
  }
  t.same(
    rows.map((r) => `${r.ip} ${r.pool} ${r.namespace}/${r.name}`),
    [
      '127.0.0.200 eero-pool default/postgres-ha-postgresql-primary',
      '127.0.0.201 eero-pool default/pihole-dns',
      '127.0.0.202 eero-pool kube-system/traefik',
      '127.0.0.203 eero-pool redis/redis-shared-external',
    ],
  );
});
