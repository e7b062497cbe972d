#!/bin/sh
//bin/true; exec node --import "$(dirname "$(dirname "$(realpath "$0")")")/lib/ts-loader/register.mjs" "$0" "$@"
// Phase 6, US4 (tasks.md T031–T041): move beersystem from its private Redis to redis-shared in
// one planned downtime. Everything that can be prepared is prepared first (health of both
// sides, backup, noted replica count and environment, the saved plan, who else owns the env);
// then one confirmation before T035 covers T035–P05, so no question waits inside the downtime.
// --rollback puts beersystem back on its old Redis; a re-run after success changes nothing.

import { existsSync, rmSync } from 'node:fs';
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { EnvVar } from '../lib/cluster/kube.ts';
import { prometheusAlerts, prometheusQuery } from '../lib/cluster/prometheus.ts';
import { readReplicatedSecret } from '../lib/cluster/secrets.ts';
import {
  pendingChanges,
  type TofuPlan,
  TofuPlanChangedError,
  tofuApply,
  tofuPlan,
} from '../lib/cluster/tofu.ts';
import { describeInFlight, stateLockInfo, tofuProcessesIn } from '../lib/cluster/tofu-in-flight.ts';
import { tofuVars } from '../lib/cluster/tofu-vars.ts';
import { formatDuration } from '../lib/duration.ts';
import { readNotes } from '../lib/engine/notes.ts';
import { planDirOf, plansRoot, removePlans } from '../lib/engine/plans.ts';
import {
  defineRunbook,
  runMain,
  type StepContext,
  type StepDefinition,
} from '../lib/engine/runbook.ts';
import {
  MIGRATED_BY_RUN_ANNOTATION,
  MIGRATION_ANNOTATION,
  migrationRecordOf,
} from '../lib/names.ts';
import {
  beersystemGet,
  beersystemHealth,
  beersystemPods,
  beersystemState,
  expectedSharedRedis,
  functionalCheck,
  oldRedisTarget,
  sharedRedisTarget,
} from '../lib/phases/beersystem.ts';
import { HealthProber } from '../lib/phases/health-prober.ts';
import {
  backupOf,
  describeRedisEnv,
  downtimeUntilReady,
  expectedDowntimeLine,
  formatDowntime,
  type RedisEnv,
  readyTimeOf,
  redisEnvOf,
  redisErrorLines,
  restoreEnvPatch,
} from '../lib/phases/migration.ts';
import {
  DOWNTIME_END_NOTE,
  DOWNTIME_MS_NOTE,
  DOWNTIME_START_NOTE,
  USER_HEALTH_NOTE,
} from '../lib/phases/migration-notes.ts';
import { copyKeys } from '../lib/redis/redis-copy.ts';
import { listClients } from '../lib/redis/redis-probe.ts';

const MIGRATION_MODULE = 'module.beersystem_migration';

/** How the downtime lines name where the Ready time comes from (Kubernetes keeps it to the second). */
const READY_RECORD = 'as the cluster recorded it, to the second';

const notes = {
  replicas: 'beersystem.replicas',
  env: 'beersystem.redis-env',
  selector: 'beersystem.selector',
  backup: 'backup.path',
  planFile: 'plan.file',
  planHash: 'plan.sha256',
  planSummary: 'plan.summary',
  downtimeStart: DOWNTIME_START_NOTE,
  downtimeEnd: DOWNTIME_END_NOTE,
  downtimeMs: DOWNTIME_MS_NOTE,
  rollbackDowntimeStart: 'rollback.downtime.start',
  rollbackDowntimeMs: 'rollback.downtime.ms',
  userHealth: USER_HEALTH_NOTE,
  rollbackUserHealth: 'rollback.beersystem.health',
};

const bs = (ctx: StepContext) => ctx.cfg.beersystem;

async function notedReplicas(ctx: StepContext): Promise<number> {
  const n = await ctx.recall<number>(notes.replicas);
  if (typeof n !== 'number' || n < 1) {
    throw new Error(
      `no replica count noted for beersystem: run ${ctx.commandLine({ mode: 'default', only: ['P01'] })} first (it notes the count while beersystem runs)`,
    );
  }
  return n;
}

async function notedEnv(ctx: StepContext): Promise<RedisEnv> {
  const env = await ctx.recall<RedisEnv>(notes.env);
  if (!env?.length) {
    throw new Error(
      `beersystem's old Redis environment was never noted (P01): restore it from the backup under ${ctx.cfg.backupsDir} with kubectl set env`,
    );
  }
  return env;
}

/** The rollback of this run's cluster and log, as a line to paste. */
const rollbackLine = (ctx: StepContext) => ctx.commandLine({ mode: 'rollback', dryRun: false });

/** After T035 a failure says where beersystem stands and how to go back. */
/** The window's steps as the live line counts them: T035 to the end, or the whole rollback. */
const windowSteps = (rollingBack: boolean): string[] =>
  rollingBack
    ? rollback.map((s) => s.id)
    : migrate.slice(migrate.findIndex((s) => s.id === 'T035')).map((s) => s.id);

/**
 * From T035 until beersystem is Ready on redis-shared (and in a rollback from R01 until it is
 * Ready on its old Redis): its health endpoint asked every 250 ms by a prober of its own (what its
 * users see), and on a terminal one live line with the downtime, the step and that health. A
 * resume starts it again at the first window step it runs.
 */
async function watchWindow(ctx: StepContext): Promise<void> {
  if (ctx.dryRun || ctx.state.windowProber) return;
  const rollingBack = ctx.mode === 'rollback';
  const steps = windowSteps(rollingBack);
  const prober = new HealthProber(
    async () => {
      const res = await beersystemGet(ctx, '/healthz');
      const redis = typeof res.body.redis === 'string' ? res.body.redis : undefined;
      const message = typeof res.body.message === 'string' ? res.body.message : undefined;
      return res.status === 200
        ? { ok: true, redis, error: undefined }
        : { ok: false, redis, error: `HTTP ${res.status}${message ? `: ${message}` : ''}` };
    },
    { onChange: (line) => ctx.log.info(line) },
  );
  ctx.state.windowProber = prober;
  const started = rollingBack
    ? (await rollbackDowntimeStart(ctx))?.at
    : await ctx.recall<string>(notes.downtimeStart);
  const since = started ? Date.parse(started) : undefined;
  ctx.setStatus((step) => {
    const k = step ? steps.indexOf(step) + 1 : 0;
    const where = k > 0 ? `step ${k} of ${steps.length} (${step}) · ` : '';
    const down = since !== undefined ? `downtime ${formatDuration(Date.now() - since)} · ` : '';
    return `${down}${where}${prober.summary()}`;
  });
  prober.start();
}

/** Ends the prober (beersystem Ready, or the run ending): what it saw is noted for the report. */
async function endWindowWatch(ctx: StepContext): Promise<void> {
  const prober = ctx.state.windowProber as HealthProber | undefined;
  if (!prober) return;
  ctx.state.windowProber = undefined;
  ctx.setStatus(undefined);
  const seen = await prober.stop();
  await ctx.note(ctx.mode === 'rollback' ? notes.rollbackUserHealth : notes.userHealth, seen);
}

async function inDowntime<T>(ctx: StepContext, body: () => Promise<T>): Promise<T> {
  await watchWindow(ctx);
  try {
    return await body();
  } catch (err) {
    let where: string;
    try {
      // After Ctrl-C the run's own reads are aborted with it: this one is read afresh, bounded.
      const kube = ctx.signal.aborted
        ? (await import('../lib/cluster/kube.ts')).createKube(ctx.cfg, {
            signal: AbortSignal.timeout(10_000),
          })
        : ctx.kube;
      const s = await beersystemState(ctx, kube);
      where = `${s.deployment.readyReplicas}/${s.deployment.replicas} replicas Ready, ${s.onShared ? 'configured for redis-shared' : 'still configured for its old Redis'}`;
    } catch (readErr) {
      where = `its state could not be read (${(readErr as Error).message.split('\n')[0]})`;
    }
    ctx.log.warn(
      `beersystem is DOWN or degraded: ${where}. To put it back on its old Redis: ${rollbackLine(ctx)}`,
    );
    throw err;
  }
}

/**
 * Where beersystem stands, for the last screen of a run that did not complete: up or DOWN,
 * since when (T035's note), its Ready count against the noted one, and which Redis it is
 * configured for.
 */
async function beersystemStanding(ctx: StepContext): Promise<string> {
  const s = await beersystemState(ctx);
  const noted = await ctx.recall<number>(notes.replicas);
  const wanted = Math.max(1, s.deployment.replicas, typeof noted === 'number' ? noted : 0);
  const redis = s.onShared ? 'configured for redis-shared' : 'configured for its old Redis';
  const ready = `${s.deployment.readyReplicas}/${wanted} Ready`;
  if (s.deployment.replicas > 0 && s.deployment.readyReplicas >= wanted)
    return `beersystem is up (${ready}, ${redis})`;
  const start = await ctx.recall<string>(notes.downtimeStart);
  const end = await ctx.recall<string>(notes.downtimeEnd);
  // a downtime that ended (an earlier migration's) says nothing about this one
  const since =
    start && !(end && end > start)
      ? ` since ${start.slice(11, 19)} UTC (${formatDuration(Date.now() - Date.parse(start))} ago)`
      : '';
  return `beersystem is DOWN${since} (${ready}, ${redis})`;
}

/** After the migration: its downtime, and when 06's gate opens. */
async function migrationNext(ctx: StepContext): Promise<string | undefined> {
  const s = await beersystemState(ctx);
  const at = migrationRecordOf(s.deployment.annotations)?.at;
  if (!at || !s.onShared) return undefined;
  const ms = await ctx.recall<number>(notes.downtimeMs);
  const downtime = typeof ms === 'number' ? `downtime ${formatDuration(ms)}; ` : '';
  const opens = Date.parse(at) + ctx.cfg.validationWindowMs;
  const left = opens - Date.now();
  const when =
    left > 0 ? `opens at ${new Date(opens).toISOString()} (in ${formatDuration(left)})` : 'is open';
  return `beersystem runs on redis-shared; ${downtime}06-decommission's ${formatDuration(ctx.cfg.validationWindowMs)} gate ${when}: then ${ctx.commandLine({ runbook: '06-decommission' })}`;
}

/** A new saved plan of the migration; only the migration module may change. */
async function freshPlan(ctx: StepContext): Promise<TofuPlan> {
  // The saved plan holds the state snapshot, and with it the password: the runbooks' private
  // plan directory, kept while this run's attempt is open (a resume applies it), else removed.
  const dir = planDirOf(ctx.cfg, (await openAttemptId(ctx)) ?? ctx.runId);
  const plan = await tofuPlan(ctx, {
    out: join(dir, `beersystem-migration-${Date.now()}.tfplan`),
    vars: tofuVars(ctx.cfg, { migration: true }),
  });
  const outside = pendingChanges(plan).filter((c) => !c.address.startsWith(MIGRATION_MODULE));
  if (outside.length) {
    throw new Error(
      `the plan also changes ${outside.map((c) => `${c.action} ${c.address}`).join(', ')}: only ${MIGRATION_MODULE} may change in this window. Reconcile with ${ctx.commandLine({ runbook: '02-deploy' })} first`,
    );
  }
  ctx.state.plan = plan;
  await ctx.note(notes.planFile, plan.file);
  await ctx.note(notes.planHash, plan.sha256);
  await ctx.note(notes.planSummary, plan.summary);
  return plan;
}

/** The open attempt's id (a rollback's scope may be a completed one: not open). */
async function openAttemptId(ctx: StepContext): Promise<string | undefined> {
  const attempt = await ctx.attempt.current();
  return attempt && !attempt.closedAt ? attempt.id : undefined;
}

/** The plan this attempt confirmed (noted by P03 of its opening run), if its file is still here. */
async function confirmedPlan(ctx: StepContext): Promise<TofuPlan | undefined> {
  const file = await ctx.recall<string>(notes.planFile);
  const sha256 = await ctx.recall<string>(notes.planHash);
  if (!file || !sha256 || !existsSync(file)) return undefined;
  const summary = (await ctx.recall<string>(notes.planSummary)) ?? '';
  return { file, sha256, changes: [], summary };
}

/** The plan P03 made, in this process or in the attempt being resumed; re-planned, said so, if it is gone. */
async function migrationPlan(ctx: StepContext): Promise<TofuPlan> {
  if (ctx.state.plan) return ctx.state.plan as TofuPlan;
  const plan = await confirmedPlan(ctx);
  if (plan) {
    ctx.state.plan = plan;
    return plan;
  }
  ctx.log.warn('the confirmed plan of this attempt is gone: planning again');
  const again = await freshPlan(ctx);
  ctx.log.warn(
    `the new plan ${again.file} (sha256 ${again.sha256.slice(0, 12)}…): ${again.summary}`,
  );
  return again;
}

/**
 * Saved plans nobody can still apply: those of an attempt that ended and of runs that died before
 * opening one. The open attempt's plan stays, for its resume.
 */
async function removeEndedPlans(ctx: StepContext): Promise<void> {
  if (ctx.dryRun) return;
  const open = await openAttemptId(ctx);
  const removed = removePlans(ctx.cfg, new Set(open ? [open] : []));
  if (removed.length) {
    ctx.log.info(
      `removed the saved plans of ${removed.length} ended run(s) or attempt(s): ${removed.join(', ')}`,
    );
  }
}

/**
 * When this attempt's downtime ended: its note, else the time the cluster recorded for
 * beersystem's pods becoming Ready (then noted, with the downtime, for the report and 06).
 * A resume that finds T040 done takes it from the cluster, never from an earlier attempt.
 */
async function downtimeEnd(
  ctx: StepContext,
  replicas: number,
): Promise<{ at: string } | { at: undefined; why: string }> {
  const noted = await ctx.recall<string>(notes.downtimeEnd);
  if (noted) return { at: noted };
  const s = await beersystemState(ctx);
  const ready = readyTimeOf(await beersystemPods(ctx, s.deployment.selector), replicas);
  if (!ready.at) return ready;
  await ctx.note(notes.downtimeEnd, ready.at);
  const started = await ctx.recall<string>(notes.downtimeStart);
  if (started) {
    const downtime = downtimeUntilReady(started, ready.at);
    await ctx.note(notes.downtimeMs, downtime.ms);
    ctx.log.info(
      `downtime ${formatDowntime(downtime)} (T035 ${started} → Ready ${ready.at}, ${READY_RECORD})`,
    );
  } else {
    ctx.log.info(
      `beersystem Ready since ${ready.at} (the cluster's record); the downtime is unknown: this attempt noted no start at T035`,
    );
  }
  return ready;
}

/**
 * Waits, with progress, while an OpenTofu operation of an earlier run (killed, its apply
 * finishing gracefully) still runs in the working directory: a second apply would fail on the
 * state lock, or race it. Past WAIT_TIMEOUT, says what to do.
 */
async function waitForTofuIdle(ctx: StepContext): Promise<void> {
  const { dir, bin } = ctx.cfg.tofu;
  const first = tofuProcessesIn(dir, bin);
  if (!first.length) return;
  const what = describeInFlight(first, stateLockInfo(dir));
  ctx.log.warn(`an OpenTofu operation of an earlier run is still running: ${what}`);
  try {
    await ctx.waitFor(
      'the OpenTofu operation in flight to finish',
      () => tofuProcessesIn(dir, bin).length === 0,
      {
        intervalMs: 500,
        progress: () =>
          tofuProcessesIn(dir, bin)
            .map((p) => `pid ${p.pid}`)
            .join(', '),
      },
    );
  } catch (err) {
    const left = tofuProcessesIn(dir, bin);
    if (!left.length) throw err;
    const lock = stateLockInfo(dir);
    throw new Error(
      `${describeInFlight(left, lock)} still runs: nothing was applied. Wait for it (ps -o pid,etime,cmd -p ${left.map((p) => p.pid).join(',')}) and resume; if it hangs, stop it (kill ${left.map((p) => p.pid).join(' ')})${lock?.ID ? `, and if tofu then reports "Error acquiring the state lock", release it with tofu force-unlock ${lock.ID} in ${dir}` : ''}, then resume`,
    );
  }
}

async function podsGone(ctx: StepContext): Promise<boolean> {
  const selector = (await ctx.recall<string>(notes.selector)) ?? `app=${bs(ctx).deployment}`;
  return (await beersystemPods(ctx, selector)).length === 0;
}

async function readyOn(
  ctx: StepContext,
  replicas: number,
  shared: boolean,
  seen?: (s: Awaited<ReturnType<typeof beersystemState>>) => void,
) {
  const s = await beersystemState(ctx);
  seen?.(s);
  const d = s.deployment;
  if (s.onShared !== shared || d.replicas !== replicas) return false;
  if (d.readyReplicas < replicas || d.updatedReplicas < replicas) return false;
  const health = await beersystemHealth(ctx);
  return health.ok ? health : false;
}

/**
 * Since when the rollback keeps beersystem down: R01's scale-down, or, when beersystem was already
 * stopped (a failed migration's window), the open attempt's T035.
 */
async function rollbackDowntimeStart(
  ctx: StepContext,
): Promise<{ at: string; from: 'R01' | 'T035' } | undefined> {
  const r01 = await ctx.recall<string>(notes.rollbackDowntimeStart);
  if (r01) return { at: r01, from: 'R01' };
  const attempt = await ctx.attempt.current();
  const t035 =
    attempt && !attempt.closedAt ? await ctx.recall<string>(notes.downtimeStart) : undefined;
  return t035 ? { at: t035, from: 'T035' } : undefined;
}

/** beersystem stopped by this migration (T035 ran): a resume, not an unhealthy app. */
async function stoppedForMigration(ctx: StepContext): Promise<string | undefined> {
  const s = await beersystemState(ctx);
  if (s.onShared || s.deployment.replicas !== 0) return undefined;
  const since = await ctx.recall<string>(notes.downtimeStart);
  return since ? `beersystem is stopped for the migration since ${since}: resuming` : undefined;
}

/** T041: login, session and cache through beersystem itself (SC-009, US4-AS-4). */
async function proveFunctions(ctx: StepContext): Promise<void> {
  const expected = expectedSharedRedis(ctx);
  const fn = await functionalCheck(ctx, expected.split(':')[0]!);
  if (!fn.ok) throw new Error(`beersystem on redis-shared: ${fn.line}`);
  await ctx.evidence('SC-009', `beersystem works on redis-shared: ${fn.line}`, { met: true });
  await ctx.evidence('US4-AS-4', 'login, session and cache work (cache started as it was left)', {
    met: true,
  });
}

/**
 * T041: no Redis error in beersystem's logs since T040, its clients on redis-shared and none
 * left on the old Redis (US4-AS-3); resolves to how many beersystem connections redis-shared has.
 */
async function proveConnections(ctx: StepContext): Promise<number> {
  const s = await beersystemState(ctx);
  const pods = await beersystemPods(ctx, s.deployment.selector);
  const since = await ctx.recall<string>(notes.downtimeEnd);
  const errors: string[] = [];
  for (const pod of pods) {
    const log = await ctx.kube.podLogs(
      bs(ctx).namespace,
      pod.name,
      since ? { sinceTime: since } : {},
    );
    errors.push(...redisErrorLines(log).map((l) => `${pod.name}: ${l}`));
  }
  if (errors.length)
    throw new Error(`beersystem logged Redis errors since T040:\n${errors.slice(0, 5).join('\n')}`);

  const shared = await listClients(await sharedRedisTarget(ctx, 'runbook-05'));
  const onShared = (shared.value ?? []).filter((c) => c.name === 'beersystem');
  if (!onShared.length)
    throw new Error(
      `CLIENT LIST on redis-shared shows no client named beersystem:\n${shared.evidence}`,
    );
  const old = await oldRedisTarget(ctx, await notedEnv(ctx), 'runbook-05');
  const oldClients = old ? await listClients(old) : undefined;
  const stillOld = (oldClients?.value ?? []).filter((c) => c.name === 'beersystem');
  if (stillOld.length)
    throw new Error(
      `beersystem is still connected to the old Redis: ${stillOld.map((c) => c.addr).join(', ')}`,
    );
  const oldLine = oldClients?.ok
    ? 'no beersystem client on the old Redis'
    : 'the old Redis was not reachable from here to list its clients';
  await ctx.evidence(
    'US4-AS-3',
    `${pods.length} beersystem pod(s) Ready, no Redis error logged since T040; CLIENT LIST on redis-shared shows ${onShared.length} beersystem connection(s); ${oldLine}`,
    { met: true },
  );
  return onShared.length;
}

/** T041: Prometheus sees redis-shared's clients, beersystem's among them (US4-AS-6). */
async function proveMonitored(ctx: StepContext, beersystemConnections: number): Promise<void> {
  const metric = await prometheusQuery(
    ctx,
    `sum(redis_connected_clients{namespace="${ctx.cfg.redis.namespace}"})`,
  ).catch(() => []);
  const connected = Number(metric[0]?.value[1] ?? Number.NaN);
  await ctx.evidence(
    'US4-AS-6',
    Number.isFinite(connected)
      ? `Prometheus sees redis-shared with ${connected} connected client(s), beersystem among them`
      : 'Prometheus had no redis_connected_clients series for redis-shared',
    { met: Number.isFinite(connected) && connected >= beersystemConnections },
  );
}

const migrate: StepDefinition[] = [
  {
    id: 'P01',
    title: 'beersystem is healthy on its current Redis; note its replicas and Redis environment',
    risk: 'read',
    run: async (ctx) => {
      const s = await beersystemState(ctx);
      const d = s.deployment;
      const resuming = await stoppedForMigration(ctx);
      if (resuming) {
        await notedReplicas(ctx);
        ctx.log.info(resuming);
        return;
      }
      if (s.onShared) {
        ctx.log.info(`beersystem already uses redis-shared (${describeRedisEnv(s.env)})`);
        return;
      }
      if (d.replicas < 1 || d.readyReplicas < d.replicas) {
        throw new Error(
          `beersystem has ${d.readyReplicas}/${d.replicas} replicas Ready: bring it back to health on its own Redis before migrating (kubectl rollout status deployment/${d.name} -n ${d.namespace})`,
        );
      }
      const health = await beersystemHealth(ctx);
      if (!health.ok) {
        throw new Error(
          `beersystem's /healthz answered ${health.status}: fix it before the migration`,
        );
      }
      await ctx.note(notes.replicas, d.replicas);
      await ctx.note(notes.env, redisEnvOf(s.env));
      await ctx.note(notes.selector, d.selector);
      ctx.log.info(
        `beersystem: ${d.readyReplicas}/${d.replicas} Ready, healthy on ${health.redis}; ${describeRedisEnv(s.env)}`,
      );
    },
  },
  {
    id: 'P02',
    title: 'redis-shared is healthy and its password Secret is replicated into beersystem',
    risk: 'read',
    run: async (ctx) => {
      const { namespace, release } = ctx.cfg.redis;
      const kube = ctx.kube;
      for (const sts of [`${release}-master`, `${release}-replicas`]) {
        const s = await kube.statefulSet(namespace, sts);
        if (!s || s.readyReplicas < 1) {
          throw new Error(
            `StatefulSet ${namespace}/${sts} is not Ready: run ${ctx.commandLine({ runbook: '02-deploy' })}`,
          );
        }
      }
      const secret = await readReplicatedSecret(kube, ctx.cfg);
      if (!secret.matches) throw new Error(secret.summary);
      const clients = await listClients(await sharedRedisTarget(ctx, 'runbook-05'));
      if (!clients.ok) throw new Error(`redis-shared does not answer: ${clients.error}`);
      // A migration onto a Redis that is alerting starts from a broken state, and 06's 24 h window
      // (no alert fired since the migration) would count what an earlier drill left firing: the
      // alerts of 03's and 04's drills resolve first.
      let firing: string[] = [];
      await ctx.waitFor(
        'no redis-shared alert firing',
        async () => {
          firing = (await prometheusAlerts(ctx))
            .filter((a) => a.state === 'firing' && a.labels.namespace === namespace)
            .map((a) => a.labels.alertname ?? '?');
          return firing.length === 0 ? true : undefined;
        },
        {
          intervalMs: 1000,
          progress: () => `firing: ${firing.join(', ')} (checklists/alerts.md answers each)`,
        },
      );
      ctx.log.info(
        `redis-shared: master and replica Ready; ${secret.summary}; answers through ${ctx.cfg.redis.lbIp}`,
      );
      await ctx.evidence(
        'US4-AS-1',
        `redis-shared accepts connections and passes health checks (master and replica Ready, AUTH through ${ctx.cfg.redis.lbIp})`,
        { met: true },
      );
    },
  },
  {
    id: 'T031',
    title: 'beersystem-migration module present (terraform/modules/beersystem-migration/)',
    risk: 'read',
    run: async (ctx) => {
      const main = join(ctx.cfg.tofu.dir, '..', '..', 'modules', 'beersystem-migration', 'main.tf');
      if (!existsSync(main)) throw new Error(`${main} is missing: restore it from git`);
      ctx.log.info(`${main} present`);
    },
  },
  {
    id: 'T032',
    title: 'Migration validation: the functional check passes on the old Redis now',
    risk: 'read',
    skip: async (ctx) =>
      (await beersystemState(ctx)).onShared
        ? 'beersystem already uses redis-shared'
        : await stoppedForMigration(ctx),
    run: async (ctx) => {
      const old = await notedEnv(ctx);
      const host = old.find((e) => e.name === 'REDIS_HOST')?.value ?? '';
      if (ctx.dryRun) {
        // Login and the cache write would put keys into beersystem's Redis: a dry run asks
        // only /healthz.
        const health = await beersystemHealth(ctx);
        if (!health.ok) throw new Error(`beersystem's /healthz answers ${health.status}`);
        ctx.log.info(
          `dry run: /healthz answers 200 on ${health.redis ?? '?'}; login, session and cache are checked by a real run`,
        );
        return;
      }
      const result = await functionalCheck(ctx, host);
      if (!result.ok) {
        throw new Error(
          `beersystem's functions fail before any change: ${result.line}. Fix that first; nothing was changed`,
        );
      }
      ctx.log.info(`before the change: ${result.line}`);
    },
  },
  {
    id: 'T033',
    title: 'Backup beersystem deployment configuration',
    risk: 'read',
    done: async (ctx) => {
      const path = await ctx.recall<string>(notes.backup);
      return Boolean(path && existsSync(path));
    },
    run: async (ctx) => {
      const { namespace, deployment } = bs(ctx);
      const raw = (await ctx.kube.deployment(namespace, deployment))!.raw;
      const path = join(ctx.cfg.backupsDir, `beersystem-deployment-${ctx.runId}.json`);
      if (ctx.dryRun) {
        ctx.log.info(`would write the backup to ${path} (mode 0600)`);
        return;
      }
      await mkdir(ctx.cfg.backupsDir, { recursive: true, mode: 0o700 });
      await writeFile(path, `${JSON.stringify(backupOf(raw), null, 2)}\n`, { mode: 0o600 });
      await chmod(path, 0o600);
      await ctx.note(notes.backup, path);
      ctx.log.info(`backup written: ${path} (0600, no secret values)`);
    },
  },
  {
    id: 'T034',
    title: 'Rollback procedure ready (--rollback and checklists/05-migrate.md)',
    risk: 'read',
    run: (ctx) => {
      ctx.log.info(
        `rollback at any point from here: ${rollbackLine(ctx)} (applies with the migration disabled, restores the noted environment, scales back, verifies on the old Redis); by hand: checklists/05-migrate.md, "Rollback"`,
      );
    },
  },
  {
    id: 'P03',
    title: 'Plan the migration (tofu plan -out, enable_beersystem_migration=true)',
    risk: 'read',
    skip: async (ctx) =>
      (await beersystemState(ctx)).onShared ? 'beersystem already uses redis-shared' : undefined,
    run: async (ctx) => {
      await removeEndedPlans(ctx);
      const kept = (await ctx.attempt.current()) ? await confirmedPlan(ctx) : undefined;
      if (kept) {
        ctx.state.plan = kept;
        ctx.log.info(
          `resuming: the plan this attempt confirmed, ${kept.file} (sha256 ${kept.sha256.slice(0, 12)}…, ${kept.summary}), is applied at T039 if still valid`,
        );
        return;
      }
      const plan = await freshPlan(ctx);
      for (const c of pendingChanges(plan)) {
        ctx.log.info(`  ${c.action.padEnd(7)} ${c.address}`);
      }
      ctx.log.info(
        `plan ${plan.summary} (sha256 ${plan.sha256.slice(0, 12)}…): this exact plan is applied at T039`,
      );
    },
  },
  {
    id: 'P04',
    title: "Nothing else owns beersystem's Redis environment (field managers)",
    risk: 'read',
    run: async (ctx) => {
      const raw = (await beersystemState(ctx)).deployment.raw;
      const managers = (
        (raw.metadata as { managedFields?: { manager?: string }[] }).managedFields ?? []
      )
        .map((m) => m.manager ?? '?')
        .filter((m) => !/^(kubectl|Terraform|terraform|tofu|kube-controller-manager|k3s)/.test(m));
      const labels = raw.metadata.labels ?? {};
      const annotations = raw.metadata.annotations ?? {};
      const owners = [
        ...managers,
        ...(labels['app.kubernetes.io/managed-by'] === 'Helm'
          ? ['Helm (label app.kubernetes.io/managed-by)']
          : []),
        ...(Object.keys({ ...labels, ...annotations }).some((k) =>
          k.startsWith('argocd.argoproj.io'),
        )
          ? ['Argo CD (argocd.argoproj.io labels)']
          : []),
      ];
      if (owners.length) {
        throw new Error(
          `beersystem is also managed by ${[...new Set(owners)].join(', ')}: it would revert the new Redis environment. Pause that sync (or change its source) before the migration, then re-run`,
        );
      }
      ctx.log.info('no other manager (Argo CD, Helm, another apply) claims the Deployment');
      // Said here, just above the question at T035 (and in a dry run, where nothing is asked).
      const measured = await readNotes(ctx.cfg.auditLog, {
        runbook: ctx.runbook,
        key: notes.downtimeMs,
      });
      ctx.log.info(expectedDowntimeLine(measured.at(-1)));
    },
  },
  {
    id: 'T035',
    title: 'Scale down beersystem to 0 replicas — downtime starts',
    risk: 'high',
    impact: 'beersystem is unavailable to its users until T040 has it Ready on redis-shared',
    // The record P05 writes is bookkeeping of this same answer: nothing is asked after the window.
    confirmCovers: 'P05',
    coverText:
      'beersystem is down from T035 until T040 is Ready; T041 then tests it and P05 records the migration',
    // Already on redis-shared: there is no downtime to start (not "already done": it runs).
    skip: async (ctx) =>
      (await beersystemState(ctx)).onShared
        ? 'beersystem already uses redis-shared: no downtime to start'
        : undefined,
    done: async (ctx) => (await beersystemState(ctx)).deployment.replicas === 0,
    run: async (ctx) => {
      const { namespace, deployment } = bs(ctx);
      await notedReplicas(ctx);
      // The attempt opens before anything changes, so every later note and the record are its.
      await ctx.attempt.open();
      await ctx.note(notes.downtimeStart, new Date().toISOString());
      await watchWindow(ctx);
      await ctx.kubectl`scale deployment ${deployment} -n ${namespace} --replicas=0`;
    },
    undo: rollbackLine,
  },
  {
    id: 'T036',
    title: 'Verify beersystem pods terminated',
    risk: 'read',
    done: async (ctx) => (await beersystemState(ctx)).onShared,
    // its own check is the run; done() holds only once T039 has applied
    verify: () => true,
    run: (ctx) =>
      inDowntime(ctx, async () => {
        const selector = (await ctx.recall<string>(notes.selector)) ?? '';
        await ctx.waitFor('beersystem pods gone', () => podsGone(ctx), {
          intervalMs: 250,
          progress: () => `selector ${selector}`,
        });
      }),
  },
  {
    id: 'D01',
    title: "Copy beersystem's keys (sessions, cache, TTLs) to redis-shared (--copy-data)",
    risk: 'change',
    skip: async (ctx) => {
      if (!ctx.flags['copy-data'])
        return 'not asked: --copy-data keeps sessions and cache (the spec accepts an empty cache)';
      if ((await beersystemState(ctx)).onShared) return 'beersystem already uses redis-shared';
      return undefined;
    },
    run: (ctx) =>
      inDowntime(ctx, async () => {
        const source = await oldRedisTarget(ctx, await notedEnv(ctx), 'runbook-05-copy');
        if (!source) throw new Error('the old Redis has no Ready pod to copy from');
        const target = await sharedRedisTarget(ctx, 'runbook-05-copy');
        const result = await copyKeys(source, target, {
          match: 'beersystem:*',
          dryRun: ctx.dryRun,
        });
        ctx.log.info(result.evidence);
        if (!ctx.dryRun && (result.failed > 0 || result.verification?.ok === false)) {
          throw new Error(
            `the copy is incomplete (${result.failed} failed): ${result.errors.slice(0, 3).join('; ')}`,
          );
        }
      }),
  },
  {
    id: 'T037',
    title:
      'Check the new Redis DNS the saved plan sets (REDIS_HOST=redis-shared-master.redis.svc.cluster.local)',
    risk: 'read',
    done: async (ctx) => (await beersystemState(ctx)).onShared,
    // its own check is the run; done() holds only once T039 has applied
    verify: () => true,
    run: (ctx) =>
      inDowntime(ctx, async () => {
        const plan = await migrationPlan(ctx);
        ctx.log.info(
          `REDIS_HOST=${expectedSharedRedis(ctx).split(':')[0]} comes with the saved plan ${plan.file}`,
        );
      }),
  },
  {
    id: 'T038',
    title: 'Check the new Redis credentials the saved plan sets (secretKeyRef: redis-credentials)',
    risk: 'read',
    done: async (ctx) => (await beersystemState(ctx)).onShared,
    // its own check is the run; done() holds only once T039 has applied
    verify: () => true,
    run: (ctx) =>
      inDowntime(ctx, async () => {
        const secret = await readReplicatedSecret(ctx.kube, ctx.cfg);
        if (!secret.matches) throw new Error(secret.summary);
        ctx.log.info(
          `REDIS_PASSWORD from Secret ${bs(ctx).namespace}/${secret.name} key ${secret.key}: ${secret.summary}`,
        );
      }),
  },
  {
    id: 'T039',
    title: 'Apply beersystem configuration changes via OpenTofu',
    risk: 'change',
    done: async (ctx) => (await beersystemState(ctx)).onShared,
    run: (ctx) =>
      inDowntime(ctx, async () => {
        await waitForTofuIdle(ctx);
        const plan = await migrationPlan(ctx);
        try {
          await tofuApply(ctx, plan);
        } catch (err) {
          // A resumed run's saved plan goes stale if the state moved since; the same intent,
          // planned again and held to the migration module, is applied instead.
          if (!(err instanceof TofuPlanChangedError)) throw err;
          ctx.log.warn(
            `the saved plan cannot be applied (${(err as Error).message.split('\n')[0]}); planning again`,
          );
          const again = await freshPlan(ctx);
          // Held to the migration module like the first; said in full, since nobody saw it.
          ctx.log.warn(
            `applying the new plan ${again.file} (sha256 ${again.sha256.slice(0, 12)}): ${again.summary}`,
          );
          await tofuApply(ctx, again);
        }
      }),
    undo: rollbackLine,
  },
  {
    id: 'T040',
    title: 'Scale up beersystem to its noted replica count — downtime ends when Ready and healthy',
    risk: 'high',
    impact: 'beersystem starts on redis-shared',
    done: async (ctx) => Boolean(await readyOn(ctx, await notedReplicas(ctx), true)),
    run: (ctx) =>
      inDowntime(ctx, async () => {
        const { namespace, deployment } = bs(ctx);
        const replicas = await notedReplicas(ctx);
        await ctx.kubectl`scale deployment ${deployment} -n ${namespace} --replicas=${replicas}`;
        const started = await ctx.recall<string>(notes.downtimeStart);
        const since = started ? Date.parse(started) : Date.now();
        let seen = '';
        const ready = await ctx.waitFor(
          'beersystem Ready and healthy on redis-shared',
          () =>
            readyOn(ctx, replicas, true, (s) => {
              seen = `${s.deployment.readyReplicas}/${replicas} Ready${s.onShared ? '' : ', not yet configured for redis-shared'}`;
            }),
          {
            intervalMs: 200,
            progress: () =>
              `downtime ${formatDuration(Date.now() - since)}${seen ? `, ${seen}` : ''}`,
          },
        );
        if (!ready) return;
        await endWindowWatch(ctx);
        const end = await downtimeEnd(ctx, replicas);
        if ('why' in end) ctx.log.warn(`the downtime's end is unknown: ${end.why}`);
      }),
    undo: rollbackLine,
  },
  {
    id: 'T041',
    title: 'Execute beersystem functional tests (login, session persistence, cache operations)',
    risk: 'read',
    skip: async (ctx) =>
      ctx.dryRun && !(await beersystemState(ctx)).onShared
        ? 'dry run: beersystem was not moved, so there is nothing on redis-shared to test'
        : undefined,
    run: (ctx) =>
      inDowntime(ctx, async () => {
        await proveFunctions(ctx);
        const connections = await proveConnections(ctx);
        await proveMonitored(ctx, connections);
      }),
  },
  {
    id: 'P05',
    title: 'Record the migration on beersystem (the 24 h gate of 06 reads it)',
    risk: 'change',
    impact:
      'bookkeeping only: beersystem already runs on redis-shared; without the record 06 cannot open its 24 h gate',
    // Done once the record is written and its attempt closed: a run killed between the two left
    // the attempt open (and its saved plan, which holds the password, on disk) for the resume.
    done: async (ctx) => {
      if (!migrationRecordOf((await beersystemState(ctx)).deployment.annotations)) return false;
      const attempt = await ctx.attempt.current();
      return !attempt || Boolean(attempt.closedAt);
    },
    run: async (ctx) => {
      const { namespace, deployment } = bs(ctx);
      const end = await downtimeEnd(ctx, await notedReplicas(ctx));
      if ('why' in end && !ctx.dryRun) {
        throw new Error(
          `when beersystem became Ready cannot be read from the cluster (${end.why}), and 06's 24 h gate counts from it: check kubectl get pods -n ${namespace}, then resume`,
        );
      }
      const at = end.at ?? new Date().toISOString();
      await ctx.kubectl`annotate deployment ${deployment} -n ${namespace} ${`${MIGRATION_ANNOTATION}=${at}`} ${`${MIGRATED_BY_RUN_ANNOTATION}=${ctx.runId}`} --overwrite`;
      await ctx.evidence(
        'US4-AS-2',
        'beersystem configured with redis-shared DNS and credentials by the saved plan',
        { met: true },
      );
      await ctx.attempt.close('completed');
    },
  },
];

// The module's README: destroying kubernetes_env restores nothing and, with the old values gone,
// is refused by the API; so the old values are written back first (taking the fields over from
// Terraform), and only then is the module released.
const rollback: StepDefinition[] = [
  {
    id: 'R01',
    title: 'Scale beersystem to 0 (the rollback is a downtime too)',
    risk: 'change',
    impact: 'beersystem is down until R05 has it Ready on its old Redis',
    confirmCovers: 'R06',
    coverText: 'beersystem is down from R01 until R05 has it Ready on its old Redis',
    done: async (ctx) => (await beersystemState(ctx)).deployment.replicas === 0,
    run: async (ctx) => {
      const { namespace, deployment } = bs(ctx);
      await notedReplicas(ctx);
      // The rollback's downtime starts here only if beersystem is serving now; otherwise it has
      // been down since the attempt's T035.
      if ((await beersystemState(ctx)).deployment.readyReplicas > 0) {
        await ctx.note(notes.rollbackDowntimeStart, new Date().toISOString());
      }
      await watchWindow(ctx);
      await ctx.kubectl`scale deployment ${deployment} -n ${namespace} --replicas=0`;
    },
  },
  {
    id: 'R02',
    title: "Restore beersystem's Redis environment from the note (or the backup)",
    risk: 'change',
    done: async (ctx) => {
      const s = await beersystemState(ctx);
      // compared as names and references: the API returns the fields in its own order
      return describeRedisEnv(s.env) === describeRedisEnv(await notedEnv(ctx));
    },
    run: async (ctx) => {
      await watchWindow(ctx);
      const { namespace, deployment } = bs(ctx);
      const s = await beersystemState(ctx);
      const patch = restoreEnvPatch(s.env as EnvVar[], await notedEnv(ctx), s.containerIndex);
      await ctx.kubectl`patch deployment ${deployment} -n ${namespace} --type=json -p ${JSON.stringify(patch)}`;
    },
  },
  {
    id: 'R03',
    title: 'Release the migration module (apply with enable_beersystem_migration=false)',
    risk: 'change',
    // Nothing applied (the migration failed before or at T039): no plan, no apply, no time.
    skip: async (ctx) =>
      (await ctx.tofu(['state', 'list', MIGRATION_MODULE])).stdout.trim() === ''
        ? 'the migration module is not applied: nothing to release'
        : undefined,
    run: async (ctx) => {
      await waitForTofuIdle(ctx);
      // The saved plan holds the password: it lives only as long as this step.
      const dir = join(planDirOf(ctx.cfg, ctx.runId), 'rollback');
      await mkdir(dir, { recursive: true, mode: 0o700 });
      try {
        const plan = await tofuPlan(ctx, {
          out: join(dir, 'rollback.tfplan'),
          vars: tofuVars(ctx.cfg, { migration: false }),
        });
        const touched = pendingChanges(plan);
        for (const c of touched) ctx.log.info(`  ${c.action.padEnd(7)} ${c.address}`);
        if (touched.some((c) => !c.address.startsWith(MIGRATION_MODULE))) {
          throw new Error(
            `the rollback plan would change more than ${MIGRATION_MODULE}; nothing was applied. Review it with tofu plan`,
          );
        }
        if (touched.length) await tofuApply(ctx, plan);
        else ctx.log.info('the migration module is not applied: nothing to release');
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  },
  {
    id: 'R04',
    title: 'Scale beersystem to its noted replica count',
    risk: 'change',
    done: async (ctx) =>
      (await beersystemState(ctx)).deployment.replicas === (await notedReplicas(ctx)),
    run: async (ctx) => {
      await watchWindow(ctx);
      const { namespace, deployment } = bs(ctx);
      await ctx.kubectl`scale deployment ${deployment} -n ${namespace} --replicas=${await notedReplicas(ctx)}`;
    },
  },
  {
    id: 'R05',
    title: 'Verify beersystem is healthy on the old Redis',
    risk: 'read',
    run: async (ctx) => {
      const replicas = await notedReplicas(ctx);
      const down = await rollbackDowntimeStart(ctx);
      await watchWindow(ctx);
      let seen = '';
      const health = await ctx.waitFor(
        'beersystem Ready and healthy on its old Redis',
        () =>
          readyOn(ctx, replicas, false, (s) => {
            seen = `${s.deployment.readyReplicas}/${replicas} Ready`;
          }),
        {
          intervalMs: 250,
          progress: () =>
            [down ? `downtime ${formatDuration(Date.now() - Date.parse(down.at))}` : '', seen]
              .filter(Boolean)
              .join(', '),
        },
      );
      if (!health) return;
      await endWindowWatch(ctx);
      ctx.log.info(`beersystem healthy on ${health.redis}`);
      const s = await beersystemState(ctx);
      const ready = readyTimeOf(await beersystemPods(ctx, s.deployment.selector), replicas);
      if (!down) {
        ctx.log.info(
          `the rollback's downtime is unknown: beersystem was already stopped and no migration attempt noted when (Ready on its old Redis since ${ready.at ?? 'an unknown time'})`,
        );
      } else if (ready.at) {
        const downtime = downtimeUntilReady(down.at, ready.at);
        await ctx.note(notes.rollbackDowntimeMs, downtime.ms);
        ctx.log.info(
          `downtime ${formatDowntime(downtime)} (${down.from} ${down.at} → Ready on the old Redis ${ready.at}, ${READY_RECORD})`,
        );
      }
    },
  },
  {
    id: 'R06',
    title: 'Clear the migration record and close the migration attempt',
    risk: 'change',
    run: async (ctx) => {
      const { namespace, deployment } = bs(ctx);
      if (migrationRecordOf((await beersystemState(ctx)).deployment.annotations)) {
        await ctx.kubectl`annotate deployment ${deployment} -n ${namespace} ${`${MIGRATION_ANNOTATION}-`} ${`${MIGRATED_BY_RUN_ANNOTATION}-`}`;
      } else {
        ctx.log.info('no migration record on beersystem');
      }
      // Closed: a later migration opens its own attempt and never reads this one's notes.
      await ctx.attempt.close('rolled-back');
    },
  },
];

export const runbook = defineRunbook({
  id: '05-migrate',
  title: 'Move beersystem to redis-shared (planned downtime)',
  description:
    'Prepares everything while beersystem still runs (health, backup, noted replicas and environment, the saved plan), then one confirmation covers T035–P05: scale to 0, apply the saved plan, scale back, Ready. T041 proves login, sessions and cache on redis-shared. --copy-data carries sessions and cache over; --rollback goes back to the old Redis.',
  requires: ['02-deploy', '03-access', '04-monitoring'],
  flags: {
    'copy-data': {
      type: 'boolean',
      description: "copy beersystem's keys (with their TTLs) to redis-shared during the downtime",
    },
  },
  gates: [
    {
      id: 'old-redis',
      describe: '--rollback only: the old Redis still exists (06-decommission has not deleted it)',
      check: async (ctx) => {
        if (ctx.mode !== 'rollback') return { open: true, reason: 'not a rollback' };
        const { namespace, deployment } = ctx.cfg.oldRedis;
        const old = await ctx.kube.deployment(namespace, deployment);
        return old
          ? { open: true, reason: `the old Redis ${namespace}/${deployment} still runs` }
          : {
              open: false,
              reason: `the old Redis ${namespace}/${deployment} is gone (06-decommission deleted it): there is nothing to roll back to. Keep beersystem on redis-shared and fix forward, or recreate the old Redis from the backup 06 wrote under ${ctx.cfg.backupsDir} (kubectl apply --server-side -f <file>) and then run --rollback`,
            };
      },
    },
  ],
  completed: async (ctx) => {
    const s = await beersystemState(ctx);
    const record = migrationRecordOf(s.deployment.annotations);
    if (!record || !s.onShared || s.deployment.readyReplicas < Math.max(1, s.deployment.replicas))
      return undefined;
    // recorded, but killed before the attempt was closed: closed now
    const attempt = await ctx.attempt.current();
    if (attempt && !attempt.closedAt && !ctx.dryRun) await ctx.attempt.close('completed');
    return `beersystem has run on redis-shared since ${record.at} (run ${record.runId ?? '?'}), ${s.deployment.readyReplicas} replica(s) Ready: nothing to do. To go back: ${rollbackLine(ctx)}`;
  },
  // The open attempt's plan outlives the run for its resume; any other is removed.
  cleanup: async (ctx) => {
    // a window that ended without beersystem Ready: what its users saw is kept all the same
    await endWindowWatch(ctx).catch(() => undefined);
    // a dry run opens no attempt a later run could resume: only its own plans, all of them
    if (ctx.dryRun) rmSync(join(plansRoot(ctx.cfg), ctx.runId), { recursive: true, force: true });
    else removePlans(ctx.cfg, new Set([await openAttemptId(ctx)].filter((id) => id !== undefined)));
  },
  next: migrationNext,
  steps: migrate,
  // From T035 on, beersystem is down: a failure there offers to roll back at once.
  rollback: {
    mode: 'rollback',
    from: 'T035',
    stopLeaves: 'beersystem stays down until you roll back or resume',
  },
  standing: beersystemStanding,
  modes: {
    rollback: {
      title: 'Put beersystem back on its old Redis',
      description:
        'Scales beersystem to 0, writes the noted REDIS_* environment back (disabling the module alone restores nothing and is refused by the API), then releases the module (apply with the migration disabled), scales to the noted count, verifies beersystem healthy on the old Redis and clears the migration record. Refused once 06-decommission has deleted the old Redis.',
      steps: rollback,
    },
  },
});

await runMain(runbook, import.meta.url);
