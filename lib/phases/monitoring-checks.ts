// Judgements 04-monitoring makes over what Prometheus reports (US3 AS-1, AS-3, SC-005): the
// series each pod must have, the scrape targets, the ServiceMonitor's interval, and that every
// alert of the PrometheusRule is loaded. Pure functions over the APIs' JSON.

import type { Judgement } from '../engine/judgement.ts';
import { prometheusDurationMs } from './alert-drill.ts';

/**
 * What an operator needs to see per instance (US3 AS-1 and AS-3), as redis_exporter names it.
 * ops/s is a rate: redis_exporter 1.45 exports no instantaneous_ops_per_sec gauge.
 */
export const REQUIRED_SERIES: readonly { what: string; metric: string; rate?: boolean }[] = [
  { what: 'uptime', metric: 'redis_uptime_in_seconds' },
  { what: 'memory', metric: 'redis_memory_used_bytes' },
  { what: 'connected clients', metric: 'redis_connected_clients' },
  { what: 'commands processed', metric: 'redis_commands_processed_total' },
  { what: 'ops/s', metric: 'redis_commands_processed_total', rate: true },
  { what: 'latency', metric: 'redis_commands_duration_seconds_total' },
  { what: 'keyspace hits', metric: 'redis_keyspace_hits_total' },
  { what: 'keyspace misses', metric: 'redis_keyspace_misses_total' },
];

/** The query that shows which pods have a series, e.g. `count by (pod) (redis_up{service="redis-shared-metrics"})`. */
export function seriesQuery(series: { metric: string; rate?: boolean }, service: string): string {
  const selector = `${series.metric}{service="${service}"}`;
  return `count by (pod) (${series.rate ? `rate(${selector}[1m])` : selector})`;
}

/** Which of the wanted pods are missing from an instant-query result. */
export function missingPods(
  result: readonly { metric: Record<string, string> }[],
  pods: readonly string[],
): string[] {
  const seen = new Set(result.map((r) => r.metric.pod));
  return pods.filter((p) => !seen.has(p));
}

interface TargetLike {
  labels?: Record<string, string>;
  health?: string;
  lastError?: string;
  scrapeInterval?: string;
  /** when Prometheus last scraped the target (RFC 3339, /api/v1/targets) */
  lastScrape?: string;
}

/**
 * SC-005 measured, not configured: Prometheus really scraped each pod's target within the last
 * `maxMs` (its lastScrape), so the metrics are at most that old now. The ServiceMonitor's
 * interval is only what was asked for.
 */
export function judgeFreshness(
  targets: readonly TargetLike[],
  service: string,
  pods: readonly string[],
  now: number,
  maxMs = 15_000,
): Judgement {
  const byPod = new Map(
    targets.filter((t) => t.labels?.service === service).map((t) => [t.labels?.pod ?? '?', t]),
  );
  const ages = pods.map((pod) => {
    const at = Date.parse(byPod.get(pod)?.lastScrape ?? '');
    return { pod, ageMs: Number.isNaN(at) ? undefined : Math.max(0, now - at) };
  });
  const stale = ages.filter((a) => a.ageMs === undefined || a.ageMs > maxMs);
  const shown = ages
    .map(
      (a) => `${a.pod} ${a.ageMs === undefined ? 'never' : `${(a.ageMs / 1000).toFixed(1)} s ago`}`,
    )
    .join(', ');
  if (stale.length === 0) {
    return { ok: true, detail: `last scraped ${shown} (≤ ${maxMs / 1000} s)` };
  }
  return {
    ok: false,
    detail: `metrics older than ${maxMs / 1000} s: last scraped ${shown}`,
    fix: 'check Prometheus scrapes the targets (its /targets page) and the ServiceMonitor interval',
  };
}

/** Active targets of the metrics Service: one per pod, each `up`. */
export function judgeTargets(
  targets: readonly TargetLike[],
  service: string,
  pods: readonly string[],
): Judgement {
  const ours = targets.filter((t) => t.labels?.service === service);
  const byPod = new Map(ours.map((t) => [t.labels?.pod ?? '?', t]));
  const problems = pods.flatMap((pod) => {
    const t = byPod.get(pod);
    if (!t) return [`${pod}: no target`];
    if (t.health !== 'up') return [`${pod}: ${t.health ?? 'unknown'} ${t.lastError ?? ''}`.trim()];
    return [];
  });
  if (problems.length === 0) {
    const interval = ours[0]?.scrapeInterval ?? '?';
    return {
      ok: true,
      detail: `${pods.length} targets up for ${service} (${pods.join(', ')}), scraped every ${interval}`,
    };
  }
  return {
    ok: false,
    detail: `targets of ${service}: ${problems.join('; ')}`,
    fix: 'check the ServiceMonitor selects the metrics Service and its port name (http-metrics)',
  };
}

/** SC-005: the ServiceMonitor asks for a scrape every 15 s or less, on every endpoint. */
export function judgeScrapeInterval(
  serviceMonitor: { spec?: { endpoints?: { interval?: string }[] } } | undefined,
  name: string,
  maxMs = 15_000,
): Judgement {
  if (!serviceMonitor) {
    return {
      ok: false,
      detail: `ServiceMonitor ${name} not found`,
      fix: 'run ./runbooks/02-deploy.mts (metrics.serviceMonitor.enabled in the values)',
    };
  }
  const endpoints = serviceMonitor.spec?.endpoints ?? [];
  const intervals = endpoints.map((e) => e.interval);
  const bad = intervals.filter((i) => {
    const ms = prometheusDurationMs(i);
    return ms === undefined || ms > maxMs;
  });
  if (endpoints.length > 0 && bad.length === 0) {
    return {
      ok: true,
      detail: `ServiceMonitor ${name} scrapes every ${intervals.join(', ')} (≤ ${maxMs / 1000}s)`,
    };
  }
  return {
    ok: false,
    detail: `ServiceMonitor ${name} interval ${intervals.map((i) => i ?? 'unset (Prometheus default)').join(', ') || 'no endpoints'} (want ≤ ${maxMs / 1000}s)`,
    fix: 'set the module variable metrics_interval to 15s or less and apply again',
  };
}

/** Every alert the PrometheusRule declares is loaded by Prometheus. */
export function judgeRulesLoaded(
  declared: readonly string[],
  loaded: readonly string[],
): Judgement {
  const have = new Set(loaded);
  const missing = declared.filter((a) => !have.has(a));
  if (declared.length > 0 && missing.length === 0) {
    return { ok: true, detail: `all ${declared.length} alerts loaded (${declared.join(', ')})` };
  }
  return {
    ok: false,
    detail:
      declared.length === 0
        ? 'the PrometheusRule declares no alerts'
        : `not loaded: ${missing.join(', ')}`,
    fix: 'check the PrometheusRule carries the label the Prometheus ruleSelector wants, and the operator logs',
  };
}

/** Alert names declared in a PrometheusRule object's spec.groups. */
export function declaredAlerts(rule: {
  spec?: { groups?: { rules?: { alert?: string }[] }[] };
}): string[] {
  return (rule.spec?.groups ?? []).flatMap((g) =>
    (g.rules ?? []).map((r) => r.alert).filter((a): a is string => typeof a === 'string'),
  );
}
