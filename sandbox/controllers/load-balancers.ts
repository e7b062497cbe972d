// What MetalLB's controller does for a LoadBalancer Service (metallb/metallb controller/service.go
// convergeService, allocateIPs, getDesiredLbIPs; internal/allocator/allocator.go): take the
// address asked for (the metallb.io/loadBalancerIPs annotation, its deprecated
// metallb.universe.tf/ name, or spec.loadBalancerIP — never two of them) or the first free one of
// the pool named by metallb.io/address-pool (else of any auto-assigning pool), write it to
// status.loadBalancer.ingress and annotate the pool it came from. What MetalLB refuses is
// refused here with its reason in an AllocationFailed event, and the Service gets no address.
import type { Store, StoreChange } from '../api/store.ts';
import type { KubeObject } from '../runtime.ts';
import type { EventRecorder } from './events.ts';
import { WorkQueue } from './queue.ts';
import type { Controller } from './workload-base.ts';
import { typeOf } from './workload-base.ts';

const POOL_ANNOTATIONS = ['metallb.io/address-pool', 'metallb.universe.tf/address-pool'];
const IP_ANNOTATIONS = ['metallb.io/loadBalancerIPs', 'metallb.universe.tf/loadBalancerIPs'];
export const ALLOCATED_FROM_POOL = 'metallb.io/ip-allocated-from-pool';
const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

/** valueForAnnotation: the stable name wins over the deprecated one; present-but-empty counts. */
function annotation(svc: KubeObject, names: string[]): string {
  for (const name of names) {
    const value = svc.metadata.annotations?.[name];
    if (value !== undefined) return value;
  }
  return '';
}

/** getDesiredLbIPs: the addresses asked for, or MetalLB's error. */
export function desiredIps(svc: KubeObject): { ips: string[] } | { error: string } {
  const fromAnnotation = annotation(svc, IP_ANNOTATIONS);
  const fromSpec: string = svc.spec?.loadBalancerIP ?? '';
  if (!fromAnnotation && !fromSpec) return { ips: [] };
  if (fromAnnotation && fromSpec) {
    return { error: `service can not have both ${IP_ANNOTATIONS[0]} and svc.Spec.LoadBalancerIP` };
  }
  if (fromAnnotation) {
    const ips = fromAnnotation.split(',').map((s) => s.trim());
    if (ips.some((ip) => !IPV4.test(ip))) {
      return { error: `invalid ${IP_ANNOTATIONS[0]}: "${fromAnnotation}"` };
    }
    return { ips };
  }
  if (!IPV4.test(fromSpec)) return { error: `invalid spec.loadBalancerIP "${fromSpec}"` };
  return { ips: [fromSpec] };
}

/** Go's %q of a []net.IP, as MetalLB's messages print the addresses. */
const quoted = (ips: string[]) => `[${ips.map((ip) => `"${ip}"`).join(' ')}]`;

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
        if (svc.status?.loadBalancer?.ingress) this.setIngress(svc, undefined, undefined);
        continue;
      }
      const desired = desiredIps(svc);
      const current = ingressIp(svc);
      if (current && 'error' in desired) {
        // convergeService: with an address already assigned, a bad request is reported and the
        // address kept.
        this.report(
          svc,
          key,
          'LoadBalancerFailed',
          `invalid requested loadbalancer IPs: ${desired.error}`,
        );
        continue;
      }
      const requested = 'ips' in desired ? desired.ips[0] : undefined;
      const poolName = annotation(svc, POOL_ANNOTATIONS);
      const currentPool = svc.metadata.annotations?.[ALLOCATED_FROM_POOL];
      if (
        current &&
        (!requested || requested === current) &&
        (!poolName || poolName === currentPool)
      ) {
        continue;
      }
      if (current) used.delete(current);
      const result = 'error' in desired ? desired : this.allocate(key, requested, poolName, used);
      if ('ip' in result) {
        used.set(result.ip, key);
        this.reported.delete(key);
        this.setIngress(svc, result.ip, result.pool);
        this.record(svc, 'IPAllocated', `Assigned IP ${quoted([result.ip])}`);
      } else {
        if (current) this.setIngress(svc, undefined, undefined);
        this.report(
          svc,
          key,
          'AllocationFailed',
          `Failed to allocate IP for "${key}": ${result.error}`,
        );
      }
    }
  }

  /** Records a Warning event once per distinct message, so a refused Service does not flood. */
  private report(svc: KubeObject, key: string, reason: string, message: string): void {
    if (this.reported.get(key) === message) return;
    this.reported.set(key, message);
    this.record(svc, reason, message, 'Warning');
  }

  private allocate(
    key: string,
    requested: string | undefined,
    poolName: string,
    used: Map<string, string>,
  ): { ip: string; pool: string } | { error: string } {
    const pools = this.pools();
    const addressesOf = (p: KubeObject) =>
      (p.spec?.addresses ?? []).flatMap(expandAddresses) as string[];
    if (requested) {
      // Allocator.Assign, then the pool annotation's check in allocateIPs.
      const pool = pools.find((p) => addressesOf(p).includes(requested));
      if (!pool) return { error: `${quoted([requested])} is not allowed in config` };
      const holder = used.get(requested);
      if (holder && holder !== key) {
        return {
          error: `can't change sharing key for "${key}", address also in use by ${holder}`,
        };
      }
      if (poolName && pool.metadata.name !== poolName) {
        return {
          error: `requested loadBalancer IP(s) ${quoted([requested])} is not compatible with requested address pool ${poolName}`,
        };
      }
      return { ip: requested, pool: pool.metadata.name };
    }
    if (poolName) {
      const pool = pools.find((p) => p.metadata.name === poolName);
      if (!pool) return { error: `unknown pool "${poolName}"` };
      const free = addressesOf(pool).find((ip) => !used.has(ip));
      return free
        ? { ip: free, pool: poolName }
        : { error: `no available IPs in pool ${poolName}` };
    }
    for (const pool of pools.filter((p) => p.spec?.autoAssign !== false)) {
      const free = addressesOf(pool).find((ip) => !used.has(ip));
      if (free) return { ip: free, pool: pool.metadata.name };
    }
    return { error: 'no available IPs' };
  }

  private setIngress(svc: KubeObject, ip: string | undefined, pool: string | undefined): void {
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
    // MetalLB records the pool on the Service itself (clearServiceState removes it again).
    this.store.mutate(this.serviceType, svc.metadata.namespace, svc.metadata.name, (o) => {
      const annotations = { ...(o.metadata.annotations ?? {}) };
      if (pool) annotations[ALLOCATED_FROM_POOL] = pool;
      else delete annotations[ALLOCATED_FROM_POOL];
      o.metadata.annotations = annotations;
    });
  }
}
