// What MetalLB does for a LoadBalancer Service: take an address from an IPAddressPool (the one
// asked for by loadBalancerIP or the MetalLB annotations, else the first free one) and write it
// to status.loadBalancer.ingress; an address another Service holds is refused with an event.
import type { Store, StoreChange } from '../api/store.ts';
import type { KubeObject } from '../runtime.ts';
import type { EventRecorder } from './events.ts';
import { WorkQueue } from './queue.ts';
import type { Controller } from './workload-base.ts';
import { typeOf } from './workload-base.ts';

const POOL_ANNOTATIONS = ['metallb.io/address-pool', 'metallb.universe.tf/address-pool'];
const IP_ANNOTATIONS = ['metallb.io/loadBalancerIPs', 'metallb.universe.tf/loadBalancerIPs'];

function ipToNumber(ip: string): number {
  return ip.split('.').reduce((n, part) => n * 256 + Number(part), 0);
}

function numberToIp(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

/** Every address of a pool entry: `a.b.c.d-e.f.g.h` or a CIDR. */
export function expandAddresses(entry: string): string[] {
  const out: string[] = [];
  let first: number;
  let last: number;
  if (entry.includes('-')) {
    const [a, b] = entry.split('-').map((s) => s.trim());
    first = ipToNumber(a!);
    last = ipToNumber(b!);
  } else {
    const [base, bits] = entry.split('/');
    const size = 2 ** (32 - Number(bits ?? 32));
    first = ipToNumber(base!);
    last = first + size - 1;
  }
  for (let n = first; n <= last && out.length < 65536; n++) out.push(numberToIp(n));
  return out;
}

const ingressIp = (svc: KubeObject): string | undefined =>
  svc.status?.loadBalancer?.ingress?.[0]?.ip;

export class LoadBalancerController implements Controller {
  private readonly serviceType;
  private readonly queue: WorkQueue;
  private unsubscribe: (() => void) | undefined;
  // Refusals already reported, so a refused Service does not fill the event list.
  private readonly reported = new Map<string, string>();

  constructor(
    private readonly store: Store,
    private readonly record: EventRecorder,
  ) {
    this.serviceType = typeOf(store, '', 'Service');
    this.queue = new WorkQueue('LoadBalancer', () => this.reconcileAll());
  }

  start(): void {
    this.unsubscribe = this.store.subscribe((change) => this.onChange(change));
    this.queue.add('all');
  }

  stop(): void {
    this.unsubscribe?.();
    this.queue.stop();
  }

  private onChange(change: StoreChange): void {
    if (change.resource === this.serviceType || change.resource.kind === 'IPAddressPool') {
      this.queue.add('all');
    }
  }

  private pools(): KubeObject[] {
    const poolType = this.store.registry.byKind({ group: 'metallb.io', kind: 'IPAddressPool' });
    return poolType ? this.store.list(poolType) : [];
  }

  private reconcileAll(): void {
    const services = this.store.list(this.serviceType);
    const used = new Map<string, string>();
    for (const svc of services) {
      const ip = ingressIp(svc);
      if (ip && svc.spec?.type === 'LoadBalancer')
        used.set(ip, `${svc.metadata.namespace}/${svc.metadata.name}`);
    }
    for (const svc of services) {
      const key = `${svc.metadata.namespace}/${svc.metadata.name}`;
      if (svc.spec?.type !== 'LoadBalancer') {
        if (svc.status?.loadBalancer?.ingress) this.setIngress(svc, undefined);
        continue;
      }
      const requested = this.requestedIp(svc);
      const current = ingressIp(svc);
      if (current && (!requested || requested === current)) continue;
      if (current) used.delete(current);
      const result = this.allocate(svc, requested, used);
      if ('ip' in result) {
        used.set(result.ip, key);
        this.reported.delete(key);
        this.setIngress(svc, result.ip);
        this.record(svc, 'IPAllocated', `Assigned IP ["${result.ip}"]`);
      } else {
        if (current) this.setIngress(svc, undefined);
        if (this.reported.get(key) !== result.error) {
          this.reported.set(key, result.error);
          this.record(svc, 'AllocationFailed', result.error, 'Warning');
        }
      }
    }
  }

  private requestedIp(svc: KubeObject): string | undefined {
    for (const a of IP_ANNOTATIONS) {
      const value = svc.metadata.annotations?.[a];
      if (value) return value.split(',')[0]!.trim();
    }
    return svc.spec?.loadBalancerIP || undefined;
  }

  private allocate(
    svc: KubeObject,
    requested: string | undefined,
    used: Map<string, string>,
  ): { ip: string } | { error: string } {
    const key = `${svc.metadata.namespace}/${svc.metadata.name}`;
    const poolName = POOL_ANNOTATIONS.map((a) => svc.metadata.annotations?.[a]).find(Boolean);
    const pools = this.pools().filter((p) =>
      poolName ? p.metadata.name === poolName : p.spec?.autoAssign !== false || !!requested,
    );
    if (poolName && pools.length === 0) {
      return { error: `Failed to allocate IP for "${key}": unknown pool "${poolName}"` };
    }
    const addresses = pools.flatMap((p) => (p.spec?.addresses ?? []).flatMap(expandAddresses));
    if (requested) {
      if (!addresses.includes(requested)) {
        return {
          error: `Failed to allocate IP for "${key}": ["${requested}"] is not allowed in config`,
        };
      }
      const holder = used.get(requested);
      if (holder && holder !== key) {
        return {
          error: `Failed to allocate IP for "${key}": can't change sharing key for "${key}", address also in use by ${holder}`,
        };
      }
      return { ip: requested };
    }
    const free = addresses.find((ip) => !used.has(ip));
    return free ? { ip: free } : { error: `Failed to allocate IP for "${key}": no available IPs` };
  }

  private setIngress(svc: KubeObject, ip: string | undefined): void {
    this.store.mutate(
      this.serviceType,
      svc.metadata.namespace,
      svc.metadata.name,
      (o) => {
        o.status = {
          ...(o.status ?? {}),
          loadBalancer: ip ? { ingress: [{ ip, ipMode: 'VIP' }] } : {},
        };
      },
      'status',
    );
  }
}
