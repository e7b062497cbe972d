#!/bin/sh
//bin/true; exec node --import "$(dirname "$(dirname "$(realpath "$0")")")/lib/ts-loader/register.mjs" "$0" "$@"
// Phase 4 (tasks.md US3 T022–T025): the exporter beside both pods, the ServiceMonitor (SC-005),
// Prometheus's targets, series and rules (US3 AS-1, AS-3), the dashboard; then the alert drill
// (US3 AS-2, `high`, skippable): take the replica down, see the alert go pending or firing
// while the master keeps serving, restore it, see the alert resolve. The drill's time-outs come
// from the rule's `for` and the intervals Prometheus reports.

import {
  prometheusAlerts,
  prometheusQuery,
  prometheusRules,
  prometheusTargets,
} from '../lib/cluster/prometheus.ts';
import { redisPassword } from '../lib/cluster/secrets.ts';
import { formatDuration } from '../lib/duration.ts';
import { strictCheck } from '../lib/engine/check-step.ts';
import { allOf, type Judgement } from '../lib/engine/judgement.ts';
import { proven, recordProof } from '../lib/engine/proof.ts';
import { defineRunbook, runMain, type StepContext } from '../lib/engine/runbook.ts';
import { WaitTimeout } from '../lib/engine/wait.ts';
import { releaseNames } from '../lib/names.ts';
import {
  type AlertTiming,
  alertingRules,
  alertState,
  firingTimeoutMs,
  resolveTimeoutMs,
  scrapeIntervalMs,
} from '../lib/phases/alert-drill.ts';
import { restoreAfterDrill, restoreStep, stopForDrill } from '../lib/phases/drill-restore.ts';
import {
  declaredAlerts,
  judgeFreshness,
  judgeRulesLoaded,
  judgeScrapeInterval,
  judgeTargets,
  missingPods,
  REQUIRED_SERIES,
  seriesQuery,
} from '../lib/phases/monitoring-checks.ts';
import { monitoringLabels, selectorMatches } from '../lib/phases/preflight.ts';
import { metWord } from '../lib/phases/verdicts.ts';

/** The alert that sees a replica gone: its exporter goes with it, so only the master can tell. */
const DRILL_ALERT = 'RedisNoReplicaConnected';

const names = (ctx: StepContext) => releaseNames(ctx.cfg.redis);

/** A wait that timed out is an answer here (the alert did not fire), not an error. */
async function unlessTimedOut<T>(wait: Promise<T | undefined>): Promise<T | undefined> {
  try {
    return await wait;
  } catch (err) {
    if (err instanceof WaitTimeout) return undefined;
    throw err;
  }
}

/**
 * A pod that came back moments ago (03's and 04's drills stop and restore them) is a target of
 * Prometheus again within a scrape interval or two: T023 judges once every target is up and
 * fresh, or after this long with what Prometheus shows then.
 */
const TARGETS_SETTLE_MS = 30_000;

// biome-ignore lint/suspicious/noExplicitAny: ServiceMonitor object
type ServiceMonitor = any;

async function serviceMonitor(ctx: StepContext): Promise<ServiceMonitor | undefined> {
  return ctx.kube.get<ServiceMonitor>(
    'monitoring.coreos.com/v1',
    'ServiceMonitor',
    names(ctx).serviceMonitor,
    ctx.cfg.monitoring.namespace,
  );
}

/** The timings the drill waits by, as Prometheus reports them for the drill's alert. */
async function drillTiming(ctx: StepContext): Promise<AlertTiming> {
  const rule = alertingRules(await prometheusRules(ctx)).find((r) => r.name === DRILL_ALERT);
  if (!rule) throw new Error(`Prometheus has no alerting rule ${DRILL_ALERT}: run T025 first`);
  const targets = (await prometheusTargets(ctx)).filter(
    (t) => t.labels?.service === names(ctx).metricsService,
  );
  // Prometheus 2.x reports each target's scrapeInterval; lib/cluster/prometheus.ts does not type it.
  const scrapeMs = scrapeIntervalMs(targets as { scrapeInterval?: string }[]);
  if (scrapeMs === undefined)
    throw new Error('Prometheus reports no scrape interval for the Redis targets');
  return { forMs: rule.forMs, evaluationMs: rule.evaluationMs, scrapeMs };
}

export const runbook = defineRunbook({
  id: '04-monitoring',
  title:
    'Monitoring: exporter, ServiceMonitor, Prometheus series and rules, alert drill (US3 T022–T025)',
  description:
    'Proves US3 from Prometheus itself (through the API server’s service proxy): both pods scraped every 15 s or less (SC-005), the series an operator needs for each instance (AS-1, AS-3), every alert loaded, the dashboard labelled for Grafana. The alert drill (AS-2, high, skippable) takes the replica down and waits for its alert, with time-outs derived from the rule.',
  requires: ['02-deploy'],
  flags: {
    'skip-alert-drill': {
      type: 'boolean',
      description: 'do not run the US3 AS-2 alert drill (reported as not run)',
    },
    recheck: {
      type: 'boolean',
      description: 'prove the alert drill again although an earlier run proved it',
    },
  },
  next: (ctx) =>
    `05-migrate moves beersystem, in one planned downtime: ${ctx.commandLine({ runbook: '05-migrate' })} (--dry-run first shows every change)`,
  steps: [
    restoreStep('P01'),
    strictCheck({
      id: 'T022',
      title:
        'Check the redis_exporter beside each Redis pod (metrics.enabled, terraform/modules/redis-shared/main.tf)',
      check: async (ctx) => {
        const pods = await ctx.kube.pods(
          ctx.cfg.redis.namespace,
          `app.kubernetes.io/instance=${ctx.cfg.redis.release}`,
        );
        const problems = names(ctx).pods.flatMap((name) => {
          const pod = pods.find((p) => p.name === name);
          const metrics = pod?.containers.find((c) => c.name === 'metrics');
          if (!pod) return [`${name}: no pod`];
          if (!metrics) return [`${name}: no metrics container`];
          return metrics.ready ? [] : [`${name}: metrics container not ready`];
        });
        return problems.length === 0
          ? {
              ok: true,
              detail: `exporter container running beside ${names(ctx).pods.join(' and ')}`,
            }
          : {
              ok: false,
              detail: problems.join('; '),
              fix: 'metrics.enabled must be true in values.yaml.tftpl; kubectl describe pod -n redis',
            };
      },
    }),
    strictCheck({
      id: 'T023',
      title:
        'Check the ServiceMonitor for Prometheus Operator (terraform/modules/redis-shared/main.tf)',
      check: async (ctx) => {
        const n = names(ctx);
        const sm = await serviceMonitor(ctx);
        const interval = judgeScrapeInterval(
          sm,
          `${ctx.cfg.monitoring.namespace}/${n.serviceMonitor}`,
        );
        const wanted = monitoringLabels(ctx.cfg.redis.release).serviceMonitor.release as string;
        const labelled: Judgement =
          sm?.metadata?.labels?.release === wanted
            ? { ok: true, detail: `label release=${wanted}` }
            : {
                ok: false,
                detail: `ServiceMonitor label release=${sm?.metadata?.labels?.release ?? 'missing'} (want ${wanted})`,
                fix: 'metrics.serviceMonitor.additionalLabels.release in the values',
              };
        const settled = await unlessTimedOut(
          ctx.waitFor(
            `every ${n.metricsService} target up and scraped in the last 15 s`,
            async () => {
              const now = await prometheusTargets(ctx);
              const up = judgeTargets(now, n.metricsService, n.pods).ok;
              return up && judgeFreshness(now, n.metricsService, n.pods, Date.now()).ok
                ? now
                : undefined;
            },
            { timeoutMs: TARGETS_SETTLE_MS, intervalMs: 1000 },
          ),
        );
        const active = settled ?? (await prometheusTargets(ctx));
        const targets = judgeTargets(active, n.metricsService, n.pods);
        // Measured, not configured: each target was really scraped within the last 15 s.
        const fresh = judgeFreshness(active, n.metricsService, n.pods, Date.now());
        const j = allOf(interval, labelled, targets, fresh);
        const sc005 = interval.ok && targets.ok && fresh.ok;
        await recordProof(
          ctx,
          'SC-005',
          `${interval.detail}; ${targets.detail}; ${fresh.detail}: ${metWord(sc005)}`,
          {
            interval: sm?.spec?.endpoints?.map((e: { interval?: string }) => e.interval) ?? [],
            targetsUp: targets.ok,
            fresh: fresh.ok,
            met: sc005,
          },
        );
        return j;
      },
    }),
    strictCheck({
      id: 'T024',
      title:
        'Validate monitoring from Prometheus through the API’s service proxy (tasks.md: test-monitoring.sh)',
      check: async (ctx) => {
        const up = await prometheusQuery(ctx, `redis_up{service="${names(ctx).metricsService}"}`);
        const { namespace, prometheusService, prometheusPort } = ctx.cfg.monitoring;
        const where = `/api/v1/namespaces/${namespace}/services/${prometheusService}:${prometheusPort}/proxy/api/v1/query`;
        return up.length > 0
          ? {
              ok: true,
              detail: `Prometheus answers through ${where}: redis_up for ${up.map((r) => `${r.metric.pod}=${r.value[1]}`).join(', ')}`,
            }
          : {
              ok: false,
              detail: `Prometheus answers through ${where} but has no redis_up series yet`,
              fix: 'wait one scrape interval and re-run; check T023',
            };
      },
    }),
    strictCheck({
      id: 'T025',
      title: 'Validate US3 acceptance criteria (AS-1, AS-2, AS-3 from spec.md)',
      check: async (ctx) => {
        const n = names(ctx);
        const series: { what: string; query: string; missing: string[] }[] = [];
        for (const s of REQUIRED_SERIES) {
          const missing = missingPods(
            await prometheusQuery(ctx, seriesQuery(s, n.metricsService)),
            n.pods,
          );
          series.push({ what: s.what, query: seriesQuery(s, n.metricsService), missing });
        }
        const lacking = series.filter((s) => s.missing.length > 0);
        const as1Series = series.filter((s) =>
          ['uptime', 'memory', 'connected clients', 'commands processed'].includes(s.what),
        );
        const as3Series = series.filter((s) =>
          ['ops/s', 'latency', 'keyspace hits', 'keyspace misses'].includes(s.what),
        );
        const as1 = as1Series.every((s) => s.missing.length === 0);
        const as3 = as3Series.every((s) => s.missing.length === 0);
        const describe = (list: typeof series) =>
          list
            .map(
              (s) => `${s.what}${s.missing.length ? ` (missing for ${s.missing.join(', ')})` : ''}`,
            )
            .join(', ');
        await recordProof(
          ctx,
          'US3-AS-1',
          `series for ${n.pods.join(' and ')}: ${describe(as1Series)}: ${metWord(as1)}`,
          {
            queries: as1Series.map((s) => s.query),
            met: as1,
          },
        );
        await recordProof(
          ctx,
          'US3-AS-3',
          `series for ${n.pods.join(' and ')}: ${describe(as3Series)}: ${metWord(as3)}`,
          {
            queries: as3Series.map((s) => s.query),
            met: as3,
          },
        );
        // biome-ignore lint/suspicious/noExplicitAny: PrometheusRule object
        const rule = await ctx.kube.get<any>(
          'monitoring.coreos.com/v1',
          'PrometheusRule',
          n.rule,
          ctx.cfg.monitoring.namespace,
        );
        const loaded = alertingRules(await prometheusRules(ctx)).map((r) => r.name);
        const rules = rule
          ? judgeRulesLoaded(declaredAlerts(rule), loaded)
          : {
              ok: false,
              detail: `PrometheusRule ${n.rule} not found`,
              fix: 'run ./runbooks/02-deploy.mts',
            };
        // biome-ignore lint/suspicious/noExplicitAny: ConfigMap
        const dashboard = await ctx.kube.get<any>(
          'v1',
          'ConfigMap',
          n.dashboard,
          ctx.cfg.monitoring.namespace,
        );
        const sidecar: Judgement = selectorMatches(
          { matchLabels: { grafana_dashboard: '1' } },
          dashboard?.metadata?.labels ?? {},
        )
          ? { ok: true, detail: `dashboard ConfigMap ${n.dashboard} carries grafana_dashboard=1` }
          : {
              ok: false,
              detail: `dashboard ConfigMap ${n.dashboard} ${dashboard ? 'lacks grafana_dashboard=1' : 'not found'}`,
              fix: 'run ./runbooks/02-deploy.mts',
            };
        return allOf(
          lacking.length === 0
            ? { ok: true, detail: `all ${series.length} series present for both pods` }
            : {
                ok: false,
                detail: `series missing: ${describe(lacking)}`,
                fix: 'check the exporter logs: kubectl logs -n redis <pod> -c metrics',
              },
          rules,
          sidecar,
        );
      },
    }),
    {
      id: 'T025-AS2',
      title:
        'Validate US3 AS-2 (T025): take the replica down, its alert fires while the master serves, then resolves (drill)',
      risk: 'high',
      impact:
        'scales StatefulSet redis-shared-replicas to 0 until the alert fires: no replica protects the data meanwhile',
      skip: (ctx) =>
        ctx.flags['skip-alert-drill']
          ? '--skip-alert-drill: US3 AS-2 not proven by this run'
          : undefined,
      done: (ctx) => proven(ctx, 'US3-AS-2'),
      run: alertDrill,
      undo: (ctx) =>
        `${ctx.kubectlLine(['scale', 'statefulset', `${ctx.cfg.redis.release}-replicas`, '-n', ctx.cfg.redis.namespace, '--replicas=1'])} (or re-run this runbook: ${ctx.commandLine({ mode: 'default' })}; P01 restores it)`,
    },
  ],
});

async function alertDrill(ctx: StepContext): Promise<void> {
  const ns = ctx.cfg.redis.namespace;
  const n = names(ctx);
  if (ctx.dryRun) {
    ctx.log.info(
      `would stop ${n.replica.set}, wait for ${DRILL_ALERT}, restore it, wait for the alert to resolve`,
    );
    await ctx.kubectl`scale statefulset ${n.replica.set} -n ${ns} --replicas=0`;
    await ctx.kubectl`scale statefulset ${n.replica.set} -n ${ns} --replicas=1`;
    return;
  }
  const timing = await drillTiming(ctx);
  const fireMs = firingTimeoutMs(timing);
  ctx.log.info(
    `  ${DRILL_ALERT}: for ${formatDuration(timing.forMs)}, evaluated every ${formatDuration(timing.evaluationMs)}, scraped every ${formatDuration(timing.scrapeMs)} → waiting up to ${formatDuration(fireMs)} for it`,
  );
  const { openRedis } = await import('../lib/redis/redis-probe.ts');
  const password = await redisPassword(ctx.kube, ctx.cfg, ns);
  const target = {
    host: ctx.cfg.redis.lbIp,
    port: ctx.cfg.redis.port,
    password,
    name: 'runbook-04-drill',
  };
  const served = { ok: 0, failed: 0 };
  const masterServes = async () => {
    try {
      const c = await openRedis(target);
      try {
        await c.set(`runbook:drill:${ctx.runId}`, 'x', 'EX', 600);
        served.ok++;
      } finally {
        c.disconnect();
      }
    } catch {
      served.failed++;
    }
  };
  let stopped = false;
  let state = 'inactive';
  try {
    await stopForDrill(ctx, ns, n.replica.set);
    stopped = true;
    const fired = await unlessTimedOut(
      ctx.waitFor(
        `${DRILL_ALERT} pending or firing`,
        async () => {
          await masterServes();
          state = alertState(await prometheusAlerts(ctx), DRILL_ALERT);
          return state === 'inactive' ? undefined : state;
        },
        {
          timeoutMs: fireMs,
          intervalMs: 1000,
          progress: () =>
            `${DRILL_ALERT} ${state}; master served ${served.ok}, failed ${served.failed}`,
        },
      ),
    );
    const restored = await restoreAfterDrill(ctx);
    stopped = false;
    const podMs = ctx.cfg.timeouts.waitMs;
    const ready = await ctx.waitFor(
      `${ns}/${n.replica.pod} Ready again`,
      async () => (await ctx.kube.pods(ns, '')).find((p) => p.name === n.replica.pod && p.ready),
      { intervalMs: 1000 },
    );
    const resolved = ready
      ? await unlessTimedOut(
          ctx.waitFor(
            `${DRILL_ALERT} resolved`,
            async () =>
              alertState(await prometheusAlerts(ctx), DRILL_ALERT) === 'inactive'
                ? true
                : undefined,
            { timeoutMs: resolveTimeoutMs(timing, 0), intervalMs: 1000 },
          ),
        )
      : undefined;
    const ok = Boolean(fired) && served.failed === 0 && served.ok > 0 && Boolean(resolved);
    await recordProof(
      ctx,
      'US3-AS-2',
      `${n.replica.set} scaled to 0: ${DRILL_ALERT} ${fired ?? `did not fire within ${formatDuration(fireMs)}`}; the master served ${served.ok} writes meanwhile, ${served.failed} failed; after the restore the alert ${resolved ? 'resolved' : 'did NOT resolve'}: ${metWord(ok)}`,
      {
        alert: DRILL_ALERT,
        state: fired ?? 'inactive',
        timing,
        firingTimeoutMs: fireMs,
        masterWritesOk: served.ok,
        masterWritesFailed: served.failed,
        resolved: Boolean(resolved),
        restoredReplicas: restored?.replicas ?? null,
        podWaitMs: podMs,
        met: ok,
      },
    );
    if (!fired) {
      throw new Error(
        `${DRILL_ALERT} did not go pending or firing within ${formatDuration(fireMs)} of the replica stopping: check the PrometheusRule is loaded (T025) and the alert's expression`,
      );
    }
    if (!ok) throw new Error('US3 AS-2 not met (see the evidence line above)');
  } finally {
    if (stopped && !ctx.signal.aborted) await restoreAfterDrill(ctx);
  }
}

await runMain(runbook, import.meta.url);
