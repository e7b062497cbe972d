import { execFile } from 'node:child_process';
import t from 'tap';
import {
  BENCHMARK_DEFAULTS,
  benchmarkJobManifest,
  benchmarkScript,
  summarizeBenchmark,
} from '../../lib/cluster/benchmark-job.ts';
import { parseRedisBenchmarkCsv } from '../../lib/redis/bench.ts';
import { startRedisServer } from '../helpers/redis-server.ts';

const PASSWORD = 'Bench-Job-Pw-Distinct-9931';

interface JobShape {
  metadata: { labels: Record<string, string> };
  spec: {
    backoffLimit: number;
    template: {
      spec: { restartPolicy: string; containers: { command: string[]; env: unknown[] }[] };
    };
  };
}

const options = {
  name: 'redis-shared-benchmark-abc123',
  namespace: 'beersystem',
  host: 'redis-shared-master.redis.svc.cluster.local',
  port: 6379,
  secretName: 'redis-credentials',
  secretKey: 'redis-password',
  labels: { 'app.kubernetes.io/managed-by': 'redis-shared-runbooks' },
  ...BENCHMARK_DEFAULTS,
  tests: [...BENCHMARK_DEFAULTS.tests],
};

function sh(script: string, env: NodeJS.ProcessEnv) {
  return new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    execFile('sh', ['-c', script], { env, timeout: 60_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? 1 : 0, stdout, stderr }),
    );
  });
}

t.test(
  'the Job takes the password from the Secret by reference; its spec holds no value',
  async (t) => {
    const job = benchmarkJobManifest(options) as unknown as JobShape;
    const container = job.spec.template.spec.containers[0]!;
    t.same(container.env, [
      {
        name: 'REDIS_PASSWORD',
        valueFrom: { secretKeyRef: { name: 'redis-credentials', key: 'redis-password' } },
      },
    ]);
    t.same(container.command.slice(0, 2), ['sh', '-c']);
    t.match(
      container.command[2]!,
      /-a "\$REDIS_PASSWORD"/,
      'expanded by the shell in the container',
    );
    t.match(container.command[2]!, /--csv$/);
    t.equal(job.spec.backoffLimit, 0, 'a failed benchmark is not repeated against production');
    t.equal(job.spec.template.spec.restartPolicy, 'Never');
    t.same(job.metadata.labels, options.labels);
  },
);

t.test('the script hands every value to redis-benchmark as one argument', async (t) => {
  const script = benchmarkScript({
    ...options,
    host: "odd host'$x",
    requests: 10,
    clients: 1,
    pipeline: 1,
    port: 1,
  }).replace('exec redis-benchmark', `printf '%s\\n'`);
  const out = await sh(script, { REDIS_PASSWORD: 'pw x' });
  t.same(out.stdout.split('\n').slice(0, -1), [
    '-h',
    "odd host'$x",
    '-p',
    '1',
    '-a',
    'pw x',
    '-t',
    'set,get',
    '-n',
    '10',
    '-c',
    '1',
    '-P',
    '1',
    '--csv',
  ]);
});

t.test(
  'the container command against a real redis-server: CSV parsed, summary for SC-006/SC-001',
  async (t) => {
    const server = await startRedisServer(t, { password: PASSWORD });
    const script = benchmarkScript({
      ...options,
      host: '127.0.0.1',
      port: server.target.port,
      requests: 2000,
      clients: 4,
    });
    const out = await sh(script, { PATH: process.env.PATH, REDIS_PASSWORD: PASSWORD });
    t.equal(out.code, 0, out.stderr);
    // A pod log interleaves stderr (redis-benchmark's -a warning) with the CSV.
    const rows = parseRedisBenchmarkCsv(`${out.stderr}\n${out.stdout}`);
    t.same(
      rows.map((r) => r.test),
      ['SET', 'GET'],
    );
    const summary = summarizeBenchmark(rows);
    t.equal(summary.minRps, Math.min(rows[0]!.rps, rows[1]!.rps));
    t.equal(summary.maxP95Ms, Math.max(rows[0]!.p95LatencyMs, rows[1]!.p95LatencyMs));
    t.match(summary.line, /^SET [\d,]+ ops\/s p50 [\d.]+ ms p95 [\d.]+ ms p99 [\d.]+ ms; GET /);
    t.notMatch(JSON.stringify(summary), PASSWORD);
    t.throws(() => summarizeBenchmark([]), /no result rows/);
  },
);
