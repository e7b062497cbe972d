// Prometheus's HTTP API through the API server's service proxy (docs/architecture.md), so the operator's
// host needs no port-forward: /api/v1/namespaces/<monitoring>/services/<svc>:<port>/proxy/….
import type { Config } from '../config.ts';
import { maskSecrets } from '../mask.ts';
import type { Kube } from './kube.ts';

export interface PrometheusAccess {
  readonly cfg: Pick<Config, 'monitoring'>;
  readonly kube: Pick<Kube, 'proxyGet'>;
}

export interface PromSample {
  metric: Record<string, string>;
  value: [number, string];
}

export interface PromTarget {
  labels: Record<string, string>;
  scrapePool: string;
  scrapeUrl: string;
  health: 'up' | 'down' | 'unknown';
  lastError: string;
  lastScrape: string;
}

export interface PromRule {
  name: string;
  type: 'alerting' | 'recording';
  query: string;
  health: string;
  state?: 'inactive' | 'pending' | 'firing';
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  duration?: number;
}

export interface PromRuleGroup {
  name: string;
  file: string;
  interval: number;
  rules: PromRule[];
}

export interface PromAlert {
  labels: Record<string, string>;
  annotations: Record<string, string>;
  state: 'pending' | 'firing';
  activeAt: string;
  value: string;
}

async function prometheusApi<T>(
  ctx: PrometheusAccess,
  endpoint: string,
  params: Record<string, string> = {},
): Promise<T> {
  const { namespace, prometheusService, prometheusPort } = ctx.cfg.monitoring;
  const query = new URLSearchParams(params).toString();
  const path = `api/v1/${endpoint}${query ? `?${query}` : ''}`;
  const where = `Prometheus ${namespace}/${prometheusService}:${prometheusPort}`;
  const { status, body } = await ctx.kube.proxyGet(
    namespace,
    `${prometheusService}:${prometheusPort}`,
    path,
  );
  let parsed: { status?: string; data?: T; errorType?: string; error?: string } | undefined;
  try {
    parsed = JSON.parse(body);
  } catch {
    parsed = undefined;
  }
  if (parsed?.status === 'success' && parsed.data !== undefined) return parsed.data;
  if (parsed?.status === 'error') {
    throw new Error(
      `${where} refused ${endpoint}: ${parsed.errorType}: ${maskSecrets(String(parsed.error))}`,
    );
  }
  throw new Error(
    `${where} answered ${status} to ${endpoint}: ${maskSecrets(body.trim()).slice(0, 300)}. Check that it is running and Ready (kubectl get pods -n ${namespace}) and that MONITORING_NAMESPACE, PROMETHEUS_SERVICE and PROMETHEUS_PORT name it`,
  );
}

/** An instant query; a scalar result comes back as one sample without labels. */
export async function prometheusQuery(
  ctx: PrometheusAccess,
  promql: string,
): Promise<PromSample[]> {
  const data = await prometheusApi<{ resultType: string; result: unknown }>(ctx, 'query', {
    query: promql,
  });
  if (data.resultType === 'vector') return data.result as PromSample[];
  if (data.resultType === 'scalar') return [{ metric: {}, value: data.result as [number, string] }];
  throw new Error(
    `the query ${promql} gives a ${data.resultType}; ask for an instant vector or a scalar`,
  );
}

export async function prometheusTargets(ctx: PrometheusAccess): Promise<PromTarget[]> {
  const data = await prometheusApi<{ activeTargets: PromTarget[] }>(ctx, 'targets', {
    state: 'active',
  });
  return data.activeTargets;
}

export async function prometheusRules(ctx: PrometheusAccess): Promise<PromRuleGroup[]> {
  const data = await prometheusApi<{ groups: PromRuleGroup[] }>(ctx, 'rules');
  return data.groups;
}

export async function prometheusAlerts(ctx: PrometheusAccess): Promise<PromAlert[]> {
  const data = await prometheusApi<{ alerts: PromAlert[] }>(ctx, 'alerts');
  return data.alerts;
}
