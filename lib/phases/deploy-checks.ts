// Judgements 02-deploy makes about what the apply created: the plan in words, the PVCs, and the
// containers' requests, limits and probes against the research decisions (013-research.md,
// Decisions 6 and 7; FR-010, FR-013). Pure functions over objects the runbook read.
import type { Judgement } from '../engine/judgement.ts';

export interface PlanChange {
  address: string;
  type: string;
  action: string;
}

const WORDS: Record<string, string> = {
  random_password: 'the generated password',
  kubernetes_namespace_v1: 'the namespace',
  kubernetes_secret_v1: 'a password Secret',
  helm_release: 'the Helm release (StatefulSets, Services, ServiceMonitor)',
  kubernetes_service_v1: 'the LoadBalancer Service',
  kubernetes_manifest: 'the PrometheusRule',
  kubernetes_config_map_v1: 'the Grafana dashboard ConfigMap',
  kubernetes_env: "beersystem's Redis environment",
};

/** `module.redis_shared.kubernetes_secret_v1.credentials["beersystem"]` → `Secret credentials["beersystem"]`-ish words. */
export function describeChange(change: PlanChange): string {
  const index = /\["([^"]+)"\]$/.exec(change.address)?.[1];
  const what = WORDS[change.type] ?? change.type;
  return `${change.action} ${what}${index ? ` (${index})` : ''} — ${change.address}`;
}

/** The plan's changes, one line each, no-ops left out, in columns: action, what, address. */
export function planLines(changes: readonly PlanChange[]): string[] {
  const rows = changes
    .filter((c) => c.action !== 'no-op')
    .map((c) => {
      const [head, address] = describeChange(c).split(' — ') as [string, string];
      return [c.action, head.slice(c.action.length + 1), address] as const;
    });
  const actionWidth = Math.max(0, ...rows.map((r) => r[0].length));
  const whatWidth = Math.max(0, ...rows.map((r) => r[1].length));
  return rows.map(([action, what, address]) =>
    `${action.padEnd(actionWidth)}  ${what.padEnd(whatWidth)}  ${address}`.trimEnd(),
  );
}

/** What T012's question says the apply does: the plan as P01 printed it, a line a change. */
export function applyImpact(lines: readonly string[], restart: string | undefined): string {
  if (lines.length === 0) {
    return 'tofu apply creates namespace redis, the password Secrets in redis and beersystem, the Helm release (2 pods, 2 PVCs), the LoadBalancer Service, the ServiceMonitor, the PrometheusRule and the dashboard';
  }
  return `tofu apply makes these changes in the cluster:\n${lines.map((l) => `    ${l}`).join('\n')}${restart ? `\n  ${restart}` : ''}`;
}

/**
 * An update of the Helm release restarts both Redis pods whenever it changes their pod template or
 * the config, health, scripts or password it renders: the chart's pod templates carry
 * checksum/configmap, checksum/health, checksum/scripts and checksum/secret annotations
 * (bitnami/redis 23.1.1), so the StatefulSets roll. Writes fail while the master restarts.
 */
export function restartWarning(changes: readonly PlanChange[]): string | undefined {
  const release = changes.find((c) => c.type === 'helm_release' && c.action === 'update');
  return release
    ? `${release.address} changes: when it changes the pods' configuration (the chart's checksum/* annotations) both Redis pods restart, master and replica one after the other — writes fail for the seconds the master takes to restart; run it in a quiet moment`
    : undefined;
}

/** Anything the deploy plan would delete or replace, or that lies outside module.redis_shared. */
export function unexpectedChanges(changes: readonly PlanChange[], module: string): PlanChange[] {
  return changes.filter(
    (c) =>
      c.action !== 'no-op' &&
      (c.action === 'delete' || c.action === 'replace' || !c.address.startsWith(`${module}.`)),
  );
}

/** `500m` → 0.5, `1` → 1; `1Gi` → bytes; undefined when unreadable. */
export function parseQuantity(q: string | number | undefined): number | undefined {
  if (typeof q === 'number') return q;
  if (typeof q !== 'string') return undefined;
  const m = /^(\d+(?:\.\d+)?)(m|Ki|Mi|Gi|Ti|k|M|G)?$/.exec(q.trim());
  if (!m) return undefined;
  const n = Number(m[1]);
  const factor: Record<string, number> = {
    m: 0.001,
    k: 1e3,
    M: 1e6,
    G: 1e9,
    Ki: 1024,
    Mi: 1024 ** 2,
    Gi: 1024 ** 3,
    Ti: 1024 ** 4,
  };
  return n * (m[2] ? (factor[m[2]] as number) : 1);
}

export interface Resources {
  requests: { cpu: string; memory: string };
  limits: { cpu: string; memory: string };
}

/** 013-research.md, Decision 7. */
export const RESEARCH_RESOURCES: Readonly<Record<'master' | 'replica' | 'metrics', Resources>> = {
  master: { requests: { cpu: '500m', memory: '1Gi' }, limits: { cpu: '1000m', memory: '2Gi' } },
  replica: { requests: { cpu: '250m', memory: '1Gi' }, limits: { cpu: '1000m', memory: '2Gi' } },
  metrics: { requests: { cpu: '50m', memory: '64Mi' }, limits: { cpu: '100m', memory: '128Mi' } },
};

interface ContainerLike {
  name: string;
  resources?: {
    requests?: Record<string, string>;
    limits?: Record<string, string>;
  };
  livenessProbe?: unknown;
  readinessProbe?: unknown;
  startupProbe?: unknown;
}

/** Requests and limits equal the research decision (as quantities: `1` equals `1000m`). */
export function judgeResources(
  container: ContainerLike | undefined,
  expected: Resources,
  label: string,
): Judgement {
  if (!container) {
    return { ok: false, detail: `${label}: container not found`, fix: 'check the Helm values' };
  }
  const wrong: string[] = [];
  for (const kind of ['requests', 'limits'] as const) {
    for (const res of ['cpu', 'memory'] as const) {
      const want = expected[kind][res];
      const got = container.resources?.[kind]?.[res];
      if (parseQuantity(got) !== parseQuantity(want)) {
        wrong.push(`${kind}.${res} ${got ?? 'unset'} (want ${want})`);
      }
    }
  }
  const shown = `requests ${expected.requests.cpu}/${expected.requests.memory}, limits ${expected.limits.cpu}/${expected.limits.memory}`;
  return wrong.length === 0
    ? { ok: true, detail: `${label}: ${shown}` }
    : {
        ok: false,
        detail: `${label}: ${wrong.join(', ')}`,
        fix: 'set the module variables master_resources / replica_resources / exporter_resources and apply again',
      };
}

/** FR-010: a Redis container the kubelet restarts when it hangs and takes out of service when not ready. */
export function judgeProbes(container: ContainerLike | undefined, label: string): Judgement {
  const missing = (['livenessProbe', 'readinessProbe'] as const).filter(
    (p) => container?.[p] === undefined,
  );
  if (missing.length === 0) {
    const startup = container?.startupProbe ? ', startup' : '';
    return { ok: true, detail: `${label}: liveness, readiness${startup} probes declared` };
  }
  return {
    ok: false,
    detail: `${label}: no ${missing.join(', ')}`,
    fix: 'enable the probes in values.yaml.tftpl (master/replica.livenessProbe, readinessProbe)',
  };
}

interface PvcLike {
  metadata?: { name?: string };
  spec?: { storageClassName?: string; resources?: { requests?: { storage?: string } } };
  status?: { phase?: string; capacity?: { storage?: string } };
}

/** FR-007: the claim is Bound, on the expected StorageClass, at the expected size. */
export function judgePvc(
  pvc: PvcLike | undefined,
  name: string,
  size: string,
  storageClass: string,
): Judgement {
  if (!pvc) {
    return { ok: false, detail: `PVC ${name} not found`, fix: 'check the StatefulSet events' };
  }
  const phase = pvc.status?.phase ?? 'unknown';
  const capacity = pvc.status?.capacity?.storage ?? pvc.spec?.resources?.requests?.storage;
  const sc = pvc.spec?.storageClassName ?? 'none';
  const ok =
    phase === 'Bound' && parseQuantity(capacity) === parseQuantity(size) && sc === storageClass;
  const detail = `PVC ${name}: ${phase}, ${capacity ?? '?'} on ${sc}`;
  return ok
    ? { ok, detail }
    : {
        ok,
        detail: `${detail} (want Bound, ${size} on ${storageClass})`,
        fix: `kubectl describe pvc ${name} -n <namespace>: is the ${storageClass} provisioner running?`,
      };
}

/**
 * Where the two instances run, and a warning when they share a node: one node failure would
 * then take both (and local-path keeps their volumes, so the pods, on that node).
 */
export function placement(
  master: { name: string; node?: string },
  replica: { name: string; node?: string },
): { detail: string; warning?: string } {
  const detail = `${master.name} on node ${master.node ?? '?'}, ${replica.name} on node ${replica.node ?? '?'}`;
  if (!master.node || master.node !== replica.node) return { detail };
  return {
    detail,
    warning: `${master.name} and ${replica.name} share node ${master.node}: one node failure takes both instances. The module requires the replica off the master's node (replica.affinity in values.yaml.tftpl); if it was overridden, restore it and reschedule the replica with its volume on another node`,
  };
}
