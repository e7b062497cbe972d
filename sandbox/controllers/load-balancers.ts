// What MetalLB's controller does for a LoadBalancer Service (metallb/metallb controller/service.go
// convergeService, allocateIPs, getDesiredLbIPs; internal/allocator/allocator.go): take the
// address asked for (the loadBalancerIPs annotation or spec.loadBalancerIP — never both) or the
// first free one of the pool named by the address-pool annotation (else of any auto-assigning
// pool without serviceAllocation), write it to status.loadBalancer.ingress and annotate the pool
// it came from. What MetalLB refuses is refused here with its reason in an AllocationFailed event,
// and the Service gets no address.
//
// The sandbox's MetalLB has a version (SandboxOptions.metallbVersion, default METALLB_VERSION) and
// reads the annotations that version reads: `metallb.io/*` from v0.14.9 (commit fc863ccd3, which
// keeps `metallb.universe.tf/*` as deprecated names — the stable name wins, and each deprecated
// one is reported with a `deprecatedAnnotation` Warning), only `metallb.universe.tf/*` before.
// A pool's serviceAllocation (namespaces, namespaceSelectors, serviceSelectors) limits which
// Services may take its addresses (allocator.go isPoolCompatibleWithService).
import type { Store, StoreChange } from '../api/store.ts';
import type { KubeObject } from '../runtime.ts';
import type { EventRecorder } from './events.ts';
import { WorkQueue } from './queue.ts';
import type { Controller } from './workload-base.ts';
import { typeOf } from './workload-base.ts';

/** The current MetalLB release (metallb/metallb tag v0.16.1), the sandbox's default. */
export const METALLB_VERSION = 'v0.16.1';
/** The first release that reads the `metallb.io/` annotation prefix (commit fc863ccd3). */
export const METALLB_IO_PREFIX_SINCE = 'v0.14.9';

const STABLE = 'metallb.io';
const DEPRECATED = 'metallb.universe.tf';
export const ALLOCATED_FROM_POOL = `${STABLE}/ip-allocated-from-pool`;
const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

/** `v0.14.8` → [0, 14, 8]; undefined when it is not a version. */
export function parseVersion(text: string): [number, number, number] | undefined {
  const m = /^v?(\d+)\.(\d+)\.(\d+)/.exec(text.trim());
  return m ? [Number(m[1]), Number(m[2]), Number(m[3])] : undefined;
}

/** a < b, by major, minor, patch. */
export function versionBelow(a: string, b: string): boolean {
  const x = parseVersion(a);
  const y = parseVersion(b);
  if (!x || !y) return false;
  for (let i = 0; i < 3; i++) if (x[i] !== y[i]) return x[i]! < y[i]!;
  return false;
}

/** The annotation names a MetalLB version reads, the preferred first. */
export function annotationNames(version: string) {
  const prefixes = versionBelow(version, METALLB_IO_PREFIX_SINCE)
    ? [DEPRECATED]
    : [STABLE, DEPRECATED];
  const names = (suffix: string) => prefixes.map((p) => `${p}/${suffix}`);
  return {
    pool: names('address-pool'),
    ips: names('loadBalancerIPs'),
    allocatedFrom: `${prefixes[0]}/ip-allocated-from-pool`,
    deprecatedPrefix: prefixes.length > 1 ? DEPRECATED : undefined,
  };
}

type Names = ReturnType<typeof annotationNames>;

/** valueForAnnotation: the stable name wins over the deprecated one; present-but-empty counts. */
function annotation(svc: KubeObject, names: string[]): string {
  for (const name of names) {
    const value = svc.metadata.annotations?.[name];
    if (value !== undefined) return value;
  }
  return '';
}

/** getDesiredLbIPs: the addresses asked for, or MetalLB's error. */
export function desiredIps(
  svc: KubeObject,
  names: Names = annotationNames(METALLB_VERSION),
): { ips: string[] } | { error: string } {
  const fromAnnotation = annotation(svc, names.ips);
  const fromSpec: string = svc.spec?.loadBalancerIP ?? '';
  if (!fromAnnotation && !fromSpec) return { ips: [] };
  if (fromAnnotation && fromSpec) {
    return { error: `service can not have both ${names.ips[0]} and svc.Spec.LoadBalancerIP` };
  }
  if (fromAnnotation) {
    const ips = fromAnnotation.split(',').map((s) => s.trim());
    if (ips.some((ip) => !IPV4.test(ip))) {
      return { error: `invalid ${names.ips[0]}: "${fromAnnotation}"` };
    }
    return { ips };
  }
  if (!IPV4.test(fromSpec)) return { error: `invalid spec.loadBalancerIP "${fromSpec}"` };
  return { ips: [fromSpec] };
}

interface LabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: Array<{ key: string; operator: string; values?: string[] }>;
}

/** metav1.LabelSelectorAsSelector(...).Matches(labels). */
export function selectorMatches(selector: LabelSelector, labels: Record<string, string> = {}) {
  for (const [k, v] of Object.entries(selector.matchLabels ?? {}))
    if (labels[k] !== v) return false;
  for (const e of selector.matchExpressions ?? []) {
    const has = e.key in labels;
    const inValues = has && (e.values ?? []).includes(labels[e.key]!);
    if (e.operator === 'In' && !inValues) return false;
    if (e.operator === 'NotIn' && inValues) return false;
    if (e.operator === 'Exists' && !has) return false;
    if (e.operator === 'DoesNotExist' && has) return false;
  }
  return true;
}

/**
 * isPoolCompatibleWithService: a pool with serviceAllocation admits a Service whose namespace is
 * listed or selected (config.go folds namespaceSelectors into the namespace list) and, when
 * serviceSelectors are set, whose labels one of them matches.
 */
export function poolAdmits(
  pool: KubeObject,
  svc: KubeObject,
  namespaceLabels: (ns: string) => Record<string, string> | undefined,
): boolean {
  const allocation = pool.spec?.serviceAllocation;
  if (!allocation) return true;
  const ns = svc.metadata.namespace ?? 'default';
  const named: string[] = allocation.namespaces ?? [];
  const selectors: LabelSelector[] = allocation.namespaceSelectors ?? [];
  if (named.length > 0 || selectors.length > 0) {
    const labels = namespaceLabels(ns);
    const selected = labels !== undefined && selectors.some((s) => selectorMatches(s, labels));
    if (!named.includes(ns) && !selected) return false;
  }
  const serviceSelectors: LabelSelector[] = allocation.serviceSelectors ?? [];
  if (serviceSelectors.length > 0) {
    return serviceSelectors.some((s) => selectorMatches(s, svc.metadata.labels ?? {}));
  }
  return true;
}

/**
 * The advertisement that announces a pool's addresses, as the speaker decides (speaker/main.go
 * and internal/config: an L2Advertisement or BGPAdvertisement with neither ipAddressPools nor
 * ipAddressPoolSelectors takes every pool). Without one the address is assigned but no node
 * answers for it.
 */
export function advertisementFor(
  pool: KubeObject,
  advertisements: KubeObject[],
): KubeObject | undefined {
  return advertisements.find((ad) => {
    const names: string[] = ad.spec?.ipAddressPools ?? [];
    const selectors: LabelSelector[] = ad.spec?.ipAddressPoolSelectors ?? [];
    if (names.length === 0 && selectors.length === 0) return true;
    return (
      names.includes(pool.metadata.name) ||
      selectors.some((s) => selectorMatches(s, pool.metadata.labels ?? {}))
    );
  });
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

export interface MetalLbOptions {
  /** The MetalLB release to behave as (default METALLB_VERSION). */
  version?: string;
}

export class LoadBalancerController implements Controller {
  private readonly serviceType;
  private readonly namespaceType;
  private readonly queue: WorkQueue;
  private readonly names: Names;
  private unsubscribe: (() => void) | undefined;
  // Refusals already reported, so a refused Service does not fill the event list.
  private readonly reported = new Map<string, string>();
  // The allocator's memory (allocator.go keeps it in the controller): what MetalLB assigned, so
  // a status another controller wrote over it (K3s ServiceLB) is not fought in a loop.
  private readonly assigned = new Map<string, { ip: string; pool: string }>();

  constructor(
    private readonly store: Store,
    private readonly record: EventRecorder,
    options: MetalLbOptions = {},
  ) {
    this.serviceType = typeOf(store, '', 'Service');
    this.namespaceType = typeOf(store, '', 'Namespace');
    this.names = annotationNames(options.version ?? METALLB_VERSION);
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
    if (
      change.resource === this.serviceType ||
      change.resource === this.namespaceType ||
      change.resource.kind === 'IPAddressPool'
    ) {
      this.queue.add('all');
    }
  }

  private pools(): KubeObject[] {
    const poolType = this.store.registry.byKind({ group: 'metallb.io', kind: 'IPAddressPool' });
    return poolType ? this.store.list(poolType) : [];
  }

  private namespaceLabels = (ns: string): Record<string, string> | undefined => {
    const obj = this.store.get(this.namespaceType, undefined, ns);
    return obj ? (obj.metadata.labels ?? {}) : undefined;
  };

  private reconcileAll(): void {
    const services = this.store.list(this.serviceType);
    const live = new Set(services.map((svc) => `${svc.metadata.namespace}/${svc.metadata.name}`));
    for (const key of this.assigned.keys()) if (!live.has(key)) this.assigned.delete(key);
    // On start the allocator learns what the Services' status already holds (controller.go
    // SetBalancer with the previous IPs).
    for (const svc of services) {
      const key = `${svc.metadata.namespace}/${svc.metadata.name}`;
      const ip = ingressIp(svc);
      const pool = svc.metadata.annotations?.[this.names.allocatedFrom];
      if (svc.spec?.type === 'LoadBalancer' && ip && pool && !this.assigned.has(key)) {
        this.assigned.set(key, { ip, pool });
      }
    }
    const used = new Map<string, string>();
    for (const [key, a] of this.assigned) used.set(a.ip, key);
    for (const svc of services) {
      const key = `${svc.metadata.namespace}/${svc.metadata.name}`;
      if (svc.spec?.type !== 'LoadBalancer') {
        if (this.assigned.delete(key) || svc.status?.loadBalancer?.ingress) {
          this.setIngress(svc, undefined, undefined);
        }
        continue;
      }
      const desired = desiredIps(svc, this.names);
      const current = this.assigned.get(key);
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
      const poolName = annotation(svc, this.names.pool);
      if (
        current &&
        (!requested || requested === current.ip) &&
        (!poolName || poolName === current.pool)
      ) {
        continue;
      }
      if (current) {
        used.delete(current.ip);
        this.assigned.delete(key);
      }
      const result =
        'error' in desired ? desired : this.allocate(svc, key, requested, poolName, used);
      if ('ip' in result) {
        used.set(result.ip, key);
        this.assigned.set(key, result);
        this.reported.delete(key);
        this.warnDeprecated(svc);
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

  /** controller/main.go: each deprecated annotation is reported when there is work to do. */
  private warnDeprecated(svc: KubeObject): void {
    const prefix = this.names.deprecatedPrefix;
    if (!prefix) return;
    for (const name of Object.keys(svc.metadata.annotations ?? {})) {
      if (name.startsWith(`${prefix}/`)) {
        this.record(
          svc,
          'deprecatedAnnotation',
          `Service uses deprecated annotation ${name}`,
          'Warning',
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
    svc: KubeObject,
    key: string,
    requested: string | undefined,
    poolName: string,
    used: Map<string, string>,
  ): { ip: string; pool: string } | { error: string } {
    const pools = this.pools();
    const addressesOf = (p: KubeObject) =>
      (p.spec?.addresses ?? []).flatMap(expandAddresses) as string[];
    const admits = (p: KubeObject) => poolAdmits(p, svc, this.namespaceLabels);
    const incompatible = (p: KubeObject) => ({
      error: `pool ${p.metadata.name} not compatible for ip assignment`,
    });
    if (requested) {
      // Allocator.Assign, then the pool annotation's check in allocateIPs.
      const pool = pools.find((p) => addressesOf(p).includes(requested));
      if (!pool) return { error: `${quoted([requested])} is not allowed in config` };
      if (!admits(pool)) return incompatible(pool);
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
      if (!free) return { error: `no available IPs in pool ${poolName}` };
      return admits(pool) ? { ip: free, pool: poolName } : incompatible(pool);
    }
    // Allocate: first the pools whose serviceAllocation admits the Service, then every
    // auto-assigning pool without one.
    const pinned = pools.filter(
      (p) => p.spec?.serviceAllocation && p.spec?.autoAssign !== false && admits(p),
    );
    const open = pools.filter((p) => !p.spec?.serviceAllocation && p.spec?.autoAssign !== false);
    for (const pool of [...pinned, ...open]) {
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
    const allocatedFrom = this.names.allocatedFrom;
    this.store.mutate(this.serviceType, svc.metadata.namespace, svc.metadata.name, (o) => {
      const annotations = { ...(o.metadata.annotations ?? {}) };
      if (pool) annotations[allocatedFrom] = pool;
      else delete annotations[allocatedFrom];
      o.metadata.annotations = annotations;
    });
  }
}
