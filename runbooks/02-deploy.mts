#!/bin/sh
//bin/true; exec node --import "$(dirname "$(dirname "$(realpath "$0")")")/lib/ts-loader/register.mjs" "$0" "$@"
// Phase 2 (tasks.md T009–T015): plan the redis-shared module with the migration disabled, apply
// exactly that plan after one `high` confirmation, then verify what it created: both pods Ready
// on 10Gi local-path volumes, the password Secret equal in both namespaces, authentication
// required, requests/limits and probes as the research decided. A re-run after success plans
// no change and verifies.

import { rmSync } from 'node:fs';
import { join } from 'node:path';
import type { PodInfo } from '../lib/cluster/kube.ts';
import { readReplicatedSecret, redisPassword } from '../lib/cluster/secrets.ts';
import { pendingChanges, type TofuPlan, tofuApply, tofuPlan } from '../lib/cluster/tofu.ts';
import { tofuVars } from '../lib/cluster/tofu-vars.ts';
import { strictCheck } from '../lib/engine/check-step.ts';
import { allOf, type Judgement } from '../lib/engine/judgement.ts';
import { planDirOf } from '../lib/engine/plans.ts';
import { defineRunbook, runMain, type StepContext } from '../lib/engine/runbook.ts';
import { WaitTimeout } from '../lib/engine/wait.ts';
import { releaseNames } from '../lib/names.ts';
import {
  applyImpact,
  judgeProbes,
  judgePvc,
  judgeResources,
  placement,
  planLines,
  RESEARCH_RESOURCES,
  type Resources,
  restartWarning,
  unexpectedChanges,
} from '../lib/phases/deploy-checks.ts';
import { MODULE_DEFAULTS } from '../lib/phases/preflight.ts';

const MODULE = 'module.redis_shared';
let plannedLines: string[] = [];
let plannedRestart: string | undefined;

/** One plan per run, made by P01 (or by a later step when the run starts after it). */
async function thePlan(ctx: StepContext): Promise<TofuPlan> {
  if (ctx.state.plan) return ctx.state.plan as TofuPlan;
  // The saved plan holds the state snapshot, and with it the password: the runbooks' private
  // plan directory: when this run is killed before its cleanup, 05-migrate's next run removes it.
  const dir = planDirOf(ctx.cfg, ctx.runId);
  ctx.state.planDir = dir;
  const plan = await tofuPlan(ctx, {
    out: join(dir, 'redis-shared.tfplan'),
    vars: tofuVars(ctx.cfg, { migration: false }),
    targets: [MODULE],
  });
  ctx.state.plan = plan;
  plannedLines = planLines(plan.changes);
  plannedRestart = restartWarning(plan.changes);
  return plan;
}

/** Verification steps have nothing to look at in a dry run whose apply was not sent. */
async function notAppliedInDryRun(ctx: StepContext): Promise<string | undefined> {
  if (!ctx.dryRun) return undefined;
  return pendingChanges(await thePlan(ctx)).length > 0
    ? 'dry run: the plan was not applied, so there is nothing to verify yet'
    : undefined;
}

const names = (ctx: StepContext) => releaseNames(ctx.cfg.redis);

// biome-ignore lint/suspicious/noExplicitAny: the StatefulSet's pod template as the API returns it
type Container = any;

async function containers(ctx: StepContext, set: string): Promise<Container[]> {
  const sts = await ctx.kube.statefulSet(ctx.cfg.redis.namespace, set);
  // biome-ignore lint/suspicious/noExplicitAny: raw API object
  return ((sts?.raw as any)?.spec?.template?.spec?.containers ?? []) as Container[];
}

/** Waits for the pod to be Ready, showing its phase and restarts; on time-out the events say why. */
async function podReady(ctx: StepContext, pod: string): Promise<Judgement> {
  const ns = ctx.cfg.redis.namespace;
  let seen: PodInfo | undefined;
  try {
    const ready = await ctx.waitFor(
      `${ns}/${pod} Ready`,
      async () => {
        seen = (await ctx.kube.pods(ns, '')).find((p) => p.name === pod);
        return seen?.ready ? seen : undefined;
      },
      {
        intervalMs: 1000,
        progress: () =>
          seen
            ? `${pod}: ${seen.phase}, ready ${seen.ready}, restarts ${seen.restarts}`
            : `${pod}: not created yet`,
      },
    );
    if (ready)
      return {
        ok: true,
        detail: `${pod} Ready (restarts ${ready.restarts}, node ${ready.node ?? '?'})`,
      };
    return { ok: false, detail: `${pod} not Ready (dry run)`, fix: 'run for real' };
  } catch (err) {
    if (!(err instanceof WaitTimeout)) throw err;
    const events = await ctx.kube.events(ns, 'Pod', pod);
    const recent = events
      .slice(-5)
      .map((e) => `${e.type} ${e.reason}: ${e.message}`)
      .join(' | ');
    return {
      ok: false,
      detail: `${err.message}${recent ? ` Events: ${recent}` : ''}`,
      fix: `kubectl describe pod ${pod} -n ${ns}; kubectl logs ${pod} -n ${ns} -c redis`,
    };
  }
}

async function instance(
  ctx: StepContext,
  role: 'master' | 'replica',
  expected: Resources,
): Promise<Judgement> {
  const n = names(ctx)[role];
  const ready = await podReady(ctx, n.pod);
  if (!ready.ok) return ready;
  const pvc = await ctx.kube.get('v1', 'PersistentVolumeClaim', n.pvc, ctx.cfg.redis.namespace);
  const redis = (await containers(ctx, n.set)).find((c) => c.name === 'redis');
  return allOf(
    ready,
    judgePvc(pvc as never, n.pvc, MODULE_DEFAULTS.storageSize, MODULE_DEFAULTS.storageClass),
    judgeResources(redis, expected, `${role} redis container`),
  );
}

export const runbook = defineRunbook({
  id: '02-deploy',
  title: 'Deploy redis-shared (phase 2, T009–T015)',
  description:
    'Plans the redis-shared module (migration disabled), shows what it creates, applies exactly that plan after one confirmation, and verifies the result: pods Ready, 10Gi local-path volumes, the password Secret equal in both namespaces, authentication required, requests/limits and probes. Re-running after success changes nothing.',
  requires: ['01-setup'],
  next: (ctx) =>
    `03-access proves access from the applications and the private network: ${ctx.commandLine({ runbook: '03-access' })} (--dry-run first shows every change)`,
  steps: [
    {
      id: 'P01',
      title: 'Plan the redis-shared module with the migration disabled (tofu plan -out)',
      risk: 'read',
      done: async (ctx) => pendingChanges(await thePlan(ctx)).length === 0,
      run: async (ctx) => {
        const plan = await thePlan(ctx);
        ctx.log.info(`plan: ${plan.summary}`);
        for (const line of plannedLines) ctx.log.info(`  ${line}`);
        const restart = restartWarning(plan.changes);
        if (restart) ctx.log.warn(restart);
        const unexpected = unexpectedChanges(plan.changes, MODULE);
        if (unexpected.length > 0) {
          throw new Error(
            `the plan would ${unexpected.map((c) => `${c.action} ${c.address}`).join(', ')}; 02-deploy only creates or updates ${MODULE}. Inspect with: tofu -chdir=${ctx.cfg.tofu.dir} plan`,
          );
        }
        await ctx.note('deploy.plan', { sha256: plan.sha256, summary: plan.summary });
      },
      // The plan was made and shown; applying it is T012's business.
      verify: () => true,
    },
    {
      id: 'T012',
      title:
        'Configure Bitnami Redis Helm release (release name: "redis-shared") — tofu apply of the saved plan (T009–T015)',
      risk: 'high',
      get impact() {
        return applyImpact(plannedLines, plannedRestart);
      },
      done: async (ctx) => pendingChanges(await thePlan(ctx)).length === 0,
      run: async (ctx) => {
        await tofuApply(ctx, await thePlan(ctx));
      },
      // tofu apply fails loudly; T009–T015 check what it created.
      verify: () => true,
      undo: (ctx) =>
        `fix the cause and re-run (${ctx.commandLine({ mode: 'default' })}); to remove it instead: cd ${ctx.cfg.tofu.dir} && tofu destroy -target=module.redis_shared (deletes the PVCs and their data)`,
    },
    strictCheck({
      id: 'T009',
      title:
        'Check the generated Redis password (random_password, terraform/modules/redis-shared/secrets.tf)',
      skip: notAppliedInDryRun,
      check: async (ctx) => {
        const { namespace, secretName } = ctx.cfg.redis;
        const state = await ctx.tofu`state list`;
        const generated = state.stdout.includes(`${MODULE}.random_password.`);
        const password = await redisPassword(ctx.kube, ctx.cfg);
        const length = password?.length ?? 0;
        return generated && length >= 32
          ? {
              ok: true,
              detail: `random_password in the state; ${namespace}/${secretName} holds a ${length}-character password`,
            }
          : {
              ok: false,
              detail: `random_password ${generated ? 'in' : 'missing from'} the state; password length ${length}`,
              fix: 're-run ./runbooks/02-deploy.mts; the module generates 32 characters',
            };
      },
    }),
    strictCheck({
      id: 'T010',
      title:
        'Check the Redis credentials Secret in namespace "redis" (terraform/modules/redis-shared/secrets.tf)',
      skip: notAppliedInDryRun,
      check: async (ctx) => {
        const { namespace, secretName, secretKey } = ctx.cfg.redis;
        const value = await redisPassword(ctx.kube, ctx.cfg);
        return value
          ? { ok: true, detail: `Secret ${namespace}/${secretName} has key ${secretKey}` }
          : {
              ok: false,
              detail: `Secret ${namespace}/${secretName} or its key ${secretKey} is missing`,
              fix: 'run ./runbooks/02-deploy.mts again (the apply creates it)',
            };
      },
    }),
    strictCheck({
      id: 'T011',
      title:
        'Check the replicated credentials Secret in namespace "beersystem" (terraform/modules/redis-shared/secrets.tf)',
      skip: notAppliedInDryRun,
      check: async (ctx) => {
        // Compared in memory only: neither value is printed, noted or logged.
        const secret = await readReplicatedSecret(ctx.kube, ctx.cfg);
        return secret.matches
          ? { ok: true, detail: secret.summary }
          : { ok: false, detail: secret.summary, fix: 'run ./runbooks/02-deploy.mts again' };
      },
    }),
    strictCheck({
      id: 'T013',
      title:
        'Check the Redis primary: 1 pod, 10Gi volume, 1 CPU / 2 GB (terraform/modules/redis-shared/main.tf)',
      skip: notAppliedInDryRun,
      check: (ctx) => instance(ctx, 'master', RESEARCH_RESOURCES.master),
    }),
    strictCheck({
      id: 'T014',
      title:
        'Check the Redis replica: 1 pod, 10Gi volume, 250m CPU / 2 GB (terraform/modules/redis-shared/main.tf)',
      skip: notAppliedInDryRun,
      check: async (ctx) => {
        const judged = await instance(ctx, 'replica', RESEARCH_RESOURCES.replica);
        if (!judged.ok) return judged;
        const n = names(ctx);
        const pods = await ctx.kube.pods(ctx.cfg.redis.namespace, '');
        const where = (pod: string) => ({
          name: pod,
          node: pods.find((p) => p.name === pod)?.node,
        });
        const placed = placement(where(n.master.pod), where(n.replica.pod));
        if (placed.warning) ctx.log.warn(placed.warning);
        return { ok: true, detail: `${judged.detail}; ${placed.detail}` };
      },
    }),
    strictCheck({
      id: 'T015',
      title:
        'Check authentication, health checks and resource limits (terraform/modules/redis-shared/main.tf)',
      skip: notAppliedInDryRun,
      check: async (ctx) => {
        const { lbIp, port } = ctx.cfg.redis;
        const n = names(ctx);
        const { probeAuthRequired } = await import('../lib/redis/redis-probe.ts');
        // Right after the apply the address may not be announced yet (MetalLB, the sandbox's
        // proxy): wait until something answers there, then judge what it answered.
        const unreachable = (evidence: string) =>
          /refused the connection|did not answer/.test(evidence);
        let auth = await probeAuthRequired({ host: lbIp, port });
        if (unreachable(auth.evidence) && !ctx.dryRun) {
          auth = await ctx
            .waitFor(
              `${lbIp}:${port} to answer`,
              async () => {
                const r = await probeAuthRequired({ host: lbIp, port });
                return unreachable(r.evidence) ? undefined : r;
              },
              { intervalMs: 500, timeoutMs: Math.min(ctx.cfg.timeouts.waitMs, 60_000) },
            )
            .then((r) => r ?? auth)
            .catch((err: unknown) => {
              if (!(err instanceof WaitTimeout)) throw err;
              return auth;
            });
        }
        const master = await containers(ctx, n.master.set);
        const replica = await containers(ctx, n.replica.set);
        const byName = (list: Container[], name: string) => list.find((c) => c.name === name);
        return allOf(
          auth.ok
            ? { ok: true, detail: `authentication required: ${auth.evidence}` }
            : {
                ok: false,
                detail: auth.evidence,
                fix: 'auth.enabled must be true in values.yaml.tftpl',
              },
          judgeProbes(byName(master, 'redis'), 'master'),
          judgeProbes(byName(replica, 'redis'), 'replica'),
          judgeResources(byName(master, 'metrics'), RESEARCH_RESOURCES.metrics, 'master exporter'),
          judgeResources(
            byName(replica, 'metrics'),
            RESEARCH_RESOURCES.metrics,
            'replica exporter',
          ),
        );
      },
    }),
  ],
  cleanup: (ctx) => {
    if (typeof ctx.state.planDir === 'string')
      rmSync(ctx.state.planDir, { recursive: true, force: true });
  },
});

await runMain(runbook, import.meta.url);
