#!/bin/sh
//bin/true; exec node --import "$(dirname "$(dirname "$(realpath "$0")")")/lib/ts-loader/register.mjs" "$0" "$@"
// Phases 3 and 5 (tasks.md US1 T016–T021, US2 T026–T030): redis-shared reached as an
// application pod reaches it (a Job in beersystem, password by secretKeyRef) and as a host on
// the private network reaches it (the LoadBalancer, from this machine). Every check that proves
// a criterion records its evidence. Two drills, each `high` and skippable: SC-007 (restart the
// master, every acknowledged write is back) and SC-002 (stop the master, replica reads go on).

import { setTimeout as sleep } from 'node:timers/promises';
import { runJobToEnd } from '../lib/cluster/job-run.ts';
import type { ProbeOutput } from '../lib/cluster/probe-job.ts';
import { redisPassword, requireRedisPassword } from '../lib/cluster/secrets.ts';
import { parseDuration } from '../lib/duration.ts';
import { strictCheck } from '../lib/engine/check-step.ts';
import type { Judgement } from '../lib/engine/judgement.ts';
import { judged, proven, recordNotProven, recordProof } from '../lib/engine/proof.ts';
import { defineRunbook, runMain, type StepContext } from '../lib/engine/runbook.ts';
import { WaitTimeout } from '../lib/engine/wait.ts';
import { type EvidenceId, releaseNames } from '../lib/names.ts';
import { restoreAfterDrill, restoreStep, stopForDrill } from '../lib/phases/drill-restore.ts';
import { judgeAddressInCidr } from '../lib/phases/preflight.ts';
import { judgeLatency, judgeSourceRange, metWord } from '../lib/phases/verdicts.ts';
import type { SourceProbeResult } from '../lib/redis/source-probe.ts';

const ROUND_TRIPS = 1000;
const LB_ROUND_TRIPS = 200;
const AUTH_ATTEMPTS = 10;
const RESTART_MARKERS = 20;
const PROBE_NOTE = 'access.probe';

const names = (ctx: StepContext) => releaseNames(ctx.cfg.redis);

/** A Job name unique to this run and step, valid as a DNS label. */
const jobName = (ctx: StepContext, what: string) =>
  `redis-shared-${what}-${ctx.runId.toLowerCase().replace(/[^a-z0-9]/g, '')}`.slice(0, 63);

async function probeImage(ctx: StepContext): Promise<string> {
  const sts = await ctx.kube.statefulSet(ctx.cfg.redis.namespace, names(ctx).master.set);
  // biome-ignore lint/suspicious/noExplicitAny: raw API object
  const containers: any[] = (sts?.raw as any)?.spec?.template?.spec?.containers ?? [];
  // The release's own Redis image has sh, redis-cli and redis-benchmark.
  return (
    containers.find((c) => c.name === 'redis')?.image ?? 'bitnamilegacy/redis:8.2.1-debian-12-r0'
  );
}

// biome-ignore lint/suspicious/noExplicitAny: a plain JSON manifest
type Manifest = Record<string, any>;

/** The probe Job of this run (T017 shows it, T018 runs it, T019 checks its replication part). */
async function probeJob(ctx: StepContext): Promise<Manifest> {
  if (ctx.state.probeJob) return ctx.state.probeJob as Manifest;
  const n = names(ctx);
  const { probeJobManifest } = await probeJobs();
  ctx.state.probeJob = probeJobManifest({
    name: jobName(ctx, 'probe'),
    namespace: ctx.cfg.beersystem.namespace,
    image: await probeImage(ctx),
    secretName: ctx.cfg.redis.secretName,
    secretKey: ctx.cfg.redis.secretKey,
    masterHost: n.master.host,
    replicaHost: n.replica.host,
    port: ctx.cfg.redis.port,
    probeKey: `runbook:probe:${ctx.runId}`,
    roundTrips: ROUND_TRIPS,
  });
  return ctx.state.probeJob as Manifest;
}

/** Creates the Job, waits for it to finish, returns its log; the Job is always deleted. */
async function runJob(
  ctx: StepContext,
  manifest: Manifest,
  onStarted?: () => Promise<void>,
): Promise<{ log: string; succeeded: boolean } | undefined> {
  const { name, namespace } = manifest.metadata;
  const password = await redisPassword(ctx.kube, ctx.cfg, namespace);
  const { manifestHasLiteral } = await probeJobs();
  if (password && manifestHasLiteral(manifest, password)) {
    throw new Error(`Job ${name} would carry the password as a literal; refusing to create it`);
  }
  return runJobToEnd(ctx, { name, namespace, manifest }, onStarted ? { onStarted } : {});
}

const operatorPassword = (ctx: StepContext) => requireRedisPassword(ctx.kube, ctx.cfg);

const lbTarget = async (ctx: StepContext) => ({
  host: ctx.cfg.redis.lbIp,
  port: ctx.cfg.redis.port,
  password: await operatorPassword(ctx),
  name: 'runbook-03-access',
});

/** Evidence recorded by an earlier real run of this runbook as met; `--recheck` ignores it. */

// The Job builders parse redis-benchmark's CSV with lib/redis/bench.ts, which loads ioredis: on first
// use, so --help stays fast.
const probeJobs = () => import('../lib/cluster/probe-job.ts');

const isWaitTimeout = (err: unknown) => err instanceof WaitTimeout;

async function recordProbe(ctx: StepContext, out: ProbeOutput): Promise<void> {
  const n = names(ctx);
  await ctx.note(PROBE_NOTE, out);
  const as1 = out.resolved !== undefined && out.pong && out.setOk && out.getMatched;
  await recordProof(
    ctx,
    'US1-AS-1',
    `from a Job in ${ctx.cfg.beersystem.namespace}: ${n.master.host} resolved to ${out.resolved ?? 'nothing'}, AUTH+PING ${out.pong ? 'PONG' : 'failed'}, SET/GET ${out.getMatched ? 'matched' : 'failed'}: ${metWord(as1)}`,
    { resolved: out.resolved ?? null, pong: out.pong, setGet: out.getMatched, met: as1 },
  );
  // The worse of SET and GET is judged; both measured means both rows parsed.
  const verdict =
    out.bench.length === 2
      ? judgeLatency('SC-001', Math.max(...out.bench.map((r) => r.p95LatencyMs)))
      : undefined;
  await recordProof(
    ctx,
    'SC-001',
    verdict
      ? `${verdict.text}; ${out.bench.map((r) => `${r.test} p95 ${r.p95LatencyMs} ms`).join(', ')} over ${ROUND_TRIPS} round trips each`
      : `SC-001 NOT met: redis-benchmark gave no SET/GET rows in the Job's log`,
    {
      p95Ms: verdict?.value ?? null,
      rows: out.bench,
      roundTrips: ROUND_TRIPS,
      command: `redis-benchmark -h ${n.master.host} -c 1 -n ${ROUND_TRIPS} -t set,get --csv (Job in ${ctx.cfg.beersystem.namespace})`,
      met: verdict?.met ?? false,
    },
  );
}

function replicationJudgement(out: ProbeOutput): Judgement {
  const healthy =
    out.master.role === 'master' &&
    out.master.connectedSlaves >= 1 &&
    out.replica.role === 'slave' &&
    out.replica.masterLinkStatus === 'up';
  const detail = `master: role ${out.master.role ?? '?'}, ${out.master.connectedSlaves} replica(s); replica: role ${out.replica.role ?? '?'}, link ${out.replica.masterLinkStatus ?? '?'}; marker ${out.markerTries === undefined ? 'NOT read on the replica' : `read on the replica after ${out.markerTries} retries`}`;
  return healthy && out.markerTries !== undefined
    ? { ok: true, detail }
    : {
        ok: false,
        detail,
        fix: 'kubectl logs redis-shared-replicas-0 -n redis -c redis (replication errors?)',
      };
}

export const runbook = defineRunbook({
  id: '03-access',
  title:
    'Access: from inside the cluster and from the private network (US1 T016–T021, US2 T026–T030)',
  description:
    'Proves US1 from a Job in beersystem (DNS, AUTH, SET/GET, SC-001 latency, replication, marker master→replica) and US2 from this machine through the LoadBalancer (address, commands, SC-003 latency, SC-008 refusals, SC-004 source ranges). Drills (high, skippable): SC-007 restart persistence, SC-002 master stop with replica reads. A drill that fails or is interrupted restores what it stopped (or the next run does, at P01).',
  requires: ['02-deploy'],
  flags: {
    'skip-restart-drill': {
      type: 'boolean',
      description: 'do not run the SC-007 restart drill (reported as not run)',
    },
    'skip-failover-drill': {
      type: 'boolean',
      description: 'do not run the SC-002 master-stop drill (reported as not run)',
    },
    'failover-hold': {
      type: 'string',
      description:
        "how long the SC-002 drill keeps the master stopped (default: the replica's liveness window, read from its StatefulSet, plus 5s; never less than that window)",
    },
    recheck: {
      type: 'boolean',
      description: 'prove again what an earlier run already proved (Jobs, drills)',
    },
  },
  next: (ctx) =>
    `04-monitoring wires the metrics and alerts: ${ctx.commandLine({ runbook: '04-monitoring' })} (--dry-run first shows every change)`,
  steps: [
    restoreStep('P01'),
    strictCheck({
      id: 'T016',
      title: 'Verify ClusterIP service redis-shared-master exists (created by Helm chart)',
      check: async (ctx) => {
        const ns = ctx.cfg.redis.namespace;
        const name = `${ctx.cfg.redis.release}-master`;
        // biome-ignore lint/suspicious/noExplicitAny: Service and Endpoints objects
        const svc = await ctx.kube.get<any>('v1', 'Service', name, ns);
        // biome-ignore lint/suspicious/noExplicitAny: Service and Endpoints objects
        const ep = await ctx.kube.get<any>('v1', 'Endpoints', name, ns);
        const ready = (ep?.subsets ?? []).flatMap(
          (s: { addresses?: unknown[] }) => s.addresses ?? [],
        ).length;
        const ok = svc?.spec?.type === 'ClusterIP' && ready >= 1;
        return ok
          ? {
              ok,
              detail: `Service ${ns}/${name}: ClusterIP ${svc.spec.clusterIP}, port ${svc.spec.ports?.[0]?.port}, ${ready} ready endpoint(s)`,
            }
          : {
              ok,
              detail: `Service ${ns}/${name}: ${svc ? `type ${svc.spec?.type}, ${ready} ready endpoint(s)` : 'not found'}`,
              fix: 'run ./runbooks/02-deploy.mts; check the master pod is Ready',
            };
      },
    }),
    strictCheck({
      id: 'T017',
      title:
        'Test connectivity from inside the cluster with the probe Job (password by secretKeyRef only; tasks.md: test-connectivity.sh)',
      check: async (ctx) => {
        const manifest = await probeJob(ctx);
        const password = await operatorPassword(ctx);
        const container = manifest.spec.template.spec.containers[0];
        const refs = container.env.map(
          (e: { valueFrom?: { secretKeyRef?: { name: string; key: string } } }) =>
            `secretKeyRef ${e.valueFrom?.secretKeyRef?.name}/${e.valueFrom?.secretKeyRef?.key}`,
        );
        const { manifestHasLiteral } = await probeJobs();
        return manifestHasLiteral(manifest, password)
          ? {
              ok: false,
              detail: 'the probe Job would carry the password as a literal',
              fix: 'a bug in lib/cluster/probe-job.ts: report it',
            }
          : {
              ok: true,
              detail: `Job ${manifest.metadata.name} in ${manifest.metadata.namespace}, image ${container.image}, password from ${refs.join(', ')}`,
            };
      },
    }),
    {
      id: 'T018',
      title: 'Execute connectivity test from cluster pod (redis-cli connect, auth, SET/GET)',
      risk: 'change',
      impact: 'creates a short-lived Job in the beersystem namespace (deleted afterwards)',
      done: (ctx) => proven(ctx, 'US1-AS-1', 'SC-001'),
      run: async (ctx) => {
        const result = await runJob(ctx, await probeJob(ctx));
        if (!result) return; // dry run: the Job was not created
        const { parseProbeOutput } = await probeJobs();
        const out = parseProbeOutput(result.log);
        await recordProbe(ctx, out);
        ctx.state.freshProbe = true;
        if (!out.complete || !result.succeeded) {
          throw new Error(`the probe Job did not finish its script; its log:\n${result.log}`);
        }
        if (!(out.pong && out.getMatched && out.resolved)) {
          throw new Error('US1 AS-1 not met (see the evidence line above)');
        }
      },
    },
    strictCheck({
      id: 'T019',
      title:
        'Test replication with the probe Job: INFO on both, a marker master → replica (tasks.md: test-replication.sh)',
      check: async (ctx) => {
        const script: string = (await probeJob(ctx)).spec.template.spec.containers[0].command[2];
        const missing = ['==info-master==', '==info-replica==', '==marker=='].filter(
          (p) => !script.includes(p),
        );
        return missing.length === 0
          ? {
              ok: true,
              detail:
                'the probe Job reads INFO replication on both and a marker written to the master on the replica',
            }
          : {
              ok: false,
              detail: `the probe Job lacks ${missing.join(', ')}`,
              fix: 'a bug in lib/cluster/probe-job.ts: report it',
            };
      },
    }),
    {
      id: 'T020',
      title: 'Execute replication test (write to primary, read from replica)',
      risk: 'read',
      skip: async (ctx) =>
        ctx.dryRun && !(await ctx.recall(PROBE_NOTE))
          ? 'dry run: the probe Job (T018) did not run'
          : undefined,
      done: async (ctx) => (await proven(ctx, 'US1-AS-2')) && !ctx.state.freshProbe,
      // run() throws when the evidence is not met.
      verify: () => true,
      run: async (ctx) => {
        const out = await ctx.recall<ProbeOutput>(PROBE_NOTE);
        if (!out)
          throw new Error('no probe output: run T018 first (./runbooks/03-access.mts --from T018)');
        const j = replicationJudgement(out);
        await recordProof(
          ctx,
          'US1-AS-2',
          `data written to the master is read on the replica: ${j.detail}: ${metWord(j.ok)}`,
          {
            markerTries: out.markerTries ?? null,
            master: out.master,
            replica: out.replica,
            met: j.ok,
          },
        );
        if (!j.ok) throw new Error(`${j.detail}. Fix: ${j.fix}`);
      },
    },
    strictCheck({
      id: 'T021',
      title: 'Validate US1 acceptance criteria (AS-1, AS-2, AS-3 from spec.md)',
      skip: async (ctx) =>
        ctx.dryRun && !(await ctx.recall(PROBE_NOTE))
          ? 'dry run: the probe Job (T018) did not run'
          : undefined,
      check: async (ctx) => {
        const ns = ctx.cfg.redis.namespace;
        const n = names(ctx);
        const pods = await ctx.kube.pods(ns, `app.kubernetes.io/instance=${ctx.cfg.redis.release}`);
        const wanted = [n.master.pod, n.replica.pod];
        const ready = wanted.filter((w) => pods.some((p) => p.name === w && p.ready));
        const as1 = await ctx.recall<{ met?: boolean }>('evidence.US1-AS-1');
        const as2 = await ctx.recall<{ met?: boolean }>('evidence.US1-AS-2');
        const as3 = ready.length === wanted.length;
        await recordProof(
          ctx,
          'US1-AS-3',
          `both instances healthy: ${ready.length}/${wanted.length} pods Ready (${wanted.join(', ')}): ${metWord(as3)}`,
          {
            ready,
            met: as3,
          },
        );
        const ok = as1?.met === true && as2?.met === true && as3;
        const detail = `US1 AS-1 ${metWord(as1?.met === true)}, AS-2 ${metWord(as2?.met === true)}, AS-3 ${metWord(as3)}`;
        return ok
          ? { ok, detail }
          : { ok, detail, fix: 'see the evidence lines above; --recheck proves them again' };
      },
    }),
    strictCheck({
      id: 'T026',
      title:
        'Check the LoadBalancer Service redis-shared-external (terraform/modules/redis-shared/services.tf)',
      check: async (ctx) => {
        const { namespace, privateCidr, lbIp } = ctx.cfg.redis;
        const name = names(ctx).external;
        // biome-ignore lint/suspicious/noExplicitAny: Service
        const svc = await ctx.kube.get<any>('v1', 'Service', name, namespace);
        if (!svc)
          return {
            ok: false,
            detail: `Service ${namespace}/${name} not found`,
            fix: 'run ./runbooks/02-deploy.mts',
          };
        const ranges: string[] = svc.spec?.loadBalancerSourceRanges ?? [];
        const ok =
          svc.spec?.type === 'LoadBalancer' && ranges.length === 1 && ranges[0] === privateCidr;
        ctx.state.sourceRanges = ranges;
        return ok
          ? {
              ok,
              detail: `Service ${namespace}/${name}: LoadBalancer for ${lbIp}, loadBalancerSourceRanges [${ranges.join(', ')}] = PRIVATE_CIDR`,
            }
          : {
              ok,
              detail: `Service ${namespace}/${name}: type ${svc.spec?.type}, loadBalancerSourceRanges [${ranges.join(', ')}] (want exactly ${privateCidr})`,
              fix: 'the module sets load_balancer_source_ranges = [private_cidr]; apply again with 02-deploy',
            };
      },
    }),
    strictCheck({
      id: 'T027',
      title:
        'Check the MetalLB annotations: address and pool (terraform/modules/redis-shared/services.tf)',
      check: async (ctx) => {
        const { namespace, metallbPool } = ctx.cfg.redis;
        const name = names(ctx).external;
        // biome-ignore lint/suspicious/noExplicitAny: Service
        const svc = await ctx.kube.get<any>('v1', 'Service', name, namespace);
        const a = svc?.metadata?.annotations ?? {};
        const pool = a['metallb.io/address-pool'] ?? a['metallb.universe.tf/address-pool'];
        return pool === metallbPool
          ? { ok: true, detail: `address pool ${pool}` }
          : {
              ok: false,
              detail: `address pool annotation ${pool ?? 'missing'} (want ${metallbPool})`,
              fix: 'set metallb_pool and apply again',
            };
      },
    }),
    {
      id: 'T028',
      title: 'Verify MetalLB assigned the LoadBalancer IP (applied by 02-deploy)',
      risk: 'read',
      run: async (ctx) => {
        const { namespace, lbIp } = ctx.cfg.redis;
        const name = names(ctx).external;
        try {
          await ctx.waitFor(
            `${namespace}/${name} gets ${lbIp}`,
            async () =>
              (await ctx.kube.serviceIngress(namespace, name)).includes(lbIp) ? lbIp : undefined,
            { intervalMs: 1000 },
          );
        } catch (err) {
          if (!isWaitTimeout(err)) throw err;
          const got = await ctx.kube.serviceIngress(namespace, name);
          const events = (await ctx.kube.events(namespace, 'Service', name)).map(
            (e) => `${e.reason}: ${e.message}`,
          );
          throw new Error(
            `${namespace}/${name} has [${got.join(', ')}], not ${lbIp}${events.length ? ` (events: ${events.join(' | ')})` : ''}. Check the MetalLB pool and kubectl describe svc ${name} -n ${namespace}`,
          );
        }
        ctx.log.info(`  ✓ ${namespace}/${name} has ${lbIp}`);
      },
      done: async (ctx) =>
        (await ctx.kube.serviceIngress(ctx.cfg.redis.namespace, names(ctx).external)).includes(
          ctx.cfg.redis.lbIp,
        ),
    },
    strictCheck({
      id: 'T029',
      title:
        'Test the private network from this machine: inside reaches, outside is dropped (tasks.md: test-private-network.sh)',
      check: async (ctx) => {
        const { outsideProbeSource, privateCidr } = ctx.cfg.redis;
        await operatorPassword(ctx);
        if (!outsideProbeSource) {
          return {
            ok: true,
            detail:
              'password read from the Secret (masked); no OUTSIDE_PROBE_SOURCE: SC-004 can only be configured, not proven (set it to an address of this machine outside PRIVATE_CIDR)',
          };
        }
        const inside = judgeAddressInCidr(outsideProbeSource, privateCidr).ok;
        return inside
          ? {
              ok: false,
              detail: `OUTSIDE_PROBE_SOURCE ${outsideProbeSource} is inside PRIVATE_CIDR ${privateCidr}: it proves nothing`,
              fix: 'set OUTSIDE_PROBE_SOURCE to a local address outside the private network, or leave it empty',
            }
          : {
              ok: true,
              detail: `password read from the Secret (masked); SC-004 probe from ${outsideProbeSource}`,
            };
      },
    }),
    {
      id: 'T030',
      title: 'Validate US2 acceptance criteria (AS-1, AS-2, AS-3 from spec.md)',
      risk: 'read',
      // SC-004 may stay "not proven" (no OUTSIDE_PROBE_SOURCE): configured is not proven, and
      // the report says so and what to set.
      done: async (ctx) =>
        (await proven(ctx, 'US2-AS-1', 'US2-AS-3', 'SC-003', 'SC-008')) &&
        (await judged(ctx, 'SC-004', 'US2-AS-2')),
      run: async (ctx) => {
        const failures = await validateUs2(ctx);
        if (failures.length > 0)
          throw new Error(`not met: ${failures.join(', ')} (see the evidence lines above)`);
      },
    },
    {
      id: 'T021-SC007',
      title:
        'Validate SC-007 (T021): acknowledged writes survive a restart of the master pod (drill)',
      risk: 'high',
      impact:
        'deletes pod redis-shared-master-0: writes fail until the StatefulSet has restarted it (seconds)',
      skip: (ctx) =>
        ctx.flags['skip-restart-drill']
          ? '--skip-restart-drill: SC-007 not proven by this run'
          : undefined,
      done: (ctx) => proven(ctx, 'SC-007'),
      run: restartDrill,
      undo: (ctx) =>
        `nothing to undo: the StatefulSet recreates the pod; check ${ctx.kubectlLine(['get', 'pods', '-n', ctx.cfg.redis.namespace])}`,
    },
    {
      id: 'T021-SC002',
      title:
        'Validate SC-002 (T021): reads from the replica keep succeeding while the master is stopped (drill)',
      risk: 'high',
      impact:
        'scales StatefulSet redis-shared-master to 0: every write to redis-shared fails until it is restored',
      skip: (ctx) =>
        ctx.flags['skip-failover-drill']
          ? '--skip-failover-drill: SC-002 not proven by this run'
          : undefined,
      done: (ctx) => proven(ctx, 'SC-002'),
      run: failoverDrill,
      undo: (ctx) =>
        `${ctx.kubectlLine(['scale', 'statefulset', `${ctx.cfg.redis.release}-master`, '-n', ctx.cfg.redis.namespace, '--replicas=1'])} (or re-run this runbook: ${ctx.commandLine({ mode: 'default' })}; P01 restores it)`,
    },
  ],
});

/** US2 from this machine: AS-1 (address + commands), AS-3 (auth), SC-003, SC-008, AS-2/SC-004. */
async function validateUs2(ctx: StepContext): Promise<string[]> {
  const probe = await import('../lib/redis/redis-probe.ts');
  const { probeFromSource } = await import('../lib/redis/source-probe.ts');
  const { lbIp, port, privateCidr, outsideProbeSource } = ctx.cfg.redis;
  const target = await lbTarget(ctx);
  const failures: string[] = [];
  const judge = async (
    id: EvidenceId,
    ok: boolean,
    line: string,
    value: Record<string, unknown>,
  ) => {
    await recordProof(ctx, id, `${line}: ${metWord(ok)}`, { ...value, met: ok });
    if (!ok) failures.push(id);
  };

  // A dry run writes nothing, not even a probe key: round trips are PINGs then.
  const conn = ctx.dryRun
    ? await probe.measureLatency(target, { samples: LB_ROUND_TRIPS }).then((r) => ({
        ...r,
        value: r.value ? { latency: r.value } : undefined,
      }))
    : await probe.probeConnectivity(target, { samples: LB_ROUND_TRIPS });
  await judge('US2-AS-1', conn.ok, `from this machine to ${lbIp}:${port}: ${conn.evidence}`, {
    address: lbIp,
    latency: conn.value?.latency ?? null,
  });
  const p95 = conn.value?.latency.p95Ms;
  const sc003 = conn.ok && p95 !== undefined ? judgeLatency('SC-003', p95) : undefined;
  const sc003Line = sc003
    ? `${sc003.text}; ${LB_ROUND_TRIPS} PINGs to ${lbIp}:${port}`
    : `SC-003 NOT met: no round trip to ${lbIp}:${port} succeeded`;
  await recordProof(ctx, 'SC-003', sc003Line, {
    p95Ms: p95 ?? null,
    samples: LB_ROUND_TRIPS,
    command: `PING × ${LB_ROUND_TRIPS} to ${lbIp}:${port}`,
    met: sc003?.met ?? false,
  });
  if (!sc003?.met) failures.push('SC-003');

  if (!ctx.dryRun) {
    const structures = await dataStructures(ctx, target);
    await judge('US2-AS-3', structures.ok, `with the password: ${structures.detail}`, {});
  }

  let refusedNoPassword = 0;
  let refusedWrongPassword = 0;
  for (let i = 0; i < AUTH_ATTEMPTS; i++) {
    if ((await probe.probeAuthRequired({ host: lbIp, port })).ok) refusedNoPassword++;
    const wrong = await probe.probeConnectivity(
      { host: lbIp, port, password: `wrong-${i}-not-the-password` },
      { samples: 1 },
    );
    if (!wrong.ok && /WRONGPASS|invalid password/i.test(wrong.evidence)) refusedWrongPassword++;
  }
  await judge(
    'SC-008',
    refusedNoPassword === AUTH_ATTEMPTS && refusedWrongPassword === AUTH_ATTEMPTS,
    `${refusedNoPassword}/${AUTH_ATTEMPTS} connections without a password and ${refusedWrongPassword}/${AUTH_ATTEMPTS} with a wrong one refused`,
    { attempts: AUTH_ATTEMPTS, refusedNoPassword, refusedWrongPassword },
  );

  const ranges = (ctx.state.sourceRanges as string[] | undefined) ?? [];
  // Outside and inside probes in the same window: the inside one shows this machine reaches the
  // LoadBalancer at all, so that a blocked outside probe means the range, not a dead path.
  const outside: SourceProbeResult[] = [];
  const inside: SourceProbeResult[] = [];
  if (outsideProbeSource) {
    for (let i = 0; i < 3; i++) {
      const [o, n] = await Promise.all([
        probeFromSource(outsideProbeSource, lbIp, port),
        probeFromSource(undefined, lbIp, port),
      ]);
      outside.push(o);
      inside.push(n);
    }
  }
  const sc004 = judgeSourceRange({
    ranges,
    privateCidr,
    outsideSource: outsideProbeSource || undefined,
    outside,
    inside,
    inPrivate: (ip) => judgeAddressInCidr(ip, privateCidr).ok,
  });
  const data = { ranges, source: outsideProbeSource || null, outside, inside };
  for (const id of ['SC-004', 'US2-AS-2'] as const) {
    const line = id === 'SC-004' ? sc004.text : `${sc004.text.replace(/^SC-004 /, '')}`;
    if (sc004.verdict === 'not proven') {
      await recordNotProven(ctx, id, `${line}; to prove it: ${sc004.toProve}`, {
        ...data,
        toProve: sc004.toProve ?? '',
      });
    } else {
      await recordProof(ctx, id, line, { ...data, met: sc004.verdict === 'met' });
      if (sc004.verdict !== 'met') failures.push(id);
    }
  }
  return failures;
}

/** FR-014 / US2 AS-3: strings, lists, sets, sorted sets and hashes all work with the password. */
async function dataStructures(
  ctx: StepContext,
  target: { host: string; port: number; password: string },
): Promise<Judgement> {
  const { openRedis } = await import('../lib/redis/redis-probe.ts');
  const key = (kind: string) => `runbook:probe:${ctx.runId}:${kind}`;
  let client: Awaited<ReturnType<typeof openRedis>> | undefined;
  try {
    client = await openRedis(target);
    const results = await Promise.all([
      client.set(key('string'), 'v', 'EX', 60),
      client.rpush(key('list'), 'a', 'b'),
      client.sadd(key('set'), 'a', 'b'),
      client.zadd(key('zset'), 1, 'a'),
      client.hset(key('hash'), 'f', 'v'),
    ]);
    await client.del(key('string'), key('list'), key('set'), key('zset'), key('hash'));
    return {
      ok: true,
      detail: `SET ${results[0]}, RPUSH ${results[1]}, SADD ${results[2]}, ZADD ${results[3]}, HSET ${results[4]}`,
    };
  } catch (err) {
    return { ok: false, detail: (err as Error).message };
  } finally {
    client?.disconnect();
  }
}

async function restartDrill(ctx: StepContext): Promise<void> {
  const { writePersistenceMarker, checkPersistenceMarker } = await import(
    '../lib/redis/redis-probe.ts'
  );
  const ns = ctx.cfg.redis.namespace;
  const n = names(ctx);
  if (ctx.dryRun) {
    ctx.log.info(
      `would write ${RESTART_MARKERS} markers through ${ctx.cfg.redis.lbIp}, restart the master, read them back`,
    );
    await ctx.kubectl`delete pod ${n.master.pod} -n ${ns} --wait=false`;
    return;
  }
  const target = await lbTarget(ctx);
  const markers = [];
  for (let i = 0; i < RESTART_MARKERS; i++) {
    const written = await writePersistenceMarker(target);
    if (!written.ok || !written.value)
      throw new Error(`writing marker ${i + 1} failed: ${written.evidence}`);
    markers.push({ key: written.value.key, value: written.value.value });
  }
  const uid = async () =>
    (await ctx.kube.get('v1', 'Pod', n.master.pod, ns))?.metadata.uid ?? 'none';
  const before = await uid();
  // Not kubectl's own wait: up to 1.32 it lists by name after its first read, and a pod the
  // StatefulSet has already recreated under the same name hides the deletion from it for ever.
  // The wait below tells the pods apart by UID.
  await ctx.kubectl`delete pod ${n.master.pod} -n ${ns} --wait=false`;
  const back = await ctx.waitFor(
    `${ns}/${n.master.pod} recreated and Ready`,
    async () => {
      const p = (await ctx.kube.pods(ns, '')).find((x) => x.name === n.master.pod);
      return p?.ready && !p.deleting && (await uid()) !== before ? p : undefined;
    },
    { intervalMs: 500 },
  );
  if (!back) return; // dry run: the pod was not deleted
  const reachable = await ctx.waitFor(
    `${ctx.cfg.redis.lbIp} answers again`,
    async () => {
      const { probeConnectivity } = await import('../lib/redis/redis-probe.ts');
      return (await probeConnectivity(target, { samples: 1 })).ok || undefined;
    },
    { intervalMs: 500 },
  );
  if (!reachable)
    throw new Error('redis-shared did not answer through the LoadBalancer after the restart');
  let found = 0;
  for (const marker of markers) if ((await checkPersistenceMarker(target, marker)).ok) found++;
  const ok = found === markers.length;
  await recordProof(
    ctx,
    'SC-007',
    `${found}/${markers.length} acknowledged markers read back after ${n.master.pod} was restarted: ${metWord(ok)}`,
    {
      written: markers.length,
      found,
      pod: n.master.pod,
      command: `kubectl delete pod ${n.master.pod} -n ${ns} --wait=false`,
      met: ok,
    },
  );
  if (!ok)
    throw new Error(
      `SC-007 not met: ${markers.length - found} acknowledged write(s) lost across the restart`,
    );
}

/**
 * The replica's liveness window as the cluster has it: periodSeconds × failureThreshold +
 * timeoutSeconds of the redis container's livenessProbe in the replica StatefulSet. A master
 * outage shorter than that cannot show whether the replica's probes restart it.
 */
async function replicaLivenessWindowMs(ctx: StepContext): Promise<number> {
  const { release, namespace } = ctx.cfg.redis;
  const set = await ctx.kube.statefulSet(namespace, `${release}-replicas`);
  // biome-ignore lint/suspicious/noExplicitAny: the pod template as the API returns it
  const containers: any[] = (set?.raw as any)?.spec?.template?.spec?.containers ?? [];
  const probe = containers.find((c) => c.name === 'redis')?.livenessProbe;
  if (!probe)
    throw new Error(
      `${namespace}/${release}-replicas has no livenessProbe on its redis container; run ./runbooks/02-deploy.mts`,
    );
  // The API's defaults for a field the chart left out (core/v1 Probe).
  const period = Number(probe.periodSeconds ?? 10);
  const failures = Number(probe.failureThreshold ?? 3);
  const timeout = Number(probe.timeoutSeconds ?? 1);
  return (period * failures + timeout) * 1000;
}

async function failoverDrill(ctx: StepContext): Promise<void> {
  const { openRedis } = await import('../lib/redis/redis-probe.ts');
  const ns = ctx.cfg.redis.namespace;
  const n = names(ctx);
  const windowMs = ctx.dryRun ? 0 : await replicaLivenessWindowMs(ctx);
  const asked = ctx.flags['failover-hold'];
  const holdMs = asked === undefined ? windowMs + 5000 : parseDuration(String(asked));
  if (holdMs === undefined) throw new Error('--failover-hold takes a duration such as 15s or 1m');
  if (holdMs <= windowMs)
    throw new Error(
      `--failover-hold ${holdMs / 1000}s is not longer than the replica's liveness window (${windowMs / 1000}s = periodSeconds × failureThreshold + timeoutSeconds of its livenessProbe): a shorter outage cannot show whether the replica survives. Give at least ${Math.ceil(windowMs / 1000) + 1}s, or leave the flag out`,
    );
  if (ctx.dryRun) {
    ctx.log.info(
      `would read through ${n.replica.host} in a Job while the master is stopped for longer than the replica's liveness window`,
    );
    await ctx.kubectl`scale statefulset ${n.master.set} -n ${ns} --replicas=0`;
    await ctx.kubectl`scale statefulset ${n.master.set} -n ${ns} --replicas=1`;
    return;
  }
  const target = await lbTarget(ctx);
  const markerKey = `runbook:drill:${ctx.runId}:marker`;
  const doneKey = `runbook:drill:${ctx.runId}:done`;
  const client = await openRedis(target);
  await client.set(markerKey, 'replicated', 'EX', 3600);
  client.disconnect();
  const { readLoopJobManifest, parseReadLoopOutput, MARKER_SEEN } = await probeJobs();
  const manifest = readLoopJobManifest({
    name: jobName(ctx, 'reads'),
    namespace: ctx.cfg.beersystem.namespace,
    image: await probeImage(ctx),
    secretName: ctx.cfg.redis.secretName,
    secretKey: ctx.cfg.redis.secretKey,
    // As an application reads: through the replicas Service, which keeps only Ready replicas.
    replicaHost: n.replica.host,
    port: ctx.cfg.redis.port,
    markerKey,
    doneKey,
    maxSeconds: Math.ceil((holdMs + 2 * ctx.cfg.timeouts.waitMs) / 1000),
  });
  const replicaState = async () =>
    (await ctx.kube.pods(ns, '')).find((p) => p.name === n.replica.pod);
  let stoppedAt = 0;
  let restoredAt = 0;
  let stopped = false;
  let restartsBefore = 0;
  let restartsAfter = 0;
  let notReadySeen = 0;
  try {
    const result = await runJob(ctx, manifest, async () => {
      // Stopping the master before the replica has the marker would prove nothing.
      await ctx.waitFor(
        `${n.replica.pod} to have the marker written to the master`,
        async () =>
          (await ctx.kube.jobLogs(manifest.metadata.namespace, manifest.metadata.name)).includes(
            MARKER_SEEN,
          ) || undefined,
        { intervalMs: 500 },
      );
      restartsBefore = (await replicaState())?.restarts ?? 0;
      await stopForDrill(ctx, ns, n.master.set);
      stopped = true;
      const gone = await ctx.waitFor(
        `${ns}/${n.master.pod} stopped`,
        async () =>
          (await ctx.kube.pods(ns, '')).some((p) => p.name === n.master.pod) ? undefined : true,
        { intervalMs: 500 },
      );
      if (!gone) return;
      stoppedAt = Date.now();
      ctx.log.info(
        `  master stopped; reads through ${n.replica.host} go on for ${holdMs / 1000}s (the replica's liveness window is ${windowMs / 1000}s)`,
      );
      // The outage the drill is about, longer than the replica's liveness window; the replica
      // is watched all along: not Ready even once, or restarted, is not "met".
      while (Date.now() - stoppedAt < holdMs) {
        const replica = await replicaState();
        if (!replica?.ready) notReadySeen++;
        await sleep(Math.min(1000, Math.max(0, holdMs - (Date.now() - stoppedAt))), undefined, {
          signal: ctx.signal,
        });
      }
      restartsAfter = (await replicaState())?.restarts ?? restartsBefore;
      await restoreAfterDrill(ctx);
      stopped = false;
      restoredAt = Date.now();
      await ctx.waitFor(
        `${ns}/${n.master.pod} Ready again`,
        async () => (await ctx.kube.pods(ns, '')).find((p) => p.name === n.master.pod && p.ready),
        { intervalMs: 500 },
      );
      const back = await ctx.waitFor(
        `${ctx.cfg.redis.lbIp} takes writes again`,
        async () => {
          try {
            const c = await openRedis(target);
            try {
              return (await c.set(doneKey, 'done', 'EX', 3600)) === 'OK' || undefined;
            } finally {
              c.disconnect();
            }
          } catch {
            return undefined;
          }
        },
        { intervalMs: 500 },
      );
      if (!back) throw new Error('the master did not take writes again after the restore');
    });
    if (!result) return; // dry run
    const tally = parseReadLoopOutput(result.log);
    const restarted = restartsAfter - restartsBefore;
    const ok =
      tally !== undefined &&
      tally.failed === 0 &&
      tally.ok > 0 &&
      tally.sawDone &&
      restarted === 0 &&
      notReadySeen === 0;
    await recordProof(
      ctx,
      'SC-002',
      `reads through ${n.replica.host} every 200 ms before, during and after a ${((restoredAt - stoppedAt) / 1000).toFixed(1)}s stop of ${n.master.pod} (the replica's liveness window: ${windowMs / 1000}s): ${tally?.ok ?? 0} succeeded, ${tally?.failed ?? '?'} failed; ${n.replica.pod} restarted ${restarted} time(s) (restartCount ${restartsBefore} → ${restartsAfter}) and was seen not Ready ${notReadySeen} time(s) during the stop; replication ${tally?.sawDone ? 'healthy again (the done key reached the replica)' : 'NOT seen healthy again'}: ${metWord(ok)}`,
      {
        readsOk: tally?.ok ?? 0,
        readsFailed: tally?.failed ?? null,
        stoppedMs: restoredAt - stoppedAt,
        livenessWindowMs: windowMs,
        replicaRestartsBefore: restartsBefore,
        replicaRestartsAfter: restartsAfter,
        replicaNotReadySeen: notReadySeen,
        replicationRestored: tally?.sawDone ?? false,
        command: `kubectl scale statefulset ${n.master.set} -n ${ns} --replicas=0`,
        met: ok,
      },
    );
    if (!ok)
      throw new Error(
        `SC-002 not met${restarted > 0 || notReadySeen > 0 ? ` (${n.replica.pod} restarted ${restarted} time(s), not Ready ${notReadySeen} time(s) while the master was down: its probes must check only the local server, replica.customLivenessProbe/customReadinessProbe in values.yaml.tftpl)` : ''}; the read loop's log:\n${result.log}`,
      );
  } finally {
    // A failure halfway gives the master back at once; an interruption leaves it to P01.
    if (stopped && !ctx.signal.aborted) await restoreAfterDrill(ctx);
  }
}

await runMain(runbook, import.meta.url);
