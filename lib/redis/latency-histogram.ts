// Round-trip samples → buckets for the report's latency histogram. Bucket bounds are round
// numbers (0.1, 0.2, 0.25, 0.5 … ms steps) so an operator reads the plot without a legend.
import { performance } from 'node:perf_hooks';
import { openRedis, PROBE_KEY_PREFIX, type RedisTarget } from './redis-probe.ts';

const STEPS = [1, 2, 2.5, 5];

function roundStep(raw: number): number {
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  for (const s of STEPS) if (s * magnitude >= raw) return s * magnitude;
  return 10 * magnitude;
}

/**
 * At most `maxBuckets` equal-width buckets from 0 to the 99th percentile; the slowest samples
 * beyond it are counted in the last bucket, so one outlier does not flatten the plot.
 */
export interface LatencyBucket {
  /** upper bound of the bucket in ms */
  leMs: number;
  count: number;
}

export function latencyHistogram(samplesMs: readonly number[], maxBuckets = 20): LatencyBucket[] {
  if (!samplesMs.length) return [];
  const sorted = [...samplesMs].sort((a, b) => a - b);
  const top = sorted[Math.floor((sorted.length - 1) * 0.99)]!;
  const width = roundStep(Math.max(top, 0.001) / maxBuckets);
  const count = Math.max(1, Math.ceil(top / width));
  const buckets: LatencyBucket[] = Array.from({ length: count }, (_, i) => ({
    leMs: Number(((i + 1) * width).toPrecision(6)),
    count: 0,
  }));
  for (const ms of sorted) {
    const i = Math.min(count - 1, Math.max(0, Math.ceil(ms / width) - 1));
    buckets[i]!.count++;
  }
  return buckets;
}

/**
 * `count` sequential SET/GET round trips on one connection, each timed (ms): the samples behind
 * the histogram and SC-003's p95 from this machine. The probe key is removed afterwards.
 */
export async function sampleRoundTrips(target: RedisTarget, count: number): Promise<number[]> {
  const client = await openRedis(target);
  const key = `${PROBE_KEY_PREFIX}latency:${process.pid}`;
  const samples: number[] = [];
  try {
    for (let i = 0; i < count; i++) {
      const started = performance.now();
      if (i % 2 === 0) await client.set(key, String(i), 'EX', 60);
      else await client.get(key);
      samples.push(performance.now() - started);
    }
    await client.del(key);
  } finally {
    client.disconnect();
  }
  return samples;
}
