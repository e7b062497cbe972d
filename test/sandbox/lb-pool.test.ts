// Each sandbox's own LoadBalancer pool (sandbox/lb-pool.ts): the addresses of a slot, the
// homelab's objects built on them, and the slot lock that passes over an address held by a
// process outside the lock files.
import { existsSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { judgeAddressInCidr, judgePoolContains } from '../../lib/phases/preflight.ts';
import { initialState } from '../../sandbox/initial-state.ts';
import { MAX_SLOT, runbookNetworkSettings, sandboxNetwork } from '../../sandbox/lb-pool.ts';
import { AddressPool } from '../../sandbox/workloads/addresses.ts';

t.test('a slot: its pool, the three held addresses, the first free one for Redis', async (t) => {
  const net = sandboxNetwork(42);
  t.same(net.pool, { name: 'eero-pool', first: '127.0.42.200', last: '127.0.42.210' });
  t.same(Object.values(net.held), ['127.0.42.200', '127.0.42.201', '127.0.42.202']);
  t.equal(net.redisLbIp, '127.0.42.203');
  const pool = {
    metadata: { name: 'eero-pool' },
    spec: { addresses: ['127.0.42.200-127.0.42.210'] },
  };
  t.ok(judgePoolContains(pool, 'eero-pool', net.redisLbIp).ok, 'REDIS_LB_IP is in the pool');
  for (const slot of [0, 16, MAX_SLOT]) {
    const n = sandboxNetwork(slot);
    t.ok(judgeAddressInCidr(n.redisLbIp, n.privateCidr).ok, `slot ${slot}: inside PRIVATE_CIDR`);
    t.notOk(judgeAddressInCidr(n.outsideProbeSource, n.privateCidr).ok, 'the probe source is not');
  }
  t.not(sandboxNetwork(16).redisLbIp, sandboxNetwork(17).redisLbIp, 'two slots, two addresses');
  t.throws(() => sandboxNetwork(MAX_SLOT + 1), /expected an integer 0–255/);
  t.same(runbookNetworkSettings(net), {
    REDIS_LB_IP: '127.0.42.203',
    PRIVATE_CIDR: '127.0.0.0/16',
    OUTSIDE_PROBE_SOURCE: '127.1.0.5',
    METALLB_POOL: 'eero-pool',
  });
});

t.test("the homelab's pool and LoadBalancer Services are built on the slot", async (t) => {
  const net = sandboxNetwork(42);
  const objects = initialState(net);
  const pool = objects.find((o) => o.kind === 'IPAddressPool');
  t.same(pool?.spec?.addresses, ['127.0.42.200-127.0.42.210']);
  const lbs = objects
    .filter((o) => o.kind === 'Service' && o.spec?.type === 'LoadBalancer')
    .map((o) => `${o.metadata.name} ${o.spec?.loadBalancerIP}`);
  t.same(lbs, [
    'postgres-ha-postgresql-primary 127.0.42.200',
    'pihole-dns 127.0.42.201',
    'traefik 127.0.42.202',
  ]);
});

function listen(host: string, port: number): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(port, host, () => resolve(server));
  });
}

/** Two slots no sandbox holds now (their lock files are absent). */
function freeSlots(): [number, number] {
  const lockDir = join(tmpdir(), 'redis-shared-sandbox-networks');
  const free: number[] = [];
  for (let slot = 250; slot >= 16 && free.length < 2; slot--) {
    if (!existsSync(join(lockDir, String(slot)))) free.push(slot);
  }
  return [free[0]!, free[1]!];
}

t.test('the slot lock passes over a slot whose Redis address something else holds', async (t) => {
  const [held, next] = freeSlots();
  const squatter = await listen(sandboxNetwork(held).redisLbIp, 6379);
  t.teardown(() => squatter.close());
  const pool = await AddressPool.acquire([held, next]);
  t.teardown(() => pool.release());
  t.equal(pool.octet, next, `slot ${held} is held by a listener outside the locks: ${next} it is`);
  await t.rejects(
    AddressPool.acquire([next]),
    /no free sandbox network left .*npm run sandbox -- down/,
    'a locked slot is not handed out twice',
  );
  squatter.close();
  const again = await AddressPool.acquire([held]);
  t.teardown(() => again.release());
  t.equal(again.octet, held, 'once the address is free the slot is usable');
});
