#!/bin/sh
//bin/true; exec node --import "$(dirname "$(dirname "$(realpath "$0")")")/lib/ts-loader/register.mjs" "$0" "$@"
// Phase 6, US4 (tasks.md T042–T044): after VALIDATION_WINDOW (24 h) of beersystem on
// redis-shared, proven from Prometheus and the cluster, back up and delete the old Redis. The
// window is read from the migration record on beersystem's Deployment, never from this laptop.

import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { prometheusQuery } from '../lib/cluster/prometheus.ts';
import { readNotes } from '../lib/engine/notes.ts';
import { defineRunbook, runMain, type StepContext } from '../lib/engine/runbook.ts';
import { migrationRecordOf } from '../lib/names.ts';
import {
  beersystemHealth,
  beersystemPods,
  beersystemState,
  oldRedisTarget,
  sharedRedisTarget,
} from '../lib/phases/beersystem.ts';
import { decommissionWindow } from '../lib/phases/decommission.ts';
import { backupOf, redisErrorLines } from '../lib/phases/migration.ts';
import { DOWNTIME_END_NOTE, MIGRATE_RUNBOOK } from '../lib/phases/migration-notes.ts';
import { listClients } from '../lib/redis/redis-probe.ts';

const old = (ctx: StepContext) => ctx.cfg.oldRedis;

async function migratedAt(ctx: StepContext): Promise<{ at: string; run: string } | undefined> {
  const s = await beersystemState(ctx);
  const record = migrationRecordOf(s.deployment.annotations);
  return record && { at: record.at, run: record.runId ?? '?' };
}

/**
 * Seconds of history to judge: from the migration to now. The sandbox's `age` moves only the
 * record, not Prometheus's clock, so the window is also bounded by when 05 really finished.
 */
async function windowSeconds(ctx: StepContext): Promise<number> {
  const record = await migratedAt(ctx);
  const ends = await readNotes(ctx.cfg.auditLog, {
    runbook: MIGRATE_RUNBOOK,
    key: DOWNTIME_END_NOTE,
  });
  const from = Math.max(
    record ? Date.parse(record.at) : 0,
    ends.length ? Date.parse(String(ends.at(-1)!.value)) : 0,
  );
  return Math.max(1, Math.floor((Date.now() - from) / 1000));
}

async function oldDeploymentAndService(ctx: StepContext) {
  const { namespace, deployment, service } = old(ctx);
  const kube = ctx.kube;
  return {
    deployment: await kube.get('apps/v1', 'Deployment', deployment, namespace),
    service: await kube.get('v1', 'Service', service, namespace),
  };
}

async function query(ctx: StepContext, promql: string): Promise<number | undefined> {
  const result = await prometheusQuery(ctx, promql);
  const v = result[0]?.value[1];
  return v === undefined ? undefined : Number(v);
}

export const runbook = defineRunbook({
  id: '06-decommission',
  title: 'Remove the old beersystem Redis after the validation window',
  description:
    'Opens VALIDATION_WINDOW (24 h) after the migration record on beersystem. Proves the window from Prometheus and the cluster (no restarts, no Redis errors, redis-shared up, no alert), checks that no application is left on the old Redis, backs up its Deployment and Service, then deletes them after you type its name. Its PVC and Secret go only with --delete-pvc / --delete-secret.',
  requires: ['05-migrate'],
  flags: {
    'delete-pvc': {
      type: 'string',
      description: 'also delete this PVC of the old Redis (its data)',
    },
    'delete-secret': {
      type: 'string',
      description: "also delete this Secret (the old Redis's password)",
    },
  },
  gates: [
    {
      id: 'validation-window',
      describe: 'VALIDATION_WINDOW (24 h) has passed since the migration record on beersystem',
      check: async (ctx) => {
        const record = await migratedAt(ctx);
        return decommissionWindow(record?.at, ctx.cfg.validationWindowMs, Date.now());
      },
    },
  ],
  completed: async (ctx) => {
    const { deployment, service } = await oldDeploymentAndService(ctx);
    if (deployment || service) return undefined;
    const health = await beersystemHealth(ctx);
    return health.ok
      ? `the old Redis ${old(ctx).namespace}/${old(ctx).deployment} is gone and beersystem is healthy on ${health.redis}: nothing to do`
      : undefined;
  },
  next: (ctx) =>
    `the old Redis is gone; what remains is 07-polish (benchmark, address table, the report): ${ctx.commandLine({ runbook: '07-polish' })}`,
  steps: [
    {
      id: 'T042',
      title: 'Monitor beersystem logs and metrics for 24+ hours',
      risk: 'read',
      run: async (ctx) => {
        const seconds = await windowSeconds(ctx);
        const range = `${seconds}s`;
        const s = await beersystemState(ctx);
        const pods = await beersystemPods(ctx, s.deployment.selector);
        const restarts = pods.reduce((n, p) => n + p.restarts, 0);
        const record = (await migratedAt(ctx))!;
        const errors: string[] = [];
        for (const pod of pods) {
          const log = await ctx.kube.podLogs(ctx.cfg.beersystem.namespace, pod.name, {});
          errors.push(...redisErrorLines(log).map((l) => `${pod.name}: ${l}`));
        }
        const ns = ctx.cfg.redis.namespace;
        const upMin = await query(ctx, `min(min_over_time(redis_up{namespace="${ns}"}[${range}]))`);
        const fired = (
          await prometheusQuery(
            ctx,
            `max_over_time(ALERTS{alertstate="firing",namespace="${ns}"}[${range}])`,
          )
        ).map((a) => `${a.metric.alertname ?? 'alert'}${a.metric.pod ? ` (${a.metric.pod})` : ''}`);
        const alerts = fired.length;
        const clients = await listClients(await sharedRedisTarget(ctx, 'runbook-06'));
        const connected = (clients.value ?? []).some((c) => c.name === 'beersystem');
        const problems = [
          ...(restarts ? [`beersystem restarted ${restarts} time(s) since the migration`] : []),
          ...(errors.length
            ? [`Redis errors in beersystem's log:\n${errors.slice(0, 5).join('\n')}`]
            : []),
          ...(upMin !== 1
            ? [`redis-shared was not up throughout (min redis_up ${upMin ?? 'no data'})`]
            : []),
          ...(alerts
            ? [`${alerts} redis-shared alert(s) fired in the window: ${fired.join(', ')}`]
            : []),
          ...(connected ? [] : ['beersystem has no connection to redis-shared now']),
        ];
        const line = `since ${record.at} (run ${record.run}): ${pods.length} pod(s), ${restarts} restarts, no Redis error logged, redis_up min ${upMin} over ${range} of data, ${alerts} alerts fired, beersystem connected`;
        if (problems.length) {
          throw new Error(
            `the validation window is not clean: ${problems.join('; ')}. Investigate (checklists/06-decommission.md), and keep the old Redis until it is`,
          );
        }
        ctx.log.info(line);
        ctx.state.window = line;
      },
    },
    {
      id: 'T043',
      title: 'Validate US4 acceptance criteria (AS-1 through AS-6 from spec.md)',
      risk: 'read',
      run: async (ctx) => {
        const notes = await readNotes(ctx.cfg.auditLog);
        const missing: string[] = [];
        for (const as of ['US4-AS-1', 'US4-AS-2', 'US4-AS-3', 'US4-AS-4', 'US4-AS-6']) {
          const n = notes.filter((x) => x.key === `evidence.${as}`).at(-1);
          const v = n?.value as { line?: string; met?: boolean } | undefined;
          if (v?.met !== true) missing.push(as);
          else ctx.log.info(`${as}: ${v!.line} (${n!.runbook} ${n!.step}, ${n!.ts})`);
        }
        if (missing.length) {
          throw new Error(
            `no passing evidence for ${missing.join(', ')}: run ${ctx.commandLine({ runbook: '05-migrate' })} again (its checks record them) before deleting anything`,
          );
        }
        ctx.log.info('US4-AS-5 follows from T044 below');
      },
    },
    {
      id: 'P01',
      title: 'The old Redis has no application client left',
      risk: 'read',
      run: async (ctx) => {
        const notedEnv = await readNotes(ctx.cfg.auditLog, {
          runbook: '05-migrate',
          key: 'beersystem.redis-env',
        });
        const target = await oldRedisTarget(
          ctx,
          (notedEnv.at(-1)?.value ?? []) as never,
          'runbook-06',
        );
        if (!target) {
          ctx.log.info('the old Redis has no running pod: nothing can be connected to it');
          return;
        }
        const clients = await listClients(target);
        if (!clients.ok) {
          throw new Error(
            `cannot list the old Redis's clients (${clients.error}): check from inside the cluster (kubectl exec into it: redis-cli CLIENT LIST) before deleting it`,
          );
        }
        const others = clients.value ?? [];
        if (others.length) {
          throw new Error(
            `the old Redis still has ${others.length} client(s): ${others.map((c) => `${c.name || '(unnamed)'} from ${c.addr}`).join(', ')}. Move them to redis-shared first; nothing was deleted`,
          );
        }
        ctx.log.info('CLIENT LIST on the old Redis: only our own connection');
      },
    },
    {
      id: 'P02',
      title: 'Back up the old Redis Deployment and Service',
      risk: 'read',
      skip: async (ctx) => {
        const { deployment, service } = await oldDeploymentAndService(ctx);
        return !deployment && !service ? 'the old Redis is already deleted' : undefined;
      },
      run: async (ctx) => {
        const { deployment, service } = await oldDeploymentAndService(ctx);
        const path = join(ctx.cfg.backupsDir, `old-redis-${ctx.runId}.json`);
        if (ctx.dryRun) {
          ctx.log.info(`would write the backup to ${path} (mode 0600)`);
          return;
        }
        const items = [deployment, service].filter(Boolean).map((o) => backupOf(o!));
        await mkdir(ctx.cfg.backupsDir, { recursive: true, mode: 0o700 });
        await writeFile(
          path,
          `${JSON.stringify({ apiVersion: 'v1', kind: 'List', items }, null, 2)}\n`,
          {
            mode: 0o600,
          },
        );
        await chmod(path, 0o600);
        await ctx.note('backup.path', path);
        ctx.log.info(
          `backup written: ${path} (0600, no secret values); restore with ${ctx.kubectlLine(['apply', '--server-side', '-f', path])}`,
        );
      },
    },
    {
      id: 'T044',
      title: 'Decommission old beersystem Redis deployment',
      risk: 'irreversible',
      impact:
        'the old Redis Deployment and Service are deleted; --rollback of 05 is no longer possible',
      // namespace/name: a bare "redis" could be any Redis
      confirmName: (ctx) => `${ctx.cfg.oldRedis.namespace}/${ctx.cfg.oldRedis.deployment}`,
      done: async (ctx) => {
        const { deployment, service } = await oldDeploymentAndService(ctx);
        return !deployment && !service;
      },
      run: async (ctx) => {
        const { namespace, deployment, service } = old(ctx);
        const selector = (await ctx.kube.deployment(namespace, deployment))?.selector;
        await ctx.kubectl`delete deployment ${deployment} -n ${namespace} --ignore-not-found`;
        await ctx.kubectl`delete service ${service} -n ${namespace} --ignore-not-found`;
        const pvc = ctx.flags['delete-pvc'];
        if (typeof pvc === 'string' && pvc)
          await ctx.kubectl`delete pvc ${pvc} -n ${namespace} --ignore-not-found`;
        const secret = ctx.flags['delete-secret'];
        if (typeof secret === 'string' && secret) {
          await ctx.kubectl`delete secret ${secret} -n ${namespace} --ignore-not-found`;
        }
        if (selector) {
          await ctx.waitFor(
            'the old Redis pods gone',
            async () => (await ctx.kube.pods(namespace, selector)).length === 0,
            { intervalMs: 250 },
          );
        }
      },
      undo: async (ctx) => {
        const backup = await ctx.recall<string>('backup.path');
        return `recreate from the backup P02 wrote: ${ctx.kubectlLine(['apply', '--server-side', '-f', backup ?? `${ctx.cfg.backupsDir}/old-redis-<run>.json`])}`;
      },
    },
    {
      id: 'P03',
      title: 'beersystem healthy after the old Redis is gone',
      risk: 'read',
      run: async (ctx) => {
        const health = await ctx.waitFor(
          'beersystem healthy',
          async () => {
            const h = await beersystemHealth(ctx);
            return h.ok ? h : false;
          },
          { intervalMs: 250, timeoutMs: 30_000 },
        );
        if (!health) return;
        const { namespace, deployment } = old(ctx);
        await ctx.evidence(
          'SC-010',
          `old Redis ${namespace}/${deployment} and its Service deleted; beersystem healthy on ${health.redis}`,
          { met: true },
        );
        await ctx.evidence(
          'US4-AS-5',
          `after the validation window the old Redis was deleted without errors; beersystem continues on ${health.redis}`,
          { met: true },
        );
      },
    },
  ],
});

await runMain(runbook, import.meta.url);
