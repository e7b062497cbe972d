// NetworkPolicy ingress on the connections the sandbox carries (its Service and LoadBalancer
// proxies). A connection's source is a pod when it comes from a pod's own address (Redis binds
// its replication link to it) or from a process of a pod (found through /proc: the socket's
// inode, the process holding it, the pod marker in that process's environment); anything else is
// a host address, matched against ipBlocks only. The rules are Kubernetes' (networking.k8s.io/v1
// NetworkPolicySpec): a pod selected by no Ingress policy admits everything; a selected pod
// admits what at least one rule of one policy admits, a rule matching when its ports include
// the destination port (none: every port) and one of its peers matches the source (none: every
// source). Egress rules are not enforced.
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import type { ClusterAccess, KindRef, KubeObject } from '../runtime.ts';
import { ipInCidr } from './cidr.ts';
import { POD } from './kinds.ts';

export const NETWORK_POLICY: KindRef = {
  group: 'networking.k8s.io',
  version: 'v1',
  kind: 'NetworkPolicy',
};
const NAMESPACE: KindRef = { group: '', version: 'v1', kind: 'Namespace' };

/** Set by the supervisor in every pod process's environment (and so in its children's). */
export const POD_MARKER = 'REDIS_SHARED_SANDBOX_POD';

export type Source = { pod: KubeObject } | { host: string };

// biome-ignore lint/suspicious/noExplicitAny: label selectors as the API stores them
type Selector = any;

/** matchLabels and matchExpressions (In, NotIn, Exists, DoesNotExist); {} matches everything. */
export function selectorMatches(selector: Selector, labels: Record<string, string> = {}): boolean {
  for (const [k, v] of Object.entries(selector?.matchLabels ?? {}))
    if (labels[k] !== v) return false;
  for (const e of selector?.matchExpressions ?? []) {
    const has = e.key in labels;
    const value = labels[e.key];
    const ok =
      e.operator === 'In'
        ? has && e.values.includes(value)
        : e.operator === 'NotIn'
          ? !has || !e.values.includes(value)
          : e.operator === 'Exists'
            ? has
            : !has;
    if (!ok) return false;
  }
  return true;
}

const appliesToIngress = (policy: KubeObject) =>
  (policy.spec?.policyTypes ?? ['Ingress']).includes('Ingress');

/** Whether `source` may open a connection to `port` of `destination`, and if not, why. */
export function ingressAllowed(
  cluster: ClusterAccess,
  source: Source,
  destination: KubeObject,
  port: number,
): { allowed: true } | { allowed: false; reason: string } {
  const namespace = destination.metadata.namespace ?? 'default';
  const policies = cluster
    .list(NETWORK_POLICY, namespace)
    .filter(
      (p) =>
        appliesToIngress(p) && selectorMatches(p.spec?.podSelector, destination.metadata.labels),
    );
  if (policies.length === 0) return { allowed: true };
  for (const policy of policies) {
    for (const rule of policy.spec?.ingress ?? []) {
      if (!portMatches(rule.ports, destination, port)) continue;
      const peers = rule.from ?? [];
      if (
        peers.length === 0 ||
        peers.some((peer: Selector) => peerMatches(cluster, peer, source, namespace))
      )
        return { allowed: true };
    }
  }
  const who =
    'pod' in source
      ? `pod ${source.pod.metadata.namespace}/${source.pod.metadata.name}`
      : source.host;
  return {
    allowed: false,
    reason: `${who} → ${namespace}/${destination.metadata.name}:${port} refused by NetworkPolicy ${policies.map((p) => p.metadata.name).join(', ')}`,
  };
}

// biome-ignore lint/suspicious/noExplicitAny: NetworkPolicyPort entries
function portMatches(ports: any[] | undefined, destination: KubeObject, port: number): boolean {
  if (!ports || ports.length === 0) return true;
  return ports.some((p) => {
    if ((p.protocol ?? 'TCP') !== 'TCP') return false;
    if (p.port === undefined) return true;
    if (typeof p.port === 'number') return port >= p.port && port <= (p.endPort ?? p.port);
    // A named port is the destination container's port of that name.
    return (destination.spec?.containers ?? []).some((c: Selector) =>
      (c.ports ?? []).some((cp: Selector) => cp.name === p.port && cp.containerPort === port),
    );
  });
}

function peerMatches(
  cluster: ClusterAccess,
  peer: Selector,
  source: Source,
  policyNamespace: string,
): boolean {
  if (peer.ipBlock) {
    // ipBlock is for addresses outside the cluster; pod addresses are matched by selectors.
    if ('pod' in source) return false;
    return (
      ipInCidr(source.host, peer.ipBlock.cidr) &&
      !(peer.ipBlock.except ?? []).some((cidr: string) => ipInCidr(source.host, cidr))
    );
  }
  if (!('pod' in source)) return false;
  const podNamespace = source.pod.metadata.namespace ?? 'default';
  if (peer.namespaceSelector) {
    const ns = cluster.get(NAMESPACE, undefined, podNamespace);
    if (!selectorMatches(peer.namespaceSelector, ns?.metadata.labels)) return false;
  } else if (podNamespace !== policyNamespace) {
    return false;
  }
  return !peer.podSelector || selectorMatches(peer.podSelector, source.pod.metadata.labels);
}

const hexIp = (ip: string) =>
  ip
    .split('.')
    .map((o) => Number(o).toString(16).padStart(2, '0').toUpperCase())
    .reverse()
    .join('');
const hexPort = (port: number) => port.toString(16).padStart(4, '0').toUpperCase();

/** The inode of the TCP socket from `from` to `to`, as /proc/net/tcp lists it. */
function socketInode(
  from: { ip: string; port: number },
  to: { ip: string; port: number },
): string | undefined {
  const local = `${hexIp(from.ip)}:${hexPort(from.port)}`;
  const remote = `${hexIp(to.ip)}:${hexPort(to.port)}`;
  for (const line of readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f[1] === local && f[2] === remote) return f[9];
  }
  return undefined;
}

/** `<namespace>/<pod>` of the sandbox pod process that holds the socket, if any. */
function podOfSocket(inode: string): string | undefined {
  const instance = process.env.REDIS_SHARED_SANDBOX_INSTANCE;
  const target = `socket:[${inode}]`;
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    let marker: string | undefined;
    try {
      const env = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');
      if (instance && !env.includes(`REDIS_SHARED_SANDBOX_INSTANCE=${instance}`)) continue;
      marker = env.find((e) => e.startsWith(`${POD_MARKER}=`))?.slice(POD_MARKER.length + 1);
      if (!marker) continue;
      for (const fd of readdirSync(`/proc/${pid}/fd`)) {
        if (readlinkSync(`/proc/${pid}/fd/${fd}`) === target) return marker;
      }
    } catch {
      // A process that exited meanwhile, or one that is not ours.
    }
  }
  return undefined;
}

/**
 * Who opened a connection that arrived from `client` at `server`: the pod whose address it comes
 * from, the pod whose process holds the socket, or else the host address.
 */
export function connectionSource(
  cluster: ClusterAccess,
  podIps: Map<string, string>,
  client: { ip: string; port: number },
  server: { ip: string; port: number },
): Source {
  let key = podIps.get(client.ip);
  if (!key) {
    const inode = socketInode(client, server);
    if (inode) key = podOfSocket(inode);
  }
  if (key) {
    const [namespace = '', name = ''] = key.split('/');
    const pod = cluster.get(POD, namespace, name);
    if (pod) return { pod };
  }
  return { host: client.ip };
}

/** True when some Ingress policy selects the pod (only then is the source worth finding). */
export function isolated(cluster: ClusterAccess, pod: KubeObject): boolean {
  return cluster
    .list(NETWORK_POLICY, pod.metadata.namespace)
    .some((p) => appliesToIngress(p) && selectorMatches(p.spec?.podSelector, pod.metadata.labels));
}
