// Where the scheduler puts a pod: the nodes that are schedulable, match its nodeSelector and
// required nodeAffinity, and break none of the required pod (anti-)affinity terms — the pod's
// own and, for anti-affinity, those of the pods already running (kube-scheduler's
// InterPodAffinity filter is symmetric for required anti-affinity); among them the best score of
// the preferred terms (weights added for affinity, taken away for anti-affinity), ties broken in
// turn. After kubernetes pkg/scheduler/framework/plugins/{nodeaffinity,interpodaffinity}.

import { labelSelectorMatcher } from '../api/selectors.ts';
import type { KubeObject } from '../runtime.ts';

// biome-ignore lint/suspicious/noExplicitAny: affinity terms as the API stores them
type Term = any;

export interface Placement {
  node?: string;
  /** Why no node fits, as kube-scheduler's FailedScheduling event says it. */
  reason?: string;
}

export function placePod(
  pod: KubeObject,
  nodes: KubeObject[],
  pods: KubeObject[],
  turn: number,
): Placement {
  const schedulable = nodes.filter((n) => !n.spec?.unschedulable);
  const placed = pods.filter(
    (p) => p.spec?.nodeName && !p.metadata.deletionTimestamp && p.metadata.uid !== pod.metadata.uid,
  );
  const byName = new Map(nodes.map((n) => [n.metadata.name, n]));
  const topology = (node: KubeObject, key: string) =>
    node.metadata.labels?.[key] ??
    (key === 'kubernetes.io/hostname' ? node.metadata.name : undefined);
  /** Placed pods that a term selects and that share the node's domain of its topologyKey. */
  const inDomain = (term: Term, owner: KubeObject, node: KubeObject) => {
    const namespaces: string[] = term.namespaces?.length
      ? term.namespaces
      : [owner.metadata.namespace];
    const matches = labelSelectorMatcher(term.labelSelector ?? {});
    const value = topology(node, term.topologyKey);
    return placed.filter((p) => {
      const where = byName.get(p.spec.nodeName);
      return (
        value !== undefined &&
        where &&
        topology(where, term.topologyKey) === value &&
        namespaces.includes(p.metadata.namespace ?? 'default') &&
        matches(p)
      );
    });
  };
  const affinity = pod.spec?.affinity ?? {};
  const required = (kind: 'podAffinity' | 'podAntiAffinity'): Term[] =>
    affinity[kind]?.requiredDuringSchedulingIgnoredDuringExecution ?? [];
  const failures = { selector: 0, antiAffinity: 0, affinity: 0 };
  const feasible = schedulable.filter((node) => {
    if (!nodeSelected(pod, node)) {
      failures.selector++;
      return false;
    }
    if (required('podAntiAffinity').some((term) => inDomain(term, pod, node).length > 0)) {
      failures.antiAffinity++;
      return false;
    }
    // Existing pods' required anti-affinity keeps this pod off their domains too.
    const repelled = placed.some((other) =>
      (
        other.spec?.affinity?.podAntiAffinity?.requiredDuringSchedulingIgnoredDuringExecution ?? []
      ).some((term: Term) => {
        const where = byName.get(other.spec.nodeName);
        const namespaces: string[] = term.namespaces?.length
          ? term.namespaces
          : [other.metadata.namespace];
        return (
          where &&
          topology(where, term.topologyKey) !== undefined &&
          topology(where, term.topologyKey) === topology(node, term.topologyKey) &&
          namespaces.includes(pod.metadata.namespace ?? 'default') &&
          labelSelectorMatcher(term.labelSelector ?? {})(pod)
        );
      }),
    );
    if (repelled) {
      failures.antiAffinity++;
      return false;
    }
    if (required('podAffinity').some((term) => inDomain(term, pod, node).length === 0)) {
      failures.affinity++;
      return false;
    }
    return true;
  });
  if (feasible.length === 0) {
    const parts = [
      failures.selector && `${failures.selector} node(s) didn't match Pod's node affinity/selector`,
      failures.affinity && `${failures.affinity} node(s) didn't match pod affinity rules`,
      failures.antiAffinity &&
        `${failures.antiAffinity} node(s) didn't match pod anti-affinity rules`,
      nodes.length > schedulable.length &&
        `${nodes.length - schedulable.length} node(s) were unschedulable`,
    ].filter(Boolean);
    return {
      reason: `0/${nodes.length} nodes are available: ${parts.join(', ')}.`,
    };
  }
  const preferred = (kind: 'podAffinity' | 'podAntiAffinity'): Term[] =>
    affinity[kind]?.preferredDuringSchedulingIgnoredDuringExecution ?? [];
  const score = (node: KubeObject) =>
    preferred('podAffinity').reduce(
      (s, w) => s + (inDomain(w.podAffinityTerm, pod, node).length > 0 ? w.weight : 0),
      0,
    ) -
    preferred('podAntiAffinity').reduce(
      (s, w) => s + (inDomain(w.podAffinityTerm, pod, node).length > 0 ? w.weight : 0),
      0,
    );
  const best = Math.max(...feasible.map(score));
  const top = feasible.filter((n) => score(n) === best);
  return { node: top[turn % top.length]!.metadata.name };
}

function nodeSelected(pod: KubeObject, node: KubeObject): boolean {
  const labels = node.metadata.labels ?? {};
  for (const [k, v] of Object.entries(pod.spec?.nodeSelector ?? {}))
    if (labels[k] !== v) return false;
  const terms: Term[] =
    pod.spec?.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution
      ?.nodeSelectorTerms ?? [];
  // Terms are ORed; each term's expressions are ANDed.
  return (
    terms.length === 0 ||
    terms.some((term) =>
      (term.matchExpressions ?? []).every((e: Term) => {
        const has = e.key in labels;
        const value = labels[e.key];
        switch (e.operator) {
          case 'In':
            return has && e.values.includes(value);
          case 'NotIn':
            return !has || !e.values.includes(value);
          case 'Exists':
            return has;
          case 'DoesNotExist':
            return !has;
          default:
            return false;
        }
      }),
    )
  );
}
