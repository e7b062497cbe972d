#!/bin/sh
//bin/true; exec node --import "$(dirname "$(dirname "$(realpath "$0")")")/lib/ts-loader/register.mjs" "$0" "$@"
// Day 2: a new redis-shared password without a failed write. OpenTofu makes it (-replace of the
// module's random_password, the saved plan shown and confirmed) and writes it into every Secret
// copy; at once Redis is told to accept it beside the old one (ACL SETUSER default >new on both,
// masterauth on the replica, sent through ioredis with the old password, never in argv); then
// beersystem, the replica and the master restart and read the new one from the Secret, as the
// chart starts them (REDIS_PASSWORD_FILE → --requirepass/--masterauth, the exporter's
// REDIS_PASSWORD): after the master's restart only the new one is accepted. A writer counts
// write errors through the LoadBalancer from before the apply to the end.

import { join } from 'node:path';
import type { PodInfo } from '../lib/cluster/kube.ts';
import { readReplicatedSecret, redisPassword } from '../lib/cluster/secrets.ts';
import { type TofuPlan, tofuApply, tofuPlan } from '../lib/cluster/tofu.ts';
import { tofuVars } from '../lib/cluster/tofu-vars.ts';
import { strictCheck } from '../lib/engine/check-step.ts';
import type { Judgement } from '../lib/engine/judgement.ts';
import { planDirOf } from '../lib/engine/plans.ts';
import { recordProof } from '../lib/engine/proof.ts';
import { defineRunbook, runMain, type StepContext } from '../lib/engine/runbook.ts';
import { registerSecret } from '../lib/mask.ts';
import {
  beersystemHealth,
  beersystemState,
  expectedSharedRedis,
} from '../lib/phases/beersystem.ts';
import {
  describeWrites,
  isWrongPassword,
  judgeRotationPlan,
  lostWrites,
  PASSWORD_ADDRESS,
  ROTATION_EVIDENCE,
  type RolloutStrategy,
  restartCost,
  rotationMet,
  SECRET_COPIES_ADDRESS,
} from '../lib/phases/rotation.ts';
import type { RotationWriter } from '../lib/redis/rotation-writer.ts';

const APPLIED_NOTE = 'rotation.applied';

const names = (ctx: StepContext) => {
  const r = ctx.cfg.redis.release;
  return {
    master: { set: `${r}-master`, pod: `${r}-master-0` },
    replica: { set: `${r}-replicas`, pod: `${r}-replicas-0` },
    metricsService: `${r}-metrics`,
  };
};

/** The password before this run replaced it: held in this process's memory only, never noted. */
const oldPassword = (ctx: StepContext) => ctx.state.oldPassword as string | undefined;

async function newPassword(ctx: StepContext): Promise<string> {
  const value = await redisPassword(ctx.kube, ctx.cfg);
  if (!value) {
    const { namespace, secretName } = ctx.cfg.redis;
    throw new Error(
      `Secret ${namespace}/${secretName} is missing: run ${ctx.commandLine({ runbook: '02-deploy' })} to create it`,
    );
  }
  return value;
}

async function podOf(ctx: StepContext, pod: string): Promise<PodInfo> {
  const ns = ctx.cfg.redis.namespace;
  const found = (await ctx.kube.pods(ns, '')).find((p) => p.name === pod);
  if (!found?.ready || !found.podIP) {
    throw new Error(
      `${ns}/${pod} is not Ready: bring it back first (${ctx.kubectlLine(['describe', 'pod', pod, '-n', ns])}), then run ${ctx.commandLine({ from: ctx.step?.id })}`,
    );
  }
  return found;
}

/** The reply to AUTH with `password` on a fresh connection: 'OK' or the refusal. */
async function authReply(host: string, port: number, password: string): Promise<string> {
  const { openRedis } = await import('../lib/redis/redis-probe.ts');
  const { maskError } = await import('../lib/mask.ts');
  const client = await openRedis({ host, port, name: 'runbook-rotate-auth' }, { auth: false });
  try {
    return String(await client.call('AUTH', password));
  } catch (err) {
    return maskError(err).message;
  } finally {
    client.disconnect();
  }
}

/** The one plan of this run: -replace of the password, targeted at it and its Secret copies. */
async function thePlan(ctx: StepContext): Promise<TofuPlan> {
  if (ctx.state.plan) return ctx.state.plan as TofuPlan;
  // The saved plan holds the state, and with it the password: the private plan directory.
  const plan = await tofuPlan(ctx, {
    out: join(planDirOf(ctx.cfg, ctx.runId), 'rotate-password.tfplan'),
    vars: tofuVars(ctx.cfg, { migration: (ctx.state.migrated as boolean | undefined) ?? false }),
    // -target takes what a target depends on, not what depends on it: both are named.
    targets: [PASSWORD_ADDRESS, SECRET_COPIES_ADDRESS],
    replace: [PASSWORD_ADDRESS],
  });
  ctx.state.plan = plan;
  return plan;
}

/**
 * The writer runs from before the apply to the last restart, in the process that rotates: it
 * starts with the Secret's password, which only that process can be sure Redis accepts.
 */
async function ensureWriter(ctx: StepContext): Promise<void> {
  if (ctx.dryRun || ctx.state.writer) return;
  const { startRotationWriter } = await import('../lib/redis/rotation-writer.ts');
  ctx.state.writer = await startRotationWriter({
    host: ctx.cfg.redis.lbIp,
    port: ctx.cfg.redis.port,
    password: () => redisPassword(ctx.kube, ctx.cfg),
    key: `runbook:rotation:${ctx.runId}`,
  });
  ctx.log.info(
    `writer started: INCR runbook:rotation:${ctx.runId} through ${ctx.cfg.redis.lbIp}:${ctx.cfg.redis.port}, reconnecting with the newest password in the Secret`,
  );
}

async function restartStatefulSet(ctx: StepContext, set: string): Promise<void> {
  const ns = ctx.cfg.redis.namespace;
  await ctx.kubectl`rollout restart statefulset/${set} -n ${ns}`;
  if (ctx.dryRun) return;
  const seconds = Math.ceil(ctx.cfg.timeouts.waitMs / 1000);
  await ctx.kubectl`rollout status statefulset/${set} -n ${ns} --timeout=${`${seconds}s`}`;
}

async function beersystemReadsSecret(ctx: StepContext): Promise<boolean> {
  const { env } = await beersystemState(ctx);
  return env.some(
    (e) =>
      e.name === 'REDIS_PASSWORD' && e.valueFrom?.secretKeyRef?.name === ctx.cfg.redis.secretName,
  );
}

const restartAll = (ctx: StepContext) =>
  ctx.kubectlLine([
    'rollout',
    'restart',
    `statefulset/${names(ctx).replica.set}`,
    `statefulset/${names(ctx).master.set}`,
    '-n',
    ctx.cfg.redis.namespace,
  ]);

const notInDryRun = (ctx: StepContext) =>
  ctx.dryRun ? 'dry run: the password was not changed, so there is nothing to verify' : undefined;

export const runbook = defineRunbook({
  id: 'rotate-password',
  title: 'Rotate the redis-shared password (new from OpenTofu, no failed write)',
  description:
    "Plans -replace of the module's random_password (with its Secret copies), applies exactly that plan after one confirmation, tells master and replica to accept the new password beside the old one (ACL SETUSER default >new, masterauth on the replica), restarts beersystem (when it reads the Secret), the replica and the master so they start with the new one from the Secret, then proves the old password refused (SC-008), the new one working, both Secret copies equal, beersystem healthy and the exporter scraping. A writer counts write errors through the LoadBalancer throughout. Passwords travel only in memory (ioredis), never in argv, output, notes or the audit log.",
  // redis-shared and its Secret are all a rotation needs; beersystem is restarted only when it
  // reads the Secret (after 05-migrate), so the password can be rotated before the migration too.
  requires: ['02-deploy'],
  next: (ctx) =>
    `the new password is in Secret ${ctx.cfg.redis.secretName} in ${ctx.cfg.redis.namespace} and ${ctx.cfg.beersystem.namespace}; rotate again with ${ctx.commandLine({ dryRun: false })} --yes`,
  cleanup: async (ctx) => {
    const writer = ctx.state.writer as RotationWriter | undefined;
    ctx.state.writer = undefined;
    await writer?.stop().catch(() => undefined);
  },
  steps: [
    {
      id: 'P01',
      title: 'Check redis-shared, both Secret copies and both pods before the change',
      risk: 'read',
      run: async (ctx) => {
        const secret = await readReplicatedSecret(ctx.kube, ctx.cfg);
        if (!secret.matches || !secret.password) {
          throw new Error(
            `${secret.summary}; rotate only from a consistent state: ${ctx.commandLine({ runbook: '02-deploy' })}`,
          );
        }
        ctx.state.oldPassword = secret.password;
        const { master, replica } = names(ctx);
        const { lbIp, port } = ctx.cfg.redis;
        for (const [where, host] of [
          [`${lbIp}:${port}`, lbIp],
          [master.pod, (await podOf(ctx, master.pod)).podIP],
          [replica.pod, (await podOf(ctx, replica.pod)).podIP],
        ] as const) {
          const reply = await authReply(host as string, port, secret.password);
          if (reply !== 'OK') {
            throw new Error(
              `${where} refuses the password in the Secret (${reply}): Redis and the Secret disagree already. Restart the pods so they read it (${restartAll(ctx)}), then run ${ctx.commandLine({ from: 'P01' })}`,
            );
          }
        }
        ctx.log.info(
          `${secret.summary}; the LoadBalancer, ${master.pod} and ${replica.pod} accept it`,
        );
        ctx.state.migrated = await beersystemReadsSecret(ctx);
        ctx.log.info(
          ctx.state.migrated
            ? `beersystem reads its password from Secret ${ctx.cfg.beersystem.namespace}/${ctx.cfg.redis.secretName}: it is restarted onto the new one (R04)`
            : 'beersystem does not read the Secret (not migrated to redis-shared): it is left alone',
        );
      },
    },
    {
      id: 'R01',
      title: 'Plan a new password: tofu plan -replace of random_password and its Secret copies',
      risk: 'read',
      run: async (ctx) => {
        const plan = await thePlan(ctx);
        ctx.log.info(`plan: ${plan.summary}`);
        for (const c of plan.changes.filter((c) => c.action !== 'no-op'))
          ctx.log.info(`  ${c.action} ${c.address}`);
        const verdict = judgeRotationPlan(plan.changes);
        if (!verdict.ok) {
          throw new Error(
            `${verdict.problems.join('; ')}. Nothing was applied. Bring the module in line first (${ctx.commandLine({ runbook: '02-deploy' })}), then run ${ctx.commandLine({ from: 'R01' })}`,
          );
        }
      },
    },
    {
      id: 'R02',
      title: 'Apply the saved plan: a new password in every Secret copy (tofu apply)',
      risk: 'high',
      impact:
        'replaces random_password: the old password leaves the state for good and every Secret copy holds the new one; Redis accepts the new one from R03 on, the old one until the master restarts (R06)',
      run: async (ctx) => {
        const plan = await thePlan(ctx);
        await ensureWriter(ctx);
        await tofuApply(ctx, plan);
        if (!ctx.dryRun) await ctx.note(APPLIED_NOTE, { at: new Date().toISOString() });
      },
      undo: (ctx) =>
        `the old password is gone from the state and cannot come back; finish the switch instead: ${ctx.commandLine({ from: 'R03', dryRun: false })} --yes`,
    },
    {
      id: 'R03',
      title:
        'Tell Redis the new password: ACL SETUSER default >new on master and replica, CONFIG SET masterauth on the replica',
      risk: 'change',
      done: async (ctx) => {
        if (ctx.dryRun) return false;
        const { master } = names(ctx);
        const host = (await podOf(ctx, master.pod)).podIP as string;
        return (await authReply(host, ctx.cfg.redis.port, await newPassword(ctx))) === 'OK';
      },
      run: async (ctx) => {
        const { master, replica } = names(ctx);
        if (ctx.dryRun) {
          ctx.log.info(
            `would connect to ${master.pod} and ${replica.pod} with the old password and send ACL SETUSER default >(new) to both and CONFIG SET masterauth (new) to the replica`,
          );
          return;
        }
        const old = oldPassword(ctx);
        if (!old) {
          throw new Error(
            `the old password was only in the memory of the run that replaced it, and Redis accepts nothing else yet. Restart redis-shared's pods so they read the new one from the Secret (writes stall while the master restarts): ${ctx.commandLine({ only: ['R05', 'R06'], dryRun: false })} --yes; then beersystem and the checks: ${ctx.commandLine({ only: ['R04', 'V02', 'V03', 'V04'], dryRun: false })} --yes`,
          );
        }
        await ensureWriter(ctx);
        const password = await newPassword(ctx);
        registerSecret(password);
        const { openRedis } = await import('../lib/redis/redis-probe.ts');
        const { port } = ctx.cfg.redis;
        // The replica first: it must be able to re-authenticate with its master before the
        // master hears of the new password from anyone else.
        for (const [pod, isReplica] of [
          [replica.pod, true],
          [master.pod, false],
        ] as const) {
          const host = (await podOf(ctx, pod)).podIP as string;
          const client = await openRedis({ host, port, password: old, name: 'runbook-rotate' });
          try {
            // Two passwords for the default user: clients that still hold the old one keep
            // working until they restart.
            await client.call('ACL', 'SETUSER', 'default', `>${password}`);
            if (isReplica) await client.call('CONFIG', 'SET', 'masterauth', password);
          } finally {
            client.disconnect();
          }
          ctx.log.info(
            `${pod} accepts the old and the new password${isReplica ? '; masterauth is the new one' : ''}`,
          );
        }
      },
      undo: (ctx) =>
        `the pods take the Secret's (new) password when they restart: ${restartAll(ctx)}; or resume: ${ctx.commandLine({ from: 'R04', dryRun: false })} --yes`,
    },
    {
      id: 'R04',
      title: 'Restart beersystem onto the new password (rollout restart, when it reads the Secret)',
      risk: 'change',
      skip: async (ctx) =>
        (await beersystemReadsSecret(ctx))
          ? undefined
          : `beersystem does not read Secret ${ctx.cfg.redis.secretName}: nothing to restart`,
      run: async (ctx) => {
        const { namespace, deployment } = ctx.cfg.beersystem;
        const { deployment: info } = await beersystemState(ctx);
        // biome-ignore lint/suspicious/noExplicitAny: the Deployment's spec as the API returns it
        const strategy = (info.raw as any)?.spec?.strategy as RolloutStrategy | undefined;
        const cost = restartCost(strategy, info.replicas);
        if (cost.downtime) ctx.log.warn(`beersystem's restart: ${cost.line}`);
        else ctx.log.info(`beersystem's restart: ${cost.line}`);
        await ctx.kubectl`rollout restart deployment/${deployment} -n ${namespace}`;
        if (ctx.dryRun) return;
        const seconds = Math.ceil(ctx.cfg.timeouts.waitMs / 1000);
        await ctx.kubectl`rollout status deployment/${deployment} -n ${namespace} --timeout=${`${seconds}s`}`;
      },
      undo: (ctx) =>
        `nothing to undo: beersystem runs on the new password, which Redis accepts; resume: ${ctx.commandLine({ from: 'R05', dryRun: false })} --yes`,
    },
    {
      id: 'R05',
      title: 'Restart the replica so it starts with the new password (rollout restart)',
      risk: 'change',
      impact: 'the replica restarts: reads from it fail for seconds; writes go on at the master',
      run: async (ctx) => {
        await restartStatefulSet(ctx, names(ctx).replica.set);
      },
      undo: (ctx) =>
        `nothing to undo: the replica runs with the Secret's password; resume: ${ctx.commandLine({ from: 'R06', dryRun: false })} --yes`,
    },
    {
      id: 'R06',
      title: 'Restart the master so it starts with the new password only (rollout restart)',
      risk: 'high',
      impact:
        'the master restarts: writes wait (clients that retry) or fail (clients that do not) until it is Ready again, as in the SC-007 drill; afterwards the old password is refused',
      run: async (ctx) => {
        await restartStatefulSet(ctx, names(ctx).master.set);
      },
      undo: (ctx) =>
        `nothing to undo: the master runs with the Secret's password; check: ${ctx.commandLine({ from: 'V01', dryRun: false })}`,
    },
    {
      id: 'W01',
      title: 'Stop the writer and record its figures (write errors during the rotation)',
      risk: 'read',
      skip: (ctx) =>
        ctx.dryRun
          ? 'dry run: no writer ran'
          : ctx.state.writer
            ? undefined
            : 'no writer ran in this process (it runs from R02 in the run that rotates): no figures',
      run: async (ctx) => {
        const writer = ctx.state.writer as RotationWriter;
        ctx.state.writer = undefined;
        const tally = await writer.stop();
        const line = describeWrites(tally);
        await recordProof(ctx, ROTATION_EVIDENCE, line, {
          met: rotationMet(tally),
          writes: tally.writes,
          writeErrors: tally.errors,
          lostWrites: lostWrites(tally),
          longestWaitMs: tally.longestWaitMs,
          startedAt: tally.startedAt,
          stoppedAt: tally.stoppedAt,
        });
        if (!rotationMet(tally)) {
          throw new Error(
            `${line}. The password was rotated; the figures say clients saw errors. Check the clients' logs, then prove the rest: ${ctx.commandLine({ from: 'V01', dryRun: false })}`,
          );
        }
      },
    },
    strictCheck({
      id: 'V01',
      title: 'SC-008 re-proven: the old password is refused, the new one works, on both',
      skip: (ctx) =>
        notInDryRun(ctx) ??
        (oldPassword(ctx)
          ? undefined
          : 'the old password is known only to the run that replaced it (P01 in the same process): its refusal cannot be proven by this one'),
      check: async (ctx): Promise<Judgement> => {
        const { replica } = names(ctx);
        const { lbIp, port } = ctx.cfg.redis;
        const password = await newPassword(ctx);
        const old = oldPassword(ctx) as string;
        const where: Array<[string, string]> = [
          [`${lbIp}:${port}`, lbIp],
          [replica.pod, (await podOf(ctx, replica.pod)).podIP as string],
        ];
        const found: string[] = [];
        let ok = true;
        for (const [label, host] of where) {
          const withNew = await authReply(host, port, password);
          const withOld = await authReply(host, port, old);
          const refused = isWrongPassword(withOld);
          ok &&= withNew === 'OK' && refused;
          found.push(
            `${label}: new ${withNew === 'OK' ? 'accepted' : `refused (${withNew})`}, old ${refused ? 'refused' : `ACCEPTED (${withOld})`}`,
          );
        }
        return ok
          ? { ok, detail: found.join('; ') }
          : {
              ok,
              detail: found.join('; '),
              fix: `restart the pods so they read the Secret: ${restartAll(ctx)}`,
            };
      },
    }),
    strictCheck({
      id: 'V02',
      title: 'Both Secret copies hold the new password; a write and a read work with it',
      skip: notInDryRun,
      check: async (ctx) => {
        const secret = await readReplicatedSecret(ctx.kube, ctx.cfg);
        const old = oldPassword(ctx);
        if (!secret.matches) return { ok: false, detail: secret.summary, fix: 're-run 02-deploy' };
        if (old && secret.password === old) {
          return {
            ok: false,
            detail: `Secret ${secret.name} still holds the old password`,
            fix: `apply the plan: ${ctx.commandLine({ from: 'R01', dryRun: false })} --yes`,
          };
        }
        const { openRedis } = await import('../lib/redis/redis-probe.ts');
        const client = await openRedis({
          host: ctx.cfg.redis.lbIp,
          port: ctx.cfg.redis.port,
          password: secret.password as string,
          name: 'runbook-rotate-check',
        });
        try {
          const key = `runbook:rotation:check:${ctx.runId}`;
          await client.set(key, 'ok', 'EX', 600);
          const back = await client.get(key);
          return back === 'ok'
            ? { ok: true, detail: `${secret.summary}; SET/GET through the LoadBalancer with it` }
            : { ok: false, detail: `wrote ok, read ${back}`, fix: 'check redis-shared' };
        } finally {
          client.disconnect();
        }
      },
    }),
    strictCheck({
      id: 'V03',
      title: 'beersystem answers healthy (on redis-shared when it reads the Secret)',
      skip: notInDryRun,
      check: async (ctx) => {
        const migrated = await beersystemReadsSecret(ctx);
        const health = await beersystemHealth(ctx);
        const want = expectedSharedRedis(ctx);
        const ok = health.ok && (!migrated || health.redis === want);
        return ok
          ? { ok, detail: `beersystem /healthz ${health.status}, Redis ${health.redis ?? '?'}` }
          : {
              ok,
              detail: `beersystem /healthz ${health.status}, Redis ${health.redis ?? '?'}${migrated ? ` (expected ${want})` : ''}`,
              fix: `${ctx.kubectlLine(['logs', `deployment/${ctx.cfg.beersystem.deployment}`, '-n', ctx.cfg.beersystem.namespace])}; restart it onto the Secret: ${ctx.commandLine({ from: 'R04', dryRun: false })} --yes`,
            };
      },
    }),
    strictCheck({
      id: 'V04',
      title: 'The exporter scrapes with the new password: Prometheus redis_up is 1 for both pods',
      skip: async (ctx) => {
        if (ctx.dryRun) return notInDryRun(ctx);
        const { prometheusQuery } = await import('../lib/cluster/prometheus.ts');
        const query = `redis_up{service="${names(ctx).metricsService}"}`;
        return (await prometheusQuery(ctx, query)).length === 0
          ? `Prometheus has no ${query} series: redis-shared is not scraped (04-monitoring wires it)`
          : undefined;
      },
      check: async (ctx) => {
        const { prometheusQuery } = await import('../lib/cluster/prometheus.ts');
        const n = names(ctx);
        const query = `redis_up{service="${n.metricsService}"}`;
        const pods = await Promise.all([podOf(ctx, n.master.pod), podOf(ctx, n.replica.pod)]);
        let seen: string[] = [];
        const up = await ctx.waitFor(
          `${query} == 1 for ${pods.map((p) => p.name).join(' and ')} at their new addresses`,
          async () => {
            const samples = await prometheusQuery(ctx, query);
            seen = samples.map((s) => `${s.metric.pod ?? s.metric.instance}=${s.value[1]}`);
            return pods.every((p) =>
              samples.some(
                (s) => s.metric.instance?.startsWith(`${p.podIP}:`) && s.value[1] === '1',
              ),
            );
          },
          { intervalMs: 2000, progress: () => seen.join(', ') || 'no redis_up series yet' },
        );
        return up
          ? { ok: true, detail: `${query}: ${seen.join(', ')}` }
          : {
              ok: false,
              detail: `${query}: ${seen.join(', ') || 'no series'}`,
              fix: `is redis-shared scraped at all? ${ctx.commandLine({ runbook: '04-monitoring' })}`,
            };
      },
    }),
  ],
});

await runMain(runbook, import.meta.url);
