// Judgements 01-setup makes over objects it has listed: pure functions, so each rule is tested
// on given objects and the runbook only fetches and reports. A judgement never throws for a
// failed check; it answers with a sentence and, when it fails, what to fix.
import { ipInCidr, isIPv4, parseCidr } from '../cluster/network.ts';
import type { Judgement } from '../engine/judgement.ts';

/** The few fields of a Kubernetes object these judgements read. */
export interface ObjectLike {
  metadata?: {
    name?: string;
    namespace?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
  // biome-ignore lint/suspicious/noExplicitAny: spec and status differ per kind
  spec?: any;
  // biome-ignore lint/suspicious/noExplicitAny: spec and status differ per kind
  status?: any;
}

const pass = (detail: string): Judgement => ({ ok: true, detail });
const fail = (detail: string, fix: string): Judgement => ({ ok: false, detail, fix });

function ipNumber(ip: string): number {
  return ip.split('.').reduce((acc, octet) => acc * 256 + Number(octet), 0);
}

/**
 * Whether an address lies in one entry of an IPAddressPool's `spec.addresses`: MetalLB accepts
 * a CIDR (`192.168.4.200/29`) or a range (`192.168.4.200-192.168.4.210`).
 */
export function addressEntryContains(entry: string, ip: string): boolean {
  const text = entry.trim();
  const range = /^([\d.]+)\s*-\s*([\d.]+)$/.exec(text);
  if (range) {
    const [first, last] = [range[1] as string, range[2] as string];
    if (!isIPv4(first) || !isIPv4(last)) return false;
    const n = ipNumber(ip);
    return n >= ipNumber(first) && n <= ipNumber(last);
  }
  const cidr = parseCidr(text);
  return cidr !== undefined && ipInCidr(ip, cidr);
}

/** The pool named METALLB_POOL hands out REDIS_LB_IP. */
export function judgePoolContains(
  pool: ObjectLike | undefined,
  poolName: string,
  ip: string,
): Judgement {
  if (!pool) {
    return fail(
      `MetalLB IPAddressPool ${poolName} not found`,
      `set METALLB_POOL to an existing pool (kubectl get ipaddresspools -A) or create ${poolName}`,
    );
  }
  const addresses: string[] = Array.isArray(pool.spec?.addresses) ? pool.spec.addresses : [];
  const where = `${pool.metadata?.namespace ?? ''}/${poolName}`.replace(/^\//, '');
  if (addresses.some((entry) => addressEntryContains(entry, ip))) {
    return pass(`pool ${where} (${addresses.join(', ')}) contains ${ip}`);
  }
  return fail(
    `pool ${where} (${addresses.join(', ') || 'no addresses'}) does not contain ${ip}`,
    `set REDIS_LB_IP to a free address of ${poolName}, or add ${ip} to the pool`,
  );
}

/** The addresses a Service holds or asks for: its ingress, spec.loadBalancerIP and MetalLB's annotations. */
export function serviceAddresses(service: ObjectLike): string[] {
  const out = new Set<string>();
  for (const ingress of service.status?.loadBalancer?.ingress ?? []) {
    if (typeof ingress?.ip === 'string') out.add(ingress.ip);
  }
  if (typeof service.spec?.loadBalancerIP === 'string' && service.spec.loadBalancerIP !== '') {
    out.add(service.spec.loadBalancerIP);
  }
  const annotations = service.metadata?.annotations ?? {};
  for (const key of ['metallb.io/loadBalancerIPs', 'metallb.universe.tf/loadBalancerIPs']) {
    for (const ip of (annotations[key] ?? '').split(',')) if (ip.trim()) out.add(ip.trim());
  }
  return [...out];
}

const qualified = (o: ObjectLike) => `${o.metadata?.namespace ?? ''}/${o.metadata?.name ?? ''}`;

/**
 * No Service other than ours holds or requests the address; names the holder when one does.
 * `ours` is `<namespace>/<name>` of redis-shared-external, which holds it after 02-deploy.
 */
export function judgeAddressFree(services: ObjectLike[], ip: string, ours: string): Judgement {
  const holders = services.filter((s) => qualified(s) !== ours && serviceAddresses(s).includes(ip));
  if (holders.length === 0) {
    const mine = services.find((s) => qualified(s) === ours && serviceAddresses(s).includes(ip));
    return pass(mine ? `${ip} is held by ${ours} (ours)` : `no Service holds ${ip}`);
  }
  const names = holders.map(qualified).join(', ');
  return fail(
    `${ip} is already held by ${names}`,
    `choose another REDIS_LB_IP from the pool, or free ${ip} (kubectl get svc -A -o wide | grep ${ip})`,
  );
}

/** FR-004/FR-005: the LoadBalancer address is on the private network its source ranges admit. */
export function judgeAddressInCidr(ip: string, cidrText: string): Judgement {
  const cidr = parseCidr(cidrText);
  if (cidr && ipInCidr(ip, cidr)) return pass(`${ip} is inside PRIVATE_CIDR ${cidrText}`);
  return fail(
    `${ip} is outside PRIVATE_CIDR ${cidrText}`,
    'set REDIS_LB_IP to an address of the private network, or correct PRIVATE_CIDR',
  );
}

/**
 * Defaults of the redis-shared module the runbooks check against (variables.tf); a test keeps
 * them equal to the module's.
 */
export const MODULE_DEFAULTS = {
  prometheusReleaseLabel: 'kube-prometheus-stack',
  storageClass: 'local-path',
  storageSize: '10Gi',
} as const;

/** Labels the module gives its ServiceMonitor (chart labels + additionalLabels) and PrometheusRule. */
export function monitoringLabels(release: string): {
  serviceMonitor: Record<string, string>;
  prometheusRule: Record<string, string>;
} {
  const common = { 'app.kubernetes.io/name': 'redis', 'app.kubernetes.io/instance': release };
  const selected = { release: MODULE_DEFAULTS.prometheusReleaseLabel };
  return {
    serviceMonitor: { ...common, ...selected },
    prometheusRule: {
      ...common,
      'app.kubernetes.io/part-of': 'redis-shared',
      'app.kubernetes.io/managed-by': 'opentofu',
      ...selected,
    },
  };
}

/** The labels that make namespace `redis` ours (terraform/modules/redis-shared/locals.tf). */
export const OWNER_LABELS: Readonly<Record<string, string>> = {
  'app.kubernetes.io/managed-by': 'opentofu',
  'app.kubernetes.io/part-of': 'redis-shared',
};

/** The namespace is absent (the module creates it) or carries our labels; never someone else's. */
export function judgeNamespaceOwnership(
  namespace: ObjectLike | undefined,
  name: string,
): Judgement {
  if (!namespace) return pass(`namespace ${name} does not exist yet; the module creates it`);
  const labels = namespace.metadata?.labels ?? {};
  const missing = Object.entries(OWNER_LABELS).filter(([k, v]) => labels[k] !== v);
  if (missing.length === 0)
    return pass(`namespace ${name} exists and is ours (managed-by opentofu)`);
  const shown = Object.entries(labels)
    .map(([k, v]) => `${k}=${v}`)
    .join(', ');
  return fail(
    `namespace ${name} exists and is not ours (labels: ${shown || 'none'})`,
    `set REDIS_NAMESPACE to a new namespace, or find out who owns ${name} before anything is put there`,
  );
}

export interface LabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: { key: string; operator: string; values?: string[] }[];
}

/**
 * Kubernetes label-selector semantics: an empty selector matches everything; `null` (absent)
 * matches nothing, as the Prometheus Operator treats an absent ServiceMonitor selector.
 */
export function selectorMatches(
  selector: LabelSelector | null | undefined,
  labels: Readonly<Record<string, string>>,
): boolean {
  if (!selector) return false;
  for (const [k, v] of Object.entries(selector.matchLabels ?? {})) {
    if (labels[k] !== v) return false;
  }
  for (const { key, operator, values = [] } of selector.matchExpressions ?? []) {
    const has = Object.hasOwn(labels, key);
    const value = labels[key];
    switch (operator) {
      case 'In':
        if (!has || !values.includes(value as string)) return false;
        break;
      case 'NotIn':
        if (has && values.includes(value as string)) return false;
        break;
      case 'Exists':
        if (!has) return false;
        break;
      case 'DoesNotExist':
        if (has) return false;
        break;
      default:
        return false;
    }
  }
  return true;
}

export interface SelectorTarget {
  /** the object kind, for messages: ServiceMonitor, PrometheusRule */
  kind: string;
  /** Prometheus spec fields: serviceMonitorSelector / ruleSelector and their namespace selectors */
  selectorField: string;
  namespaceSelectorField: string;
  /** the namespace the object is created in, and that namespace's labels */
  namespace: string;
  namespaceLabels: Readonly<Record<string, string>>;
  /** the labels the module gives the object */
  labels: Readonly<Record<string, string>>;
}

/**
 * A Prometheus (kube-prometheus-stack) picks up the module's ServiceMonitor and PrometheusRule
 * only when both its label selector and its namespace selector match. An absent namespace
 * selector means the Prometheus's own namespace only.
 */
export function judgePrometheusSelects(
  prometheuses: ObjectLike[],
  target: SelectorTarget,
): Judgement {
  const labels = Object.entries(target.labels)
    .map(([k, v]) => `${k}=${v}`)
    .join(',');
  if (prometheuses.length === 0) {
    return fail(
      `no Prometheus resource found to load a ${target.kind}`,
      'install kube-prometheus-stack (its Prometheus resource selects ServiceMonitors and rules)',
    );
  }
  const reasons: string[] = [];
  for (const p of prometheuses) {
    const name = qualified(p);
    const selector = p.spec?.[target.selectorField] as LabelSelector | null | undefined;
    const nsSelector = p.spec?.[target.namespaceSelectorField] as LabelSelector | null | undefined;
    const nsOk =
      nsSelector === undefined || nsSelector === null
        ? p.metadata?.namespace === target.namespace
        : selectorMatches(nsSelector, target.namespaceLabels);
    if (selectorMatches(selector, target.labels) && nsOk) {
      return pass(
        `Prometheus ${name} selects a ${target.kind} labelled ${labels} in ${target.namespace}`,
      );
    }
    reasons.push(
      `${name}: ${target.selectorField} ${JSON.stringify(selector ?? null)}${nsOk ? '' : `, ${target.namespaceSelectorField} ${JSON.stringify(nsSelector ?? null)} excludes ${target.namespace}`}`,
    );
  }
  return fail(
    `no Prometheus selects a ${target.kind} labelled ${labels} in ${target.namespace} (${reasons.join('; ')})`,
    `set the module's prometheus_release_label to the label your Prometheus selects, or widen ${target.selectorField}`,
  );
}

export interface NodeSummary {
  name: string;
  ready: boolean;
  version: string;
}

export function nodeSummaries(nodes: ObjectLike[]): NodeSummary[] {
  return nodes.map((n) => ({
    name: n.metadata?.name ?? '?',
    ready: (n.status?.conditions ?? []).some(
      (c: { type?: string; status?: string }) => c.type === 'Ready' && c.status === 'True',
    ),
    version: String(n.status?.nodeInfo?.kubeletVersion ?? 'unknown'),
  }));
}

/** Every node Ready; the summary names the count and versions, and any node that is not Ready. */
export function judgeNodes(nodes: ObjectLike[]): Judgement {
  const summary = nodeSummaries(nodes);
  const versions = [...new Set(summary.map((n) => n.version))].join(', ');
  const notReady = summary.filter((n) => !n.ready).map((n) => n.name);
  if (summary.length === 0) {
    return fail('the cluster lists no nodes', 'check KUBECONFIG/KUBE_CONTEXT point at the cluster');
  }
  if (notReady.length > 0) {
    return fail(
      `${summary.length - notReady.length}/${summary.length} nodes Ready; not Ready: ${notReady.join(', ')} (${versions})`,
      `bring ${notReady.join(', ')} back (kubectl describe node ${notReady[0]}): local-path volumes are bound to a node`,
    );
  }
  return pass(`${summary.length}/${summary.length} nodes Ready (${versions})`);
}

/** The CRDs the module's objects need, with who provides them. */
export const REQUIRED_CRDS: readonly { name: string; providedBy: string }[] = [
  {
    name: 'servicemonitors.monitoring.coreos.com',
    providedBy: 'the Prometheus Operator (kube-prometheus-stack)',
  },
  {
    name: 'prometheusrules.monitoring.coreos.com',
    providedBy: 'the Prometheus Operator (kube-prometheus-stack)',
  },
  { name: 'ipaddresspools.metallb.io', providedBy: 'MetalLB (>= 0.13)' },
];

export function judgeCrds(present: ReadonlySet<string>): Judgement {
  const missing = REQUIRED_CRDS.filter((c) => !present.has(c.name));
  if (missing.length === 0) {
    return pass(`CRDs present: ${REQUIRED_CRDS.map((c) => c.name).join(', ')}`);
  }
  return fail(
    `CRD missing: ${missing.map((c) => c.name).join(', ')}`,
    missing.map((c) => `install ${c.providedBy} for ${c.name}`).join('; '),
  );
}

/** What beersystem uses today, noted for 05-migrate (values, never the password). */
export interface BeersystemToday {
  replicas: number;
  readyReplicas: number;
  image: string | undefined;
  redisHost: string | undefined;
  redisPort: string | undefined;
  /** `secretKeyRef <name>/<key>`, `literal` or `absent`: where REDIS_PASSWORD comes from */
  passwordFrom: string;
}

interface EnvVarLike {
  name: string;
  value?: string;
  valueFrom?: { secretKeyRef?: { name?: string; key?: string } };
}

export function beersystemToday(deployment: ObjectLike, container: string): BeersystemToday {
  const containers: { name: string; image?: string; env?: EnvVarLike[] }[] =
    deployment.spec?.template?.spec?.containers ?? [];
  const c = containers.find((x) => x.name === container) ?? containers[0];
  const env = c?.env ?? [];
  const value = (name: string) => env.find((e) => e.name === name)?.value;
  const password = env.find((e) => e.name === 'REDIS_PASSWORD');
  const ref = password?.valueFrom?.secretKeyRef;
  return {
    replicas: Number(deployment.spec?.replicas ?? 1),
    readyReplicas: Number(deployment.status?.readyReplicas ?? 0),
    image: c?.image,
    redisHost: value('REDIS_HOST'),
    redisPort: value('REDIS_PORT'),
    passwordFrom: ref
      ? `secretKeyRef ${ref.name}/${ref.key}`
      : password?.value !== undefined
        ? 'literal'
        : 'absent',
  };
}

/**
 * The first MetalLB release that reads the `metallb.io/` annotations (metallb/metallb commit
 * fc863ccd3, in v0.14.9). The module writes only those: a current controller reports every
 * `metallb.universe.tf/` annotation as a `deprecatedAnnotation` Warning (controller/main.go) and
 * that prefix "might get removed in future versions", so writing both would trade a warning on
 * every change for support of releases older than v0.14.9 — which instead are refused here,
 * because they would ignore the pool and address asked for and hand out any free address.
 */
export const METALLB_MIN_VERSION = 'v0.14.9';

/** `quay.io/metallb/controller:v0.14.8` → `v0.14.8`; undefined for an untagged or digest image. */
export function metallbControllerTag(image: string): string | undefined {
  const m = /(?:^|\/)metallb\/controller:(v?\d+\.\d+\.\d+)(?:$|[-@+])/.exec(image);
  return m?.[1];
}

function versionBelow(a: string, b: string): boolean {
  const parts = (v: string) => v.replace(/^v/, '').split('.').map(Number);
  const [x, y] = [parts(a), parts(b)];
  for (let i = 0; i < 3; i++) if (x[i] !== y[i]) return (x[i] ?? 0) < (y[i] ?? 0);
  return false;
}

/** MetalLB's controller (its Deployment's image tag in `namespace`) is v0.14.9 or later. */
export function judgeMetallbVersion(deployments: ObjectLike[], namespace: string): Judgement {
  const images = deployments.flatMap((d) =>
    ((d.spec?.template?.spec?.containers ?? []) as Array<{ image?: string }>).map((c) => ({
      deployment: d.metadata?.name ?? '?',
      image: String(c.image ?? ''),
    })),
  );
  const controller = images.find((i) => /metallb\/controller[:@]/.test(i.image));
  const upgrade = `upgrade MetalLB to ${METALLB_MIN_VERSION} or later (e.g. helm upgrade metallb metallb/metallb -n ${namespace} --version 0.14.9, or apply the ${METALLB_MIN_VERSION} manifests)`;
  if (!controller) {
    return fail(
      `no MetalLB controller Deployment in ${namespace} (no image quay.io/metallb/controller)`,
      `install MetalLB ${METALLB_MIN_VERSION} or later (its controller is looked for in ${namespace}, the namespace of METALLB_POOL)`,
    );
  }
  const tag = metallbControllerTag(controller.image);
  if (!tag) {
    return fail(
      `MetalLB controller ${namespace}/${controller.deployment} runs ${controller.image}: its version cannot be read from the image`,
      `pin the controller image to a release tag (${METALLB_MIN_VERSION} or later) so the version is known`,
    );
  }
  if (versionBelow(tag, METALLB_MIN_VERSION)) {
    return fail(
      `MetalLB controller ${namespace}/${controller.deployment} is ${tag}: before ${METALLB_MIN_VERSION} it ignores the metallb.io/address-pool and metallb.io/loadBalancerIPs annotations the module sets and would hand out any free address`,
      upgrade,
    );
  }
  return pass(
    `MetalLB controller ${namespace}/${controller.deployment} is ${tag} (>= ${METALLB_MIN_VERSION})`,
  );
}

/** K3s ServiceLB's marks (k3s-io/k3s pkg/cloudprovider/servicelb.go). */
export const SERVICELB_SVCNAME_LABEL = 'svccontroller.k3s.cattle.io/svcname';
export const SERVICELB_NODE_LABEL = 'svccontroller.k3s.cattle.io/enablelb';

/**
 * K3s's ServiceLB is off: no svclb DaemonSet or pod in kube-system, no node labelled for it. While
 * it runs it takes every LoadBalancer Service without a loadBalancerClass (hostPort 6379 on every
 * node, node addresses in the status), fighting MetalLB for redis-shared-external.
 */
export function judgeServiceLbOff(
  daemonSets: ObjectLike[],
  pods: ObjectLike[],
  nodes: ObjectLike[],
): Judgement {
  const isSvclb = (o: ObjectLike) =>
    Boolean(o.metadata?.labels?.[SERVICELB_SVCNAME_LABEL]) ||
    (o.metadata?.name ?? '').startsWith('svclb-');
  const found = [
    ...daemonSets.filter(isSvclb).map((d) => `DaemonSet ${qualified(d)}`),
    ...pods.filter(isSvclb).map((p) => `pod ${qualified(p)}`),
    ...nodes
      .filter((n) => n.metadata?.labels?.[SERVICELB_NODE_LABEL] !== undefined)
      .map((n) => `node ${n.metadata?.name} (label ${SERVICELB_NODE_LABEL})`),
  ];
  if (found.length === 0)
    return pass('K3s ServiceLB is off (no svclb DaemonSets, pods or node labels)');
  const shown =
    found.length > 4
      ? `${found.slice(0, 4).join(', ')} and ${found.length - 4} more`
      : found.join(', ');
  return fail(
    `K3s ServiceLB is active (${shown}): it takes LoadBalancer Services too and writes node addresses over MetalLB's`,
    'start every K3s server with `--disable servicelb` (or `disable: [servicelb]` in /etc/rancher/k3s/config.yaml) and restart k3s, then delete what it left: kubectl -n kube-system delete ds -l svccontroller.k3s.cattle.io/svcnamespace',
  );
}

/**
 * An L2Advertisement or BGPAdvertisement announces the pool (one with neither ipAddressPools nor
 * ipAddressPoolSelectors announces every pool): without one MetalLB assigns the address and no
 * node answers for it.
 */
export function judgePoolAnnounced(
  pool: ObjectLike | undefined,
  poolName: string,
  advertisements: ObjectLike[],
  namespace: string,
): Judgement {
  const labels = pool?.metadata?.labels ?? {};
  const announcing = advertisements.find((ad) => {
    const names: string[] = ad.spec?.ipAddressPools ?? [];
    const selectors: LabelSelector[] = ad.spec?.ipAddressPoolSelectors ?? [];
    if (names.length === 0 && selectors.length === 0) return true;
    return names.includes(poolName) || selectors.some((s) => selectorMatches(s, labels));
  });
  if (announcing) {
    return pass(
      `pool ${poolName} is announced by ${(announcing as { kind?: string }).kind ?? 'advertisement'} ${qualified(announcing)}`,
    );
  }
  return fail(
    `no L2Advertisement or BGPAdvertisement announces pool ${poolName}: its addresses would be assigned but never answer`,
    `create one, e.g. kubectl apply -f - <<<'{"apiVersion":"metallb.io/v1beta1","kind":"L2Advertisement","metadata":{"name":"${poolName}","namespace":"${namespace}"},"spec":{"ipAddressPools":["${poolName}"]}}'`,
  );
}

/**
 * The pool's serviceAllocation (when set) admits the Service: its namespace listed or selected
 * (namespaceSelectors match the namespace's labels) and, with serviceSelectors, its labels
 * matched (metallb/metallb internal/allocator isPoolCompatibleWithService).
 */
export function judgePoolAdmits(
  pool: ObjectLike | undefined,
  poolName: string,
  service: {
    namespace: string;
    namespaceLabels: Record<string, string>;
    labels: Record<string, string>;
  },
): Judgement {
  const allocation = pool?.spec?.serviceAllocation;
  if (!allocation)
    return pass(`pool ${poolName} has no serviceAllocation: any namespace may use it`);
  const named: string[] = allocation.namespaces ?? [];
  const nsSelectors: LabelSelector[] = allocation.namespaceSelectors ?? [];
  const svcSelectors: LabelSelector[] = allocation.serviceSelectors ?? [];
  const nsOk =
    (named.length === 0 && nsSelectors.length === 0) ||
    named.includes(service.namespace) ||
    nsSelectors.some((s) => selectorMatches(s, service.namespaceLabels));
  const svcOk =
    svcSelectors.length === 0 || svcSelectors.some((s) => selectorMatches(s, service.labels));
  if (nsOk && svcOk)
    return pass(`pool ${poolName}'s serviceAllocation admits namespace ${service.namespace}`);
  const why = !nsOk
    ? `namespace ${service.namespace} is not in its namespaces ${JSON.stringify(named)} nor selected by its namespaceSelectors`
    : `its serviceSelectors match none of the Service's labels`;
  return fail(
    `pool ${poolName}'s serviceAllocation does not admit the Service: ${why}`,
    !nsOk
      ? `add ${service.namespace} to spec.serviceAllocation.namespaces of pool ${poolName}, or set METALLB_POOL to a pool that admits it`
      : `widen spec.serviceAllocation.serviceSelectors of pool ${poolName}, or set METALLB_POOL to another pool`,
  );
}

/** The labels the module gives namespace REDIS_NAMESPACE and its external Service (locals.tf, namespace.tf, services.tf). */
export function moduleLabels(release: string, namespace: string) {
  const common = {
    'app.kubernetes.io/name': 'redis',
    'app.kubernetes.io/instance': release,
    ...OWNER_LABELS,
  };
  return {
    namespace: {
      ...common,
      name: namespace,
      type: 'shared-service',
      'kubernetes.io/metadata.name': namespace,
    },
    externalService: { ...common, 'app.kubernetes.io/component': 'external' },
  };
}
