// What the Prometheus Operator would generate from ServiceMonitors and PrometheusRules, for the
// sandbox's Prometheus: scrape jobs whose targets are the exporters behind the selected Services
// (with the operator's target labels), and rule files. Intervals and `for:` are shortened so an
// alert drill takes seconds, not minutes (sandbox/README.md, "Alert timing").
import type { ClusterAccess, KubeObject } from '../runtime.ts';
import { POD, PROMETHEUS_RULE, SERVICE, SERVICE_MONITOR } from './kinds.ts';

/** Every scrape and rule evaluation of the sandbox's Prometheus runs at this interval. */
export const SANDBOX_INTERVAL = '1s';
/**
 * Every rule's `for:` is divided by this in the sandbox: `1m` waits 2 s, `15m` 30 s. A division
 * keeps the rules' order and lets a check that reads a rule's duration from Prometheus's rules
 * API recover the shipped value (`clusterForSeconds`).
 */
export const SANDBOX_FOR_DIVISOR = 30;

export interface TargetGroup {
  targets: string[];
  labels: Record<string, string>;
}

export interface ScrapeJob {
  jobName: string;
  fileName: string;
  metricsPath: string;
  groups: TargetGroup[];
}

export interface PrometheusSetup {
  jobs: ScrapeJob[];
  /** file name → YAML-ready object with `groups`. */
  ruleFiles: Record<string, { groups: unknown[] }>;
}

/** `<ns>/<pod>` → address of a running pod, or undefined when it runs no process. */
export type PodAddress = (namespace: string, pod: string) => string | undefined;

export function prometheusSetup(cluster: ClusterAccess, podAddress: PodAddress): PrometheusSetup {
  const jobs: ScrapeJob[] = [];
  for (const monitor of safeList(cluster, SERVICE_MONITOR)) {
    const monitorNs = monitor.metadata.namespace ?? 'default';
    // biome-ignore lint/suspicious/noExplicitAny: ServiceMonitor endpoints as the CRD stores them
    const endpoints: any[] = monitor.spec?.endpoints ?? [];
    endpoints.forEach((endpoint, index) => {
      const jobName = `serviceMonitor/${monitorNs}/${monitor.metadata.name}/${index}`;
      jobs.push({
        jobName,
        fileName: `${monitorNs}_${monitor.metadata.name}_${index}.json`,
        metricsPath: endpoint.path ?? '/metrics',
        groups: monitorTargets(cluster, monitor, endpoint, podAddress),
      });
    });
  }
  const ruleFiles: PrometheusSetup['ruleFiles'] = {};
  for (const rule of safeList(cluster, PROMETHEUS_RULE)) {
    // biome-ignore lint/suspicious/noExplicitAny: rule groups as the CRD stores them
    const groups = (rule.spec?.groups ?? []).map((group: any) => ({
      name: group.name,
      interval: SANDBOX_INTERVAL,
      // biome-ignore lint/suspicious/noExplicitAny: one rule as the CRD stores it
      rules: (group.rules ?? []).map((r: any) => ({
        ...r,
        ...(r.for ? { for: sandboxFor(r.for) } : {}),
        ...(typeof r.expr === 'string' ? { expr: sandboxExpr(r.expr) } : {}),
      })),
    }));
    ruleFiles[`${rule.metadata.namespace ?? 'default'}_${rule.metadata.name}.yaml`] = { groups };
  }
  return { jobs, ruleFiles };
}

export function prometheusConfig(
  setup: PrometheusSetup,
  targetsDir: string,
  rulesDir: string,
): object {
  return {
    global: {
      scrape_interval: SANDBOX_INTERVAL,
      scrape_timeout: SANDBOX_INTERVAL,
      evaluation_interval: SANDBOX_INTERVAL,
    },
    rule_files: [`${rulesDir}/*.yaml`],
    scrape_configs: setup.jobs.map((job) => ({
      job_name: job.jobName,
      metrics_path: job.metricsPath,
      file_sd_configs: [
        { files: [`${targetsDir}/${job.fileName}`], refresh_interval: SANDBOX_INTERVAL },
      ],
    })),
  };
}

/** A rule's `for:` as the sandbox's Prometheus runs it: `1m` → `2s`, `10s` → `333ms`. */
export function sandboxFor(duration: string): string {
  const ms = Math.round((durationSeconds(duration) * 1000) / SANDBOX_FOR_DIVISOR);
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`;
}

/**
 * A rule's expression with its range windows on the same compressed clock as its `for:`:
 * `rate(x[5m])` → `rate(x[10s])`. Compressing `for:` alone would let a burst of a few seconds
 * (a drill's misses) satisfy a 15-minute `for:` over a 5-minute window, an alert the cluster
 * would never fire. Never below 4 s: four of the sandbox's 1 s samples, enough for rate().
 */
export function sandboxExpr(expr: string): string {
  return expr.replace(/\[(\d+(?:ms|s|m|h|d|w|y))\]/g, (_all, window: string) => {
    const ms = Math.max(4000, Math.round((durationSeconds(window) * 1000) / SANDBOX_FOR_DIVISOR));
    return `[${ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`}]`;
  });
}

/** The `for:` the cluster runs, in seconds, from the `duration` the sandbox's rules API reports. */
export function clusterForSeconds(sandboxSeconds: number): number {
  return sandboxSeconds * SANDBOX_FOR_DIVISOR;
}

export function durationSeconds(duration: string): number {
  const units: Record<string, number> = {
    ms: 0.001,
    s: 1,
    m: 60,
    h: 3600,
    d: 86400,
    w: 604800,
    y: 31536000,
  };
  let total = 0;
  for (const [, value, unit] of duration.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h|d|w|y)/g)) {
    total += Number(value) * (units[unit ?? ''] ?? 0);
  }
  return total;
}

function monitorTargets(
  cluster: ClusterAccess,
  monitor: KubeObject,
  // biome-ignore lint/suspicious/noExplicitAny: one ServiceMonitor endpoint
  endpoint: any,
  podAddress: PodAddress,
): TargetGroup[] {
  const namespaces: string[] = monitor.spec?.namespaceSelector?.any
    ? [...new Set(cluster.list(SERVICE).map((s) => s.metadata.namespace ?? 'default'))]
    : (monitor.spec?.namespaceSelector?.matchNames ?? [monitor.metadata.namespace ?? 'default']);
  const selector: Record<string, string> = monitor.spec?.selector?.matchLabels ?? {};
  const groups: TargetGroup[] = [];
  for (const namespace of namespaces) {
    for (const service of cluster.list(SERVICE, namespace, selector)) {
      // biome-ignore lint/suspicious/noExplicitAny: Service ports as the API stores them
      const port = (service.spec?.ports ?? []).find((p: any) =>
        endpoint.port
          ? p.name === endpoint.port
          : String(p.targetPort ?? p.port) === String(endpoint.targetPort),
      );
      const podSelector: Record<string, string> | undefined = service.spec?.selector;
      if (!port || !podSelector) continue;
      for (const pod of cluster.list(POD, namespace, podSelector)) {
        const ip = podAddress(namespace, pod.metadata.name);
        const container = containerOfPort(pod, port.targetPort ?? port.port);
        if (!ip || !container) continue;
        groups.push({
          targets: [`${ip}:${container.port}`],
          labels: {
            job: service.metadata.name,
            namespace,
            service: service.metadata.name,
            pod: pod.metadata.name,
            container: container.name,
            endpoint: endpoint.port ?? String(endpoint.targetPort),
          },
        });
      }
    }
  }
  return groups;
}

function containerOfPort(
  pod: KubeObject,
  target: string | number,
): { name: string; port: number } | undefined {
  for (const container of pod.spec?.containers ?? []) {
    for (const p of container.ports ?? []) {
      if (p.name === target || p.containerPort === Number(target)) {
        return { name: container.name, port: p.containerPort };
      }
    }
  }
  return undefined;
}

/** A kind whose CRD is not registered yet lists as empty. */
function safeList(cluster: ClusterAccess, kind: typeof SERVICE_MONITOR): KubeObject[] {
  try {
    return cluster.list(kind);
  } catch {
    return [];
  }
}
