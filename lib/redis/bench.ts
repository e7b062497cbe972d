// The measurements behind SC-006 and SC-001 (judged by lib/phases/verdicts.ts): N connections × pipeline
// depth of SET/GET against one Redis, latencies in an HDR histogram, and a parser for redis-benchmark's CSV
// (for the in-cluster Job, whose pod log is the CSV).
import { performance } from 'node:perf_hooks';
import type * as hdr from 'hdr-histogram-js';
import { maskSecrets } from '../mask.ts';
import { RespConnection } from './bench-resp.ts';
import { openRedis, type RedisTarget } from './redis-probe.ts';

export interface BenchOptions {
  /** Parallel connections. Default 50 (redis-benchmark's -c). */
  connections?: number;
  /** Commands in flight per connection. Default 1 (redis-benchmark's -P). */
  pipeline?: number;
  /** Stop after this many operations. Default 100,000 unless durationMs is given. */
  totalOps?: number;
  /** Stop issuing after this long instead. */
  durationMs?: number;
  /** Fraction of operations that are SET; the rest are GET. Default 0.5. */
  setRatio?: number;
  /** Bytes per SET value. Default 3 (redis-benchmark's -d). */
  valueSize?: number;
  /** Keys are `<prefix><12 digits>` over this many distinct numbers. Default 100,000 (-r). */
  keySpace?: number;
  /** Default `runbook:bench:`, so the keys are recognisable and removable. */
  keyPrefix?: string;
  /** UNLINK the benchmark's keys afterwards. Default true. */
  cleanup?: boolean;
  /** Called every progressIntervalMs while the benchmark runs. */
  onProgress?: (progress: BenchProgress) => void;
  progressIntervalMs?: number;
  connectTimeoutMs?: number;
  /**
   * A connection whose replies stop for this long is closed and its commands in flight are
   * counted as errors. Default 10,000 ms.
   */
  replyTimeoutMs?: number;
}

export interface BenchProgress {
  elapsedMs: number;
  ops: number;
  opsPerSec: number;
}

export interface BenchResult {
  opsPerSec: number;
  /** Latencies in milliseconds, from sending a command's pipeline batch to reading its reply. */
  p50: number;
  p95: number;
  p99: number;
  max: number;
  /** Error replies plus commands lost with a dropped connection. */
  errors: number;
  /** The first error seen, masked. */
  firstError?: string;
  /** Why the benchmark's keys could not be removed afterwards, and how to remove them. */
  cleanupError?: string;
  ops: number;
  durationMs: number;
  connections: number;
  pipeline: number;
}

/** One row of `redis-benchmark --csv`. */
export interface RedisBenchmarkRow {
  test: string;
  rps: number;
  avgLatencyMs: number;
  minLatencyMs: number;
  p50LatencyMs: number;
  p95LatencyMs: number;
  p99LatencyMs: number;
  maxLatencyMs: number;
}

const KEY_DIGITS = 12;
const CSV_HEADER = [
  'test',
  'rps',
  'avg_latency_ms',
  'min_latency_ms',
  'p50_latency_ms',
  'p95_latency_ms',
  'p99_latency_ms',
  'max_latency_ms',
];

function csvFields(line: string): string[] {
  const out: string[] = [];
  const re = /"((?:[^"]|"")*)"|([^,]*)/g;
  let m: RegExpExecArray | null = re.exec(line);
  while (m) {
    out.push(m[1] !== undefined ? m[1].replace(/""/g, '"') : (m[2] ?? ''));
    if (re.lastIndex >= line.length) break;
    re.lastIndex++; // skip the comma
    m = re.exec(line);
  }
  return out;
}

/**
 * Rows of redis-benchmark 7's `--csv` output. Lines before the header (a Job's log may carry
 * other output) are ignored; a missing header or a malformed number is an error.
 */
export function parseRedisBenchmarkCsv(text: string): RedisBenchmarkRow[] {
  const lines = text.split(/\r?\n/).map((l) => l.trim());
  const headerAt = lines.findIndex((l) => csvFields(l).join(',') === CSV_HEADER.join(','));
  if (headerAt === -1) {
    throw new Error(
      `no redis-benchmark CSV header (${CSV_HEADER.map((h) => `"${h}"`).join(',')}) in the output: was it run with --csv?`,
    );
  }
  const rows: RedisBenchmarkRow[] = [];
  for (const line of lines.slice(headerAt + 1)) {
    if (!line) continue;
    const f = csvFields(line);
    if (f.length !== CSV_HEADER.length) continue;
    const n = f.slice(1).map(Number);
    if (n.some((x) => !Number.isFinite(x)))
      throw new Error(`malformed redis-benchmark row: ${line}`);
    rows.push({
      test: f[0]!,
      rps: n[0]!,
      avgLatencyMs: n[1]!,
      minLatencyMs: n[2]!,
      p50LatencyMs: n[3]!,
      p95LatencyMs: n[4]!,
      p99LatencyMs: n[5]!,
      maxLatencyMs: n[6]!,
    });
  }
  return rows;
}

/** A command template with the byte offset of its 12 key digits, rewritten for every use. */
interface Template {
  bytes: Buffer;
  digitsAt: number;
}

function template(args: string[], keyIndex: number): Template {
  const head = args.slice(0, keyIndex);
  let prefix = `*${args.length}\r\n`;
  for (const a of head) prefix += `$${Buffer.byteLength(a)}\r\n${a}\r\n`;
  const key = args[keyIndex]!;
  prefix += `$${Buffer.byteLength(key)}\r\n`;
  const digitsAt = Buffer.byteLength(prefix) + Buffer.byteLength(key) - KEY_DIGITS;
  let rest = '\r\n';
  for (const a of args.slice(keyIndex + 1)) rest += `$${Buffer.byteLength(a)}\r\n${a}\r\n`;
  return { bytes: Buffer.from(prefix + key + rest), digitsAt };
}

function writeDigits(buf: Buffer, at: number, value: number): void {
  let n = value;
  for (let i = at + KEY_DIGITS - 1; i >= at; i--) {
    buf[i] = 48 + (n % 10);
    n = Math.floor(n / 10);
  }
}

function validate(opts: BenchOptions): void {
  const positive = (name: keyof BenchOptions, v: unknown) => {
    if (v !== undefined && (!Number.isInteger(v) || (v as number) <= 0)) {
      throw new RangeError(`bench option ${name} must be a positive integer, got ${String(v)}`);
    }
  };
  for (const k of [
    'connections',
    'pipeline',
    'totalOps',
    'durationMs',
    'keySpace',
    'replyTimeoutMs',
  ] as const) {
    positive(k, opts[k]);
  }
  if (opts.valueSize !== undefined && (!Number.isInteger(opts.valueSize) || opts.valueSize < 0)) {
    throw new RangeError(`bench option valueSize must be 0 or more, got ${opts.valueSize}`);
  }
  const r = opts.setRatio;
  if (r !== undefined && !(r >= 0 && r <= 1)) {
    throw new RangeError(`bench option setRatio must be between 0 and 1, got ${r}`);
  }
  if (opts.keySpace !== undefined && opts.keySpace > 10 ** KEY_DIGITS) {
    throw new RangeError(`bench option keySpace must be at most 10^${KEY_DIGITS}`);
  }
}

async function removeKeys(target: RedisTarget, prefix: string, timeoutMs: number): Promise<void> {
  const client = await openRedis(target, { connectTimeoutMs: timeoutMs, commandTimeoutMs: 30_000 });
  try {
    let cursor = '0';
    do {
      const [next, keys] = await client.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length) await client.unlink(...keys);
    } while (cursor !== '0');
  } finally {
    client.disconnect();
  }
}

/** Runs the benchmark; rejects (masked) only if no connection can be made. */
export async function runBench(target: RedisTarget, opts: BenchOptions = {}): Promise<BenchResult> {
  validate(opts);
  const connections = opts.connections ?? 50;
  const pipeline = opts.pipeline ?? 1;
  const durationMs = opts.durationMs;
  const totalOps = durationMs === undefined ? (opts.totalOps ?? 100_000) : Number.POSITIVE_INFINITY;
  const setRatio = opts.setRatio ?? 0.5;
  const keySpace = opts.keySpace ?? 100_000;
  const keyPrefix = opts.keyPrefix ?? 'runbook:bench:';
  const timeoutMs = opts.connectTimeoutMs ?? 2000;
  const replyTimeoutMs = opts.replyTimeoutMs ?? 10_000;
  const key = keyPrefix + '0'.repeat(KEY_DIGITS);
  const setT = template(['SET', key, 'x'.repeat(opts.valueSize ?? 3)], 1);
  const getT = template(['GET', key], 1);

  // The JS histogram, not the WebAssembly one: recording is a few array operations either way, and
  // the JS build needs no async initialisation or explicit destroy().
  // Loaded by the benchmark that needs it, not by every module that imports this one.
  const { build } = await import('hdr-histogram-js');
  const histogram = build({ lowestDiscernibleValue: 1, numberOfSignificantValueDigits: 3 });
  const opened = await Promise.allSettled(
    Array.from({ length: connections }, () =>
      RespConnection.open({ ...target, name: target.name ?? 'runbook-bench' }, timeoutMs),
    ),
  );
  const failed = opened.find((o) => o.status === 'rejected');
  const conns = opened.flatMap((o) => (o.status === 'fulfilled' ? [o.value] : []));
  if (failed) {
    // The connections that did open would otherwise stay open on the server and keep this
    // process alive.
    for (const conn of conns) conn.close();
    const reason = (failed.reason as Error).message;
    throw new Error(
      maskSecrets(
        `benchmark could not connect: ${reason}${conns.length ? ` (${conns.length} of ${connections} connections had opened)` : ''}`,
      ),
    );
  }

  let issued = 0;
  let completed = 0;
  let errors = 0;
  let firstError: string | undefined;
  let active = connections;
  const start = performance.now();
  const stopAt = durationMs === undefined ? Number.POSITIVE_INFINITY : start + durationMs;

  let finish: () => void = () => {};
  const finished = new Promise<void>((resolve) => {
    finish = resolve;
  });
  const progressTimer = opts.onProgress
    ? setInterval(() => {
        const elapsedMs = performance.now() - start;
        opts.onProgress?.({ elapsedMs, ops: completed, opsPerSec: (completed * 1000) / elapsedMs });
      }, opts.progressIntervalMs ?? 1000)
    : undefined;
  progressTimer?.unref();
  // A server that stops answering (paused, overloaded, a network cut that leaves the socket
  // open) would otherwise keep the run waiting for replies forever.
  const stallChecks: Array<(now: number) => void> = [];
  const stallTimer = setInterval(
    () => {
      const now = performance.now();
      for (const check of stallChecks) check(now);
    },
    Math.min(1000, Math.max(10, replyTimeoutMs / 4)),
  );

  for (const conn of conns) {
    // One reusable batch buffer per connection: it is rewritten only after every reply of the
    // previous batch has arrived, so the socket has long finished with its bytes.
    const batch = Buffer.alloc(pipeline * Math.max(setT.bytes.length, getT.bytes.length));
    let inFlight = 0;
    let sentAt = 0;
    let lastReplyAt = 0;
    let done = false;

    const retire = () => {
      if (done) return;
      done = true;
      active--;
      if (active === 0) finish();
    };

    const sendBatch = () => {
      const n = Math.min(pipeline, totalOps - issued);
      if (n <= 0 || performance.now() >= stopAt) {
        retire();
        return;
      }
      let len = 0;
      for (let i = 0; i < n; i++) {
        const t = Math.random() < setRatio ? setT : getT;
        t.bytes.copy(batch, len);
        writeDigits(batch, len + t.digitsAt, Math.floor(Math.random() * keySpace));
        len += t.bytes.length;
      }
      issued += n;
      inFlight = n;
      sentAt = performance.now();
      lastReplyAt = sentAt;
      conn.write(len === batch.length ? batch : batch.subarray(0, len));
    };

    conn.onReplies((replies, errs, first) => {
      lastReplyAt = performance.now();
      const micros = Math.max(1, Math.round((lastReplyAt - sentAt) * 1000));
      histogram.recordValueWithCount(micros, replies);
      completed += replies;
      inFlight -= replies;
      if (errs) {
        errors += errs;
        firstError ??= first;
      }
      if (inFlight <= 0) sendBatch();
    });
    conn.onClose((err) => {
      if (done) return;
      errors += inFlight;
      firstError ??= err ? err.message : 'connection closed by the server';
      retire();
    });
    stallChecks.push((now) => {
      if (done || inFlight <= 0 || now - lastReplyAt < replyTimeoutMs) return;
      errors += inFlight;
      firstError ??= `no reply from ${target.host}:${target.port} within ${replyTimeoutMs} ms`;
      retire();
      conn.close();
    });
    sendBatch();
  }

  await finished;
  const elapsed = performance.now() - start;
  clearInterval(stallTimer);
  if (progressTimer) clearInterval(progressTimer);
  for (const conn of conns) conn.close();
  // The measurement stands even when its keys cannot be removed: say so rather than lose it.
  const cleanupError =
    (opts.cleanup ?? true)
      ? await removeKeys(target, keyPrefix, timeoutMs).then(
          () => undefined,
          (err: Error) =>
            maskSecrets(
              `the ${keyPrefix}* keys were not removed (${err.message}); remove them with: redis-cli --scan --pattern '${keyPrefix}*' | xargs redis-cli unlink`,
            ),
        )
      : undefined;

  const result: BenchResult = {
    opsPerSec: Math.round((completed * 1000) / elapsed),
    ...latencyPercentiles(histogram),
    errors,
    ops: completed,
    durationMs: Math.round(elapsed),
    connections,
    pipeline,
  };
  if (firstError !== undefined) result.firstError = maskSecrets(firstError);
  if (cleanupError !== undefined) result.cleanupError = cleanupError;
  return result;
}

/**
 * p50/p95/p99/max in milliseconds from a histogram of microseconds. A percentile is reported as
 * the top of its bucket, which can lie above the largest value recorded; it is capped there, so
 * p50 ≤ p95 ≤ p99 ≤ max always holds.
 */
export function latencyPercentiles(
  histogram: Pick<hdr.Histogram, 'getValueAtPercentile' | 'maxValue'>,
): Pick<BenchResult, 'p50' | 'p95' | 'p99' | 'max'> {
  const max = histogram.maxValue;
  const ms = (us: number) => Math.round(us) / 1000;
  const at = (p: number) => ms(Math.min(histogram.getValueAtPercentile(p), max));
  return { p50: at(50), p95: at(95), p99: at(99), max: ms(max) };
}

/** `12.3 s  456,789 ops  45,678 ops/s` — one line for a progress display. */
export function formatProgress(p: BenchProgress): string {
  return `${(p.elapsedMs / 1000).toFixed(1)} s  ${p.ops.toLocaleString('en-US')} ops  ${Math.round(p.opsPerSec).toLocaleString('en-US')} ops/s`;
}

/**
 * A progress callback for a stream (stderr): rewritten in place on a TTY, otherwise one plain
 * line at most once a second, so logs of CI runs stay short.
 */
export function progressReporter(
  stream: NodeJS.WriteStream | { isTTY?: boolean; write(s: string): unknown },
  label = '',
): { intervalMs: number; report: (p: BenchProgress) => void; end: () => void } {
  const tty = Boolean(stream.isTTY);
  let last = Number.NEGATIVE_INFINITY;
  let drawn = false;
  return {
    intervalMs: tty ? 200 : 1000,
    report(p) {
      const line = `${label}${formatProgress(p)}`;
      if (tty) {
        stream.write(`\r\x1b[2K${line}`);
        drawn = true;
      } else if (p.elapsedMs - last >= 1000) {
        last = p.elapsedMs;
        stream.write(`${line}\n`);
      }
    },
    end() {
      if (tty && drawn) stream.write('\r\x1b[2K');
      drawn = false;
    },
  };
}
