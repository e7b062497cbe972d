// The one place that judges the measurable success criteria of 013-spec.md from a measurement:
// runbooks and reports call these instead of comparing against their own copies of the numbers.
// Tests of the measuring code (probes, bench) check that the numbers are sane, not these limits.

/** The criteria judged on the p95 round-trip latency. */
export type LatencyCriterion = 'SC-001' | 'SC-003';
export type MeasuredCriterion = LatencyCriterion | 'SC-006';

export interface Verdict {
  id: MeasuredCriterion;
  met: boolean;
  /** The limit from the spec, in `unit`: p95 must stay below it (latency) or reach it (throughput). */
  threshold: number;
  unit: 'ms' | 'ops/s';
  /** The measurement judged, in `unit`. */
  value: number;
  /** One line for a report: `SC-001 met: p95 9.9 ms < 10 ms (…)`. */
  text: string;
}

/**
 * SC-001: in-cluster SET/GET "in under 10 milliseconds for 95% of requests"; SC-003: reachable
 * from the private network "within 100 milliseconds", read as p95 like SC-001. Both are strict:
 * a p95 of exactly the limit is not met.
 */
export const LATENCY_P95_LIMIT_MS: Readonly<Record<LatencyCriterion, number>> = {
  'SC-001': 10,
  'SC-003': 100,
};

/** SC-006: "at least 10,000 operations per second", so exactly 10,000 is met. */
export const THROUGHPUT_MIN_OPS_PER_SEC = 10_000;

const LATENCY_SUBJECT: Record<LatencyCriterion, string> = {
  'SC-001': 'SET/GET from inside the cluster',
  'SC-003': 'round trips from the private network',
};

/** SC-001 or SC-003 from the p95 latency of a probe, in milliseconds. */
export function judgeLatency(sc: LatencyCriterion, p95Ms: number): Verdict {
  const threshold = LATENCY_P95_LIMIT_MS[sc];
  if (threshold === undefined) {
    throw new RangeError(`${String(sc)} is not judged on latency: use SC-001 or SC-003`);
  }
  assertMeasurement(p95Ms, `p95 of ${sc}`);
  const met = p95Ms < threshold;
  const subject = LATENCY_SUBJECT[sc];
  const text = met
    ? `${sc} met: p95 ${formatNear(p95Ms, threshold)} ms < ${threshold} ms (${subject})`
    : `${sc} NOT met: p95 ${formatNear(p95Ms, threshold)} ms, needs < ${threshold} ms (${subject})`;
  return { id: sc, met, threshold, unit: 'ms', value: p95Ms, text };
}

/** SC-006 from the operations per second of a benchmark run. */
export function judgeThroughput(opsPerSec: number): Verdict {
  assertMeasurement(opsPerSec, 'operations per second of SC-006');
  const threshold = THROUGHPUT_MIN_OPS_PER_SEC;
  const met = opsPerSec >= threshold;
  const value = `${formatNear(opsPerSec, threshold)} ops/s`;
  const limit = `${formatNear(threshold, threshold)} ops/s`;
  const text = met
    ? `SC-006 met: ${value} ≥ ${limit} (benchmark throughput)`
    : `SC-006 NOT met: ${value}, needs ≥ ${limit} (benchmark throughput)`;
  return { id: 'SC-006', met, threshold, unit: 'ops/s', value: opsPerSec, text };
}

function assertMeasurement(value: number, what: string): void {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw new RangeError(
      `the ${what} is ${String(value)}, not a measurement: judge only what a probe or benchmark returned`,
    );
  }
}

/** 10000 → `10,000`, 9.87654 → `9.88`, but 9.9999 → `9.9999`: never printed as the limit itself. */
function formatNear(n: number, limit: number): string {
  let digits = 2;
  const format = () => n.toLocaleString('en-US', { maximumFractionDigits: digits });
  while (n !== limit && digits < 20 && format() === limit.toLocaleString('en-US')) digits++;
  return format();
}
