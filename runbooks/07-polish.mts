#!/bin/sh
//bin/true; exec node --import "$(dirname "$(dirname "$(realpath "$0")")")/lib/ts-loader/register.mjs" "$0" "$@"
// Phase 7 (tasks.md T045–T048): measure redis-shared where the applications run (redis-benchmark
// as a Job) and from this machine through the LoadBalancer, regenerate the MetalLB address
// table from the cluster, and write the report of the whole change (Markdown + HTML).

import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { readAuditEntries } from '../lib/audit/audit.ts';
import {
  BENCHMARK_DEFAULTS,
  BENCHMARK_KEY,
  benchmarkJobManifest,
  summarizeBenchmark,
} from '../lib/cluster/benchmark-job.ts';
import { runJobToEnd } from '../lib/cluster/job-run.ts';
import { readNotes } from '../lib/engine/notes.ts';
import { defineRunbook, runMain, type StepContext } from '../lib/engine/runbook.ts';
import { sharedRedisTarget, withSharedRedis } from '../lib/phases/beersystem.ts';
import { ipAssignments, renderIpTable } from '../lib/phases/ip-table.ts';
import { sharedRedisHost } from '../lib/phases/migration.ts';
import { BENCHMARK_NOTE } from '../lib/phases/migration-notes.ts';
import { judgeLatency, judgeThroughput } from '../lib/phases/verdicts.ts';
import { parseRedisBenchmarkCsv, runBench } from '../lib/redis/bench.ts';
import { summarizeLatencies } from '../lib/redis/redis-probe.ts';

const JOB_LABELS = {
  'app.kubernetes.io/managed-by': 'redis-shared-runbooks',
  'app.kubernetes.io/component': 'benchmark',
};
const LB_ROUND_TRIPS = 2000;
const LB_BENCH_OPS = 50_000;

function jobOptions(ctx: StepContext) {
  const requests = Number(ctx.flags.requests ?? BENCHMARK_DEFAULTS.requests);
  if (!Number.isInteger(requests) || requests < 1) {
    throw new Error(
      `--requests ${ctx.flags.requests} is not a whole number above 0, e.g. --requests 100000`,
    );
  }
  return {
    ...BENCHMARK_DEFAULTS,
    tests: [...BENCHMARK_DEFAULTS.tests],
    requests,
    name: `redis-shared-benchmark-${ctx.runId.slice(-6)}`,
    namespace: ctx.cfg.beersystem.namespace,
    host: sharedRedisHost(ctx.cfg),
    port: ctx.cfg.redis.port,
    secretName: ctx.cfg.redis.secretName,
    secretKey: ctx.cfg.redis.secretKey,
    labels: JOB_LABELS,
  };
}

type Figures = { label: string; opsPerSec: number }[];

export const runbook = defineRunbook({
  id: '07-polish',
  title: 'Benchmark, address table and the report of the change',
  description:
    'Runs redis-benchmark as a Job next to the applications (SC-006, SC-001) and our own benchmark through the LoadBalancer from this machine (SC-003), writes the MetalLB address table to IP_TABLE_FILE (docs/ip-assignments.md), and the report of the whole change: SC-001…SC-010 with their evidence, the migration timeline and what changed, as Markdown and HTML.',
  requires: ['05-migrate'],
  flags: {
    requests: {
      type: 'string',
      description: `redis-benchmark -n (default ${BENCHMARK_DEFAULTS.requests})`,
    },
    'ip-table': {
      type: 'string',
      description:
        'where T047 writes the address table (default: IP_TABLE_FILE, docs/ip-assignments.md)',
    },
  },
  next: () =>
    "nothing remains: the change is complete. The report above is the pull request's body; checklists/ holds the manual form of every step",
  steps: [
    {
      id: 'T045',
      title: 'Create performance benchmark (redis-benchmark Job, target 10k ops/sec)',
      risk: 'read',
      run: (ctx) => {
        const o = jobOptions(ctx);
        ctx.state.job = benchmarkJobManifest(o);
        ctx.log.info(
          `Job ${o.namespace}/${o.name}: redis-benchmark -h ${o.host} -t ${o.tests.join(',')} -n ${o.requests} -c ${o.clients} -P ${o.pipeline} --csv, password from Secret ${o.secretName} by reference`,
        );
      },
    },
    {
      id: 'T046',
      title: 'Execute performance benchmark and validate SC-006 (≥10,000 ops/sec)',
      risk: 'high',
      impact: `redis-shared carries ${BENCHMARK_DEFAULTS.requests.toLocaleString('en-US')} benchmark requests per test on production for a few seconds`,
      run: async (ctx) => {
        const o = jobOptions(ctx);
        // Built again when T046 is resumed on its own (--from T046): T045 ran in another process.
        const job = ctx.state.job ?? benchmarkJobManifest(o);
        const ended = await runJobToEnd(
          ctx,
          { name: o.name, namespace: o.namespace, manifest: job },
          { apply: true, intervalMs: 250 },
        );
        if (!ended) return;
        if (!ended.succeeded)
          throw new Error(`the benchmark Job failed; its log:\n${ended.log.slice(-2000)}`);
        const log = ended.log;
        const summary = summarizeBenchmark(parseRedisBenchmarkCsv(log));
        const throughput = judgeThroughput(summary.minRps);
        const latency = judgeLatency('SC-001', summary.maxP95Ms);
        await ctx.evidence('SC-006', `${throughput.text}; in cluster: ${summary.line}`, {
          met: throughput.met,
          minRps: summary.minRps,
        });
        await ctx.evidence('SC-001', `${latency.text}; redis-benchmark Job in ${o.namespace}`, {
          met: latency.met,
          p95Ms: summary.maxP95Ms,
        });
        const figures: Figures = summary.rows.map((r) => ({
          label: `${r.test} (in cluster, Job)`,
          opsPerSec: r.rps,
        }));
        ctx.state.figures = figures;
        await withSharedRedis(ctx, 'runbook-07', (client) => client.del(BENCHMARK_KEY));
      },
      undo: (ctx) =>
        ctx.kubectlLine([
          'delete',
          'job',
          '-l',
          'app.kubernetes.io/component=benchmark',
          '-n',
          ctx.cfg.beersystem.namespace,
        ]),
    },
    {
      id: 'P01',
      title: 'Benchmark through the LoadBalancer from this machine (SC-003)',
      risk: 'high',
      impact: 'redis-shared carries a short benchmark from this machine',
      run: async (ctx) => {
        if (ctx.dryRun) {
          ctx.log.info(
            `would benchmark ${ctx.cfg.redis.lbIp}:${ctx.cfg.redis.port} (${LB_BENCH_OPS} operations, then ${LB_ROUND_TRIPS} timed round trips)`,
          );
          return;
        }
        const { latencyHistogram, sampleRoundTrips } = await import(
          '../lib/redis/latency-histogram.ts'
        );
        const target = await sharedRedisTarget(ctx, 'runbook-07-bench');
        const bench = await runBench(target, { connections: 50, totalOps: LB_BENCH_OPS });
        const samples = await sampleRoundTrips(target, LB_ROUND_TRIPS);
        const lat = summarizeLatencies(samples);
        const verdict = judgeLatency('SC-003', lat.p95Ms);
        await ctx.evidence(
          'SC-003',
          `${verdict.text}; ${lat.samples} round trips to ${ctx.cfg.redis.lbIp}: p50 ${lat.p50Ms.toFixed(2)} ms, p99 ${lat.p99Ms.toFixed(2)} ms; benchmark ${bench.opsPerSec.toLocaleString('en-US')} ops/s at 50 connections`,
          { met: verdict.met, p95Ms: lat.p95Ms, opsPerSec: bench.opsPerSec },
        );
        const figures = [
          ...((ctx.state.figures as Figures | undefined) ?? []),
          { label: 'SET/GET (through the LB)', opsPerSec: bench.opsPerSec },
        ];
        await ctx.note(BENCHMARK_NOTE, {
          throughput: figures,
          histogram: latencyHistogram(samples),
          histogramLabel: `${lat.samples} round trips through the LoadBalancer ${ctx.cfg.redis.lbIp}`,
        });
      },
    },
    {
      id: 'T047',
      title: 'Update MetalLB IP assignment table (add 192.168.4.203 - redis-shared-external)',
      risk: 'read',
      run: async (ctx) => {
        const kube = ctx.kube;
        const services = await kube.list('v1', 'Service');
        const pools = await kube.list('metallb.io/v1beta1', 'IPAddressPool');
        const rows = ipAssignments(services, pools);
        const ours = rows.find((r) => r.name === `${ctx.cfg.redis.release}-external`);
        if (ours?.ip !== ctx.cfg.redis.lbIp) {
          throw new Error(
            `${ctx.cfg.redis.release}-external has ${ours?.ip ?? 'no address'}, not ${ctx.cfg.redis.lbIp}: see ./runbooks/03-access.mts (T028)`,
          );
        }
        const flag = ctx.flags['ip-table'];
        const path =
          typeof flag === 'string'
            ? resolve((await import('../lib/config.ts')).REPO_ROOT, flag)
            : ctx.cfg.ipTableFile;
        for (const r of rows)
          ctx.log.info(`  ${r.ip.padEnd(16)} ${r.pool.padEnd(12)} ${r.namespace}/${r.name}`);
        if (ctx.dryRun) {
          ctx.log.info(`would write ${path}`);
          return;
        }
        const text = renderIpTable(rows, {
          context: ctx.cfg.kubeContext,
          generatedAt: new Date().toISOString(),
          runId: ctx.runId,
        });
        await mkdir(dirname(path), { recursive: true });
        await writeFile(path, text);
        ctx.log.info(`written: ${path}`);
      },
    },
    {
      id: 'T048',
      title: 'Generate pull request with summary of changes and migration notes',
      risk: 'read',
      run: async (ctx) => {
        if (ctx.dryRun) {
          ctx.log.info(`would write the report (Markdown and HTML) to ${ctx.cfg.reportsDir}`);
          return;
        }
        // The report's code and 05's step list are loaded here: --help and the other steps need neither.
        const [{ runbook: migrate }, { buildReport }, { writeReportFiles }] = await Promise.all([
          import('./05-migrate.mts'),
          import('../lib/phases/report.ts'),
          import('../lib/phases/report-files.ts'),
        ]);
        const stepTitles = Object.fromEntries(migrate.steps.map((s) => [s.id, s.title]));
        const report = buildReport({
          notes: await readNotes(ctx.cfg.auditLog),
          audit: await readAuditEntries(ctx.cfg.auditLog),
          stepTitles,
        });
        const files = await writeReportFiles(ctx.cfg.reportsDir, report);
        ctx.setReport(files.markdown);
        const met = report.criteria.filter((r) => r.verdict === 'met').length;
        ctx.log.info(
          `report: ${files.markdown} (pull-request body) and ${files.html}: ${met} of ${report.criteria.length} success criteria met`,
        );
      },
    },
  ],
});

await runMain(runbook, import.meta.url);
