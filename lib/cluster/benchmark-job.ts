// T045/T046: redis-benchmark as a short-lived Job inside the cluster (docs/architecture.md), so SC-006 and
// SC-001 are measured where the applications run. The password reaches redis-benchmark from the
// Secret by reference: redis-benchmark 7 reads no REDISCLI_AUTH and takes it only with -a, so a
// shell in the container expands it from an env var — the Job spec never holds the value (the
// benchmark process's argv inside the pod does; nothing outside the pod sees it).
import type { RedisBenchmarkRow } from '../redis/bench.ts';

export interface BenchmarkJobOptions {
  name: string;
  namespace: string;
  /** Service DNS name of the Redis to load, e.g. redis-shared-master.redis.svc.cluster.local */
  host: string;
  port: number;
  secretName: string;
  secretKey: string;
  /** redis-benchmark -n */
  requests: number;
  /** -c */
  clients: number;
  /** -P */
  pipeline: number;
  /** -t */
  tests: string[];
  image: string;
  /** labels that let the runbook find and remove its Jobs */
  labels: Record<string, string>;
  activeDeadlineSeconds: number;
}

export const BENCHMARK_DEFAULTS = {
  requests: 100_000,
  clients: 50,
  pipeline: 1,
  tests: ['set', 'get'],
  image: 'docker.io/bitnamilegacy/redis:8.2',
  activeDeadlineSeconds: 300,
} as const;

/** The key redis-benchmark writes without -r; removed after the run. */
export const BENCHMARK_KEY = 'key:__rand_int__';

const PASSWORD_ENV = 'REDIS_PASSWORD';

function shellWord(value: string | number): string {
  const text = String(value);
  return /^[\w.,:/-]+$/.test(text) ? text : `'${text.replace(/'/g, `'\\''`)}'`;
}

/** The shell line run in the container: the password only as "$REDIS_PASSWORD". */
export function benchmarkScript(
  o: Omit<
    BenchmarkJobOptions,
    'name' | 'namespace' | 'secretName' | 'secretKey' | 'image' | 'labels' | 'activeDeadlineSeconds'
  >,
): string {
  return [
    'exec redis-benchmark',
    `-h ${shellWord(o.host)}`,
    `-p ${shellWord(o.port)}`,
    `-a "$${PASSWORD_ENV}"`,
    `-t ${shellWord(o.tests.join(','))}`,
    `-n ${shellWord(o.requests)}`,
    `-c ${shellWord(o.clients)}`,
    `-P ${shellWord(o.pipeline)}`,
    '--csv',
  ].join(' ');
}

export function benchmarkJobManifest(o: BenchmarkJobOptions): Record<string, unknown> {
  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: { name: o.name, namespace: o.namespace, labels: o.labels },
    spec: {
      backoffLimit: 0,
      activeDeadlineSeconds: o.activeDeadlineSeconds,
      ttlSecondsAfterFinished: 3600,
      template: {
        metadata: { labels: o.labels },
        spec: {
          restartPolicy: 'Never',
          automountServiceAccountToken: false,
          containers: [
            {
              name: 'redis-benchmark',
              image: o.image,
              command: ['sh', '-c', benchmarkScript(o)],
              env: [
                {
                  name: PASSWORD_ENV,
                  valueFrom: { secretKeyRef: { name: o.secretName, key: o.secretKey } },
                },
              ],
              resources: {
                requests: { cpu: '100m', memory: '32Mi' },
                limits: { cpu: '1', memory: '128Mi' },
              },
            },
          ],
        },
      },
    },
  };
}

export interface BenchmarkSummary {
  /** the slowest test's requests per second: what SC-006 is judged on */
  minRps: number;
  /** the worst p95 across tests: what SC-001 is judged on */
  maxP95Ms: number;
  rows: RedisBenchmarkRow[];
  line: string;
}

export function summarizeBenchmark(rows: readonly RedisBenchmarkRow[]): BenchmarkSummary {
  if (!rows.length)
    throw new Error('redis-benchmark printed no result rows: read the Job log above');
  const minRps = Math.min(...rows.map((r) => r.rps));
  const maxP95Ms = Math.max(...rows.map((r) => r.p95LatencyMs));
  const line = rows
    .map(
      (r) =>
        `${r.test} ${Math.round(r.rps).toLocaleString('en-US')} ops/s p50 ${r.p50LatencyMs} ms p95 ${r.p95LatencyMs} ms p99 ${r.p99LatencyMs} ms`,
    )
    .join('; ');
  return { minRps, maxP95Ms, rows: [...rows], line };
}
