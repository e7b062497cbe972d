// npm run bench:compare — our benchmark (lib/redis/bench.ts) and redis-benchmark side by side against a
// local redis-server: same clients, pipeline, operation count, key space and value size, the
// SET test then the GET test, tools alternating which goes first, three rounds. Prints a table
// and, as the last line, `ratio <ours/theirs>` for ops/s at -c 50 -P 1.
//
// The local server has no password: redis-benchmark 7.0 takes one only as `-a` (argv, visible in
// `ps`) and reads no REDISCLI_AUTH, and a throw-away loopback server needs none.
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs, promisify } from 'node:util';
import {
  type BenchResult,
  parseRedisBenchmarkCsv,
  progressReporter,
  runBench,
} from '../lib/redis/bench.ts';
import { RespConnection } from '../lib/redis/bench-resp.ts';
import { median } from './measure.ts';

interface Setting {
  clients: number;
  pipeline: number;
  ops: number;
}

interface Measurement {
  opsPerSec: number;
  p50: number;
  p95: number;
  p99: number;
}

type Tool = 'ours' | 'redis-benchmark';
type Test = 'SET' | 'GET';

const KEY_SPACE = 100_000;
const VALUE_SIZE = 3;
const HOST = '127.0.0.1';

const USAGE = 'usage: npm run bench:compare -- [--rounds 3] [--ops-p1 200000] [--ops-p16 1000000]';

function usageError(message: string): never {
  process.stderr.write(`bench:compare: ${message}\n${USAGE}\n`);
  process.exit(2);
}

let args: { rounds: string; 'ops-p1': string; 'ops-p16': string; help: boolean };
try {
  args = parseArgs({
    options: {
      rounds: { type: 'string', default: '3' },
      'ops-p1': { type: 'string', default: '200000' },
      'ops-p16': { type: 'string', default: '1000000' },
      help: { type: 'boolean', default: false },
    },
  }).values;
} catch (err) {
  usageError((err as Error).message);
}
if (args.help) {
  process.stdout.write(`${USAGE}\n`);
  process.exit(0);
}

/** A whole number ≥ 1, or a usage error: NaN rounds would end in a meaningless `ratio NaN`. */
function count(flag: 'rounds' | 'ops-p1' | 'ops-p16'): number {
  const n = Number(args[flag]);
  if (!/^\d+$/.test(args[flag]) || n < 1) {
    usageError(`--${flag} "${args[flag]}" must be a whole number of at least 1`);
  }
  return n;
}
const rounds = count('rounds');
const settings: Setting[] = [
  { clients: 50, pipeline: 1, ops: count('ops-p1') },
  { clients: 50, pipeline: 16, ops: count('ops-p16') },
];

async function freePort(): Promise<number> {
  const server = createServer().listen(0, HOST);
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  server.close();
  await once(server, 'close');
  return port;
}

async function startServer(dir: string): Promise<{ port: number; child: ChildProcess }> {
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await freePort();
    const child = spawn(
      'redis-server',
      ['--port', String(port), '--bind', HOST, '--dir', dir, '--save', '', '--appendonly', 'no'],
      { stdio: 'ignore' },
    );
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline && child.exitCode === null) {
      const conn = await RespConnection.open({ host: HOST, port }, 500).catch(() => undefined);
      if (conn) {
        conn.close();
        return { port, child };
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    child.kill('SIGKILL');
  }
  throw new Error('could not start redis-server on a free port: is redis-server installed?');
}

async function ours(port: number, s: Setting, test: Test): Promise<Measurement> {
  const progress = progressReporter(
    process.stderr,
    `ours ${test} -c ${s.clients} -P ${s.pipeline}: `,
  );
  const r: BenchResult = await runBench(
    { host: HOST, port },
    {
      connections: s.clients,
      pipeline: s.pipeline,
      totalOps: s.ops,
      setRatio: test === 'SET' ? 1 : 0,
      valueSize: VALUE_SIZE,
      keySpace: KEY_SPACE,
      keyPrefix: 'key:',
      cleanup: false,
      onProgress: progress.report,
      progressIntervalMs: progress.intervalMs,
    },
  );
  progress.end();
  if (r.errors) throw new Error(`our benchmark saw ${r.errors} error(s): ${r.firstError}`);
  return { opsPerSec: r.opsPerSec, p50: r.p50, p95: r.p95, p99: r.p99 };
}

async function theirs(port: number, s: Setting): Promise<Record<Test, Measurement>> {
  process.stderr.write(
    process.stderr.isTTY ? `\r\x1b[2Kredis-benchmark -c ${s.clients} -P ${s.pipeline}…` : '',
  );
  const { stdout } = await promisify(execFile)(
    'redis-benchmark',
    ['-h', HOST, '-p', String(port), '-c', String(s.clients), '-P', String(s.pipeline)]
      .concat(['-n', String(s.ops), '-r', String(KEY_SPACE), '-d', String(VALUE_SIZE)])
      .concat(['-t', 'set,get', '--csv']),
    { maxBuffer: 1 << 20 },
  );
  if (process.stderr.isTTY) process.stderr.write('\r\x1b[2K');
  const rows = parseRedisBenchmarkCsv(stdout);
  const pick = (test: Test): Measurement => {
    const row = rows.find((r) => r.test === test);
    if (!row) throw new Error(`redis-benchmark printed no ${test} row:\n${stdout}`);
    return {
      opsPerSec: row.rps,
      p50: row.p50LatencyMs,
      p95: row.p95LatencyMs,
      p99: row.p99LatencyMs,
    };
  };
  return { SET: pick('SET'), GET: pick('GET') };
}

/** Throughput over everything a tool did in a setting: total operations / total time. */
function overallOpsPerSec(ms: Measurement[], opsEach: number): number {
  const seconds = ms.reduce((sum, m) => sum + opsEach / m.opsPerSec, 0);
  return (ms.length * opsEach) / seconds;
}

const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
const pad = (s: string, w: number) => s.padStart(w);

const dir = await mkdtemp(join(tmpdir(), 'bench-compare-'));
const server = await startServer(dir);
const cleanup = async () => {
  server.child.kill('SIGTERM');
  await rm(dir, { recursive: true, force: true });
};
process.on('SIGINT', () => {
  void cleanup().then(() => process.exit(130));
});

const lines: string[] = [];
let ratio = 0;
const verdicts: string[] = [];
try {
  process.stdout.write(
    `redis-server on ${HOST}:${server.port}; ${rounds} rounds; key space ${fmt(KEY_SPACE)}, value ${VALUE_SIZE} bytes\n`,
  );
  lines.push(
    `${'setting'.padEnd(16)}${'tool'.padEnd(17)}${'test'.padEnd(6)}${pad('ops/s', 10)}${pad('p50 ms', 9)}${pad('p95 ms', 9)}${pad('p99 ms', 9)}`,
  );
  for (const s of settings) {
    const results: Record<Tool, Record<Test, Measurement[]>> = {
      ours: { SET: [], GET: [] },
      'redis-benchmark': { SET: [], GET: [] },
    };
    for (let round = 0; round < rounds; round++) {
      const order: Tool[] =
        round % 2 === 0 ? ['ours', 'redis-benchmark'] : ['redis-benchmark', 'ours'];
      for (const tool of order) {
        if (tool === 'ours') {
          results.ours.SET.push(await ours(server.port, s, 'SET'));
          results.ours.GET.push(await ours(server.port, s, 'GET'));
        } else {
          const r = await theirs(server.port, s);
          results['redis-benchmark'].SET.push(r.SET);
          results['redis-benchmark'].GET.push(r.GET);
        }
      }
    }
    const setting = `-c ${s.clients} -P ${s.pipeline}`;
    const overall: Record<Tool, number> = { ours: 0, 'redis-benchmark': 0 };
    const p95: Record<Tool, number> = { ours: 0, 'redis-benchmark': 0 };
    for (const tool of ['ours', 'redis-benchmark'] as const) {
      for (const test of ['SET', 'GET'] as const) {
        const ms = results[tool][test];
        const ops = overallOpsPerSec(ms, s.ops);
        const p = {
          p50: median(ms.map((m) => m.p50)),
          p95: median(ms.map((m) => m.p95)),
          p99: median(ms.map((m) => m.p99)),
        };
        p95[tool] = Math.max(p95[tool], p.p95);
        lines.push(
          `${setting.padEnd(16)}${tool.padEnd(17)}${test.padEnd(6)}${pad(fmt(ops), 10)}${pad(p.p50.toFixed(3), 9)}${pad(p.p95.toFixed(3), 9)}${pad(p.p99.toFixed(3), 9)}`,
        );
      }
      overall[tool] = overallOpsPerSec([...results[tool].SET, ...results[tool].GET], s.ops);
      lines.push(
        `${setting.padEnd(16)}${tool.padEnd(17)}${'both'.padEnd(6)}${pad(fmt(overall[tool]), 10)}`,
      );
    }
    const r = overall.ours / overall['redis-benchmark'];
    const p95Factor = p95.ours / p95['redis-benchmark'];
    verdicts.push(
      `${setting}: ops/s ratio ${r.toFixed(2)}, worst p95 ours/theirs ${p95Factor.toFixed(1)}×`,
    );
    if (s.pipeline === 1) {
      ratio = r;
      verdicts.push(`  target ratio ≥ 0.70 at ${setting}: ${r >= 0.7 ? 'met' : 'NOT met'}`);
    }
    if (s.pipeline === 16) {
      verdicts.push(
        `  target ≥ 250,000 ops/s at ${setting}: ${overall.ours >= 250_000 ? 'met' : 'NOT met'} (${fmt(overall.ours)})`,
      );
    }
    verdicts.push(
      `  target p95 within 3× of redis-benchmark at ${setting}: ${p95Factor <= 3 ? 'met' : 'NOT met'}`,
    );
  }
} finally {
  await cleanup();
}
process.stdout.write(`${lines.join('\n')}\n\n${verdicts.join('\n')}\nratio ${ratio.toFixed(2)}\n`);
