// Cluster networking of the sandbox: every Service gets an address on the sandbox's loopback
// network, a TCP proxy per port to its ready endpoints, and its DNS names in the hosts files; a
// LoadBalancer Service also listens on its ingress address — only when MetalLB assigned it and an
// L2Advertisement or BGPAdvertisement announces its pool, as a speaker answers ARP for it only
// then — and enforces loadBalancerSourceRanges; HTTP reaches any Service through the API's
// service proxy.
import { appendFileSync } from 'node:fs';
import { join } from 'node:path';
import { advertisementFor, expandAddresses } from '../controllers/load-balancers.ts';
import type { ClusterAccess, KubeObject, SandboxPlugin, StoreEvent } from '../runtime.ts';
import {
  BGP_ADVERTISEMENT,
  IP_ADDRESS_POOL,
  L2_ADVERTISEMENT,
  POD,
  SERVICE,
  STATEFUL_SET,
} from './kinds.ts';
import { connectionSource, ingressAllowed, isolated } from './network-policy.ts';
import type { WorkloadState } from './state.ts';
import { type Endpoint, TcpProxy } from './tcp-proxy.ts';

const RETRY_LISTEN_MS = 1000;

// biome-ignore lint/suspicious/noExplicitAny: a Service port as the API stores it
type ServicePort = any;

export class NetworkPlugin implements SandboxPlugin {
  readonly name = 'network';
  private readonly state: WorkloadState;
  private cluster?: ClusterAccess;
  private unsubscribe?: () => void;
  /** `<ns>/<svc>` → listen address → proxy. */
  private readonly proxies = new Map<string, Map<string, TcpProxy>>();
  private readonly proxyTargets = new Map<string, string[]>();
  private readonly podHostnames = new Map<string, string>();
  private readonly retry = new Set<string>();
  private retryTimer?: NodeJS.Timeout;
  private readonly logFile: string;
  private readonly onPartition = () => this.enforcePartitions();

  constructor(state: WorkloadState) {
    this.state = state;
    this.logFile = join(state.logDir, 'network.log');
  }

  async start(cluster: ClusterAccess): Promise<void> {
    this.cluster = cluster;
    this.state.on('partition', this.onPartition);
    this.unsubscribe = cluster.subscribe((event) => this.onEvent(event));
    await Promise.all(cluster.list(SERVICE).map((svc) => this.syncService(svc)));
    for (const pod of cluster.list(POD)) this.syncPodHostname(pod);
    this.retryTimer = setInterval(() => this.retryFailed(), RETRY_LISTEN_MS);
    this.retryTimer.unref();
  }

  async stop(): Promise<void> {
    this.unsubscribe?.();
    this.state.off('partition', this.onPartition);
    if (this.retryTimer) clearInterval(this.retryTimer);
    const all = [...this.proxies.values()].flatMap((m) => [...m.values()]);
    this.proxies.clear();
    await Promise.all(all.map((p) => p.close()));
  }

  /** The addresses a Service listens on now (for tests and the operator's status). */
  listening(namespace: string, service: string): string[] {
    return [...(this.proxies.get(`${namespace}/${service}`)?.keys() ?? [])];
  }

  private onEvent(event: StoreEvent): void {
    const { kind } = event.object;
    if (kind === 'Service') {
      if (event.type === 'DELETED') void this.removeService(event.object);
      else void this.syncService(event.object);
    } else if (kind === 'Pod' && event.type !== 'DELETED') {
      this.syncPodHostname(event.object);
    } else if (
      kind === 'L2Advertisement' ||
      kind === 'BGPAdvertisement' ||
      kind === 'IPAddressPool'
    ) {
      for (const svc of this.cluster?.list(SERVICE) ?? []) {
        if (svc.spec?.type === 'LoadBalancer') void this.syncService(svc);
      }
    }
  }

  /**
   * The LoadBalancer address a node answers for: the one MetalLB assigned (its pool recorded in
   * ip-allocated-from-pool, the address in that pool) when an advertisement announces the pool.
   * An address another controller wrote (K3s ServiceLB's node addresses) is not MetalLB's to
   * announce.
   */
  private announcedAddress(svc: KubeObject): string | undefined {
    const cluster = this.cluster;
    const ip: string | undefined = svc.status?.loadBalancer?.ingress?.[0]?.ip;
    if (!cluster || !ip) return undefined;
    const annotations = svc.metadata.annotations ?? {};
    const poolName =
      annotations['metallb.io/ip-allocated-from-pool'] ??
      annotations['metallb.universe.tf/ip-allocated-from-pool'];
    const pool = cluster.list(IP_ADDRESS_POOL).find((p) => p.metadata.name === poolName);
    if (!pool) return undefined;
    const addresses = (pool.spec?.addresses ?? []).flatMap(expandAddresses) as string[];
    if (!addresses.includes(ip)) return undefined;
    const advertisements = [...cluster.list(L2_ADVERTISEMENT), ...cluster.list(BGP_ADVERTISEMENT)];
    if (!advertisementFor(pool, advertisements)) {
      this.log(
        `${ip}: not announced (no L2Advertisement or BGPAdvertisement selects pool ${poolName})`,
      );
      return undefined;
    }
    return ip;
  }

  private async syncService(svc: KubeObject): Promise<void> {
    const cluster = this.cluster;
    if (!cluster) return;
    const namespace = svc.metadata.namespace ?? 'default';
    const name = svc.metadata.name;
    const key = `${namespace}/${name}`;
    const headless = svc.spec?.clusterIP === 'None';
    const ports: ServicePort[] = (svc.spec?.ports ?? []).filter(
      (p: ServicePort) => (p.protocol ?? 'TCP') === 'TCP',
    );
    const wanted = new Map<string, { host: string; port: ServicePort; lb: boolean }>();
    if (!headless) {
      const ip = this.state.addresses.serviceIP(namespace, name);
      this.state.hosts.setService(namespace, name, ip);
      for (const port of ports) wanted.set(`${ip}:${port.port}`, { host: ip, port, lb: false });
      this.setProxyTargets(
        key,
        namespace,
        name,
        ports.map((p) => ({ port: p.port, target: `http://${ip}:${p.port}` })),
      );
    }
    const ingress = svc.spec?.type === 'LoadBalancer' ? this.announcedAddress(svc) : undefined;
    if (ingress)
      for (const port of ports)
        wanted.set(`${ingress}:${port.port}`, { host: ingress, port, lb: true });

    const current = this.proxies.get(key) ?? new Map<string, TcpProxy>();
    this.proxies.set(key, current);
    for (const [address, proxy] of current) {
      if (!wanted.has(address)) {
        current.delete(address);
        await proxy.close();
      }
    }
    for (const [address, want] of wanted) {
      if (current.has(address)) continue;
      const proxy = new TcpProxy({
        host: want.host,
        port: want.port.port,
        sourceRanges: want.lb ? () => this.sourceRanges(namespace, name) : undefined,
        endpoints: () => this.endpoints(namespace, name, want.port),
        blocked: (ip) => this.state.partitioned.has(ip),
        refusal: (client, endpoint) =>
          this.policyRefusal(client, { ip: want.host, port: want.port.port }, endpoint),
        log: (line) => this.log(line),
      });
      current.set(address, proxy);
      await this.listen(key, address, proxy);
    }
  }

  private async listen(key: string, address: string, proxy: TcpProxy): Promise<void> {
    try {
      await proxy.listen();
      this.retry.delete(`${key} ${address}`);
    } catch (err) {
      // Another sandbox may hold a LoadBalancer address for a moment: keep trying while the
      // Service exists.
      this.log(`cannot listen on ${address} for ${key}: ${(err as Error).message}; retrying`);
      this.retry.add(`${key} ${address}`);
    }
  }

  private retryFailed(): void {
    for (const entry of [...this.retry]) {
      const [key = '', address = ''] = entry.split(' ');
      const proxy = this.proxies.get(key)?.get(address);
      if (!proxy) this.retry.delete(entry);
      else void this.listen(key, address, proxy);
    }
  }

  private async removeService(svc: KubeObject): Promise<void> {
    const namespace = svc.metadata.namespace ?? 'default';
    const key = `${namespace}/${svc.metadata.name}`;
    const current = this.proxies.get(key);
    this.proxies.delete(key);
    this.state.hosts.removeService(namespace, svc.metadata.name);
    this.setProxyTargets(key, namespace, svc.metadata.name, []);
    await Promise.all([...(current?.values() ?? [])].map((p) => p.close()));
  }

  private setProxyTargets(
    key: string,
    namespace: string,
    name: string,
    targets: Array<{ port: number; target: string }>,
  ): void {
    const cluster = this.cluster;
    if (!cluster) return;
    const before = this.proxyTargets.get(key) ?? [];
    const after = targets.map((t) => `${t.port} ${t.target}`);
    for (const entry of before) {
      if (!after.includes(entry))
        cluster.setServiceProxyTarget(namespace, name, Number(entry.split(' ')[0]), undefined);
    }
    for (const t of targets) cluster.setServiceProxyTarget(namespace, name, t.port, t.target);
    this.proxyTargets.set(key, after);
  }

  private sourceRanges(namespace: string, name: string): string[] | undefined {
    return this.cluster?.get(SERVICE, namespace, name)?.spec?.loadBalancerSourceRanges;
  }

  /** The ready pods behind a Service port, or what the sandbox runs in their place. */
  private endpoints(namespace: string, name: string, port: ServicePort): Endpoint[] {
    const cluster = this.cluster;
    const svc = cluster?.get(SERVICE, namespace, name);
    if (!cluster || !svc) return [];
    const selector: Record<string, string> | undefined = svc.spec?.selector;
    // What the sandbox runs in a Service's place (its Prometheus) wins over the pods that
    // stand for it in the store.
    const external = this.state.externalEndpoints.get(`${namespace}/${name}`);
    if (external) return [external];
    const out: Endpoint[] = [];
    if (selector && Object.keys(selector).length > 0) {
      for (const pod of cluster.list(POD, namespace, selector)) {
        if (!isReady(pod) || pod.metadata.deletionTimestamp) continue;
        const running = this.state.pods.get(`${namespace}/${pod.metadata.name}`);
        if (!running?.main?.running) continue;
        const target = resolveTargetPort(pod, port);
        if (target !== undefined) out.push({ ip: running.ip, port: target, pod });
      }
    }
    return out;
  }

  /** NetworkPolicy ingress of the endpoint's pod, for a connection that came to `server`. */
  private policyRefusal(
    client: { ip: string; port: number },
    server: { ip: string; port: number },
    endpoint: Endpoint,
  ): string | undefined {
    const cluster = this.cluster;
    if (!cluster || !endpoint.pod || !isolated(cluster, endpoint.pod)) return undefined;
    const podIps = new Map<string, string>();
    for (const [key, running] of this.state.pods) podIps.set(running.ip, key);
    const source = connectionSource(cluster, podIps, client, server);
    const verdict = ingressAllowed(cluster, source, endpoint.pod, endpoint.port);
    return verdict.allowed ? undefined : verdict.reason;
  }

  /**
   * A StatefulSet pod's own name under its headless Service (`<pod>.<svc>.<ns>.svc.cluster.local`).
   * It resolves to an address of the pod's own, whose proxy carries every port of the pod, so
   * that `fault partition` and NetworkPolicy reach connections made by that name (the chart's
   * replica reaches master-0 so). As cluster DNS (CoreDNS from EndpointSlices), the name is
   * published only while the pod is Ready, unless the Service sets publishNotReadyAddresses.
   */
  private syncPodHostname(pod: KubeObject): void {
    const namespace = pod.metadata.namespace ?? 'default';
    const owner = pod.metadata.ownerReferences?.find((o) => o.kind === 'StatefulSet');
    const subdomain: string | undefined =
      pod.spec?.subdomain ??
      (owner
        ? this.cluster?.get(STATEFUL_SET, namespace, owner.name)?.spec?.serviceName
        : undefined);
    if (!subdomain) return;
    const name = pod.metadata.name;
    const key = `${namespace}/${subdomain}/${name}`;
    const ip = this.state.addresses.serviceIP(namespace, `${name}.${subdomain}`);
    const svc = this.cluster?.get(SERVICE, namespace, subdomain);
    const published =
      !!svc &&
      (svc.spec?.publishNotReadyAddresses === true ||
        (isReady(pod) && !pod.metadata.deletionTimestamp));
    if (!this.proxies.has(`pod:${key}`)) this.startPodProxies(key, namespace, name, ip, pod);
    if (this.podHostnames.get(key) === (published ? ip : '')) return;
    this.podHostnames.set(key, published ? ip : '');
    if (published) this.state.hosts.setPodHostname(namespace, subdomain, name, ip);
    else this.state.hosts.removePodHostname(namespace, subdomain, name);
  }

  private startPodProxies(
    key: string,
    namespace: string,
    name: string,
    ip: string,
    pod: KubeObject,
  ) {
    const proxies = new Map<string, TcpProxy>();
    this.proxies.set(`pod:${key}`, proxies);
    const ports: number[] = (pod.spec?.containers ?? []).flatMap(
      (c: { ports?: Array<{ containerPort: number }> }) =>
        (c.ports ?? []).map((p) => p.containerPort),
    );
    for (const port of ports) {
      const proxy = new TcpProxy({
        host: ip,
        port,
        endpoints: () => {
          const current = this.cluster?.get(POD, namespace, name);
          const running = this.state.pods.get(`${namespace}/${name}`);
          return current && running?.main?.running ? [{ ip: running.ip, port, pod: current }] : [];
        },
        blocked: (address) => this.state.partitioned.has(address),
        refusal: (client, endpoint) => this.policyRefusal(client, { ip, port }, endpoint),
        log: (line) => this.log(line),
      });
      proxies.set(`${ip}:${port}`, proxy);
      void this.listen(`pod:${key}`, `${ip}:${port}`, proxy);
    }
  }

  private enforcePartitions(): void {
    for (const proxies of this.proxies.values())
      for (const proxy of proxies.values()) proxy.enforce();
  }

  private log(line: string): void {
    appendFileSync(this.logFile, `${new Date().toISOString()} ${line}\n`);
  }
}

function isReady(pod: KubeObject): boolean {
  // biome-ignore lint/suspicious/noExplicitAny: pod conditions as the API stores them
  return (pod.status?.conditions ?? []).some((c: any) => c.type === 'Ready' && c.status === 'True');
}

function resolveTargetPort(pod: KubeObject, port: ServicePort): number | undefined {
  const target = port.targetPort ?? port.port;
  if (typeof target === 'number') return target;
  if (/^\d+$/.test(String(target))) return Number(target);
  for (const container of pod.spec?.containers ?? []) {
    for (const p of container.ports ?? []) if (p.name === target) return p.containerPort;
  }
  return undefined;
}
