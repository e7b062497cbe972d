// The one place that judges the measurable success criteria of 013-spec.md from a measurement:
// runbooks and reports call these instead of comparing against their own copies of the numbers.
// Tests of the measuring code (probes, bench) check that the numbers are sane, not these limits.

/** The criteria judged on the p95 round-trip latency. */
export type LatencyCriterion = 'SC-001' | 'SC-003';
export type MeasuredCriterion = LatencyCriterion | 'SC-006';

/** A verdict's word in an evidence line. */
export const metWord = (ok: boolean): 'met' | 'NOT met' => (ok ? 'met' : 'NOT met');

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

/** What one source probe saw (lib/redis/source-probe.ts). */
export interface SourceProbeOutcome {
  outcome: 'reached' | 'refused' | 'reset' | 'timeout' | 'error';
  detail: string;
  source?: string;
}

export interface SourceRangeInput {
  /** loadBalancerSourceRanges as the Service has them */
  ranges: readonly string[];
  privateCidr: string;
  /** OUTSIDE_PROBE_SOURCE; undefined when unset */
  outsideSource: string | undefined;
  /** probes from the outside source and from this machine's own address, in the same window */
  outside: readonly SourceProbeOutcome[];
  inside: readonly SourceProbeOutcome[];
  /** whether an address lies in PRIVATE_CIDR */
  inPrivate: (ip: string) => boolean;
}

export interface SourceRangeVerdict {
  verdict: 'met' | 'not met' | 'not proven';
  text: string;
  /** for "not proven": what to set or do so the next run can prove it */
  toProve?: string;
}

const BLOCKED = new Set(['refused', 'reset', 'timeout']);

/**
 * SC-004 "not reachable from any address outside the private network". The source ranges are
 * only configuration: kube-proxy enforces them (by dropping), and only if nothing NATs outside
 * clients into the private range. So SC-004 is met only when, in the same window, every probe
 * from the outside source is refused or dropped while every probe from this machine's own
 * (private) address reaches Redis — a blocked outside probe alone could be a host that reaches
 * nothing. Without an outside source it is configured, not proven.
 */
export function judgeSourceRange(input: SourceRangeInput): SourceRangeVerdict {
  const { ranges, privateCidr, outsideSource, outside, inside } = input;
  const rangesText = `loadBalancerSourceRanges [${ranges.join(', ')}]`;
  const rerun =
    'and re-run ./runbooks/03-access.mts --recheck (checklists/03-access.md: when a source range protects at all)';
  if (!(ranges.length === 1 && ranges[0] === privateCidr)) {
    return {
      verdict: 'not met',
      text: `SC-004 NOT met: ${rangesText} is not PRIVATE_CIDR ${privateCidr}`,
    };
  }
  if (!outsideSource) {
    return {
      verdict: 'not proven',
      text: `SC-004 configured, not proven: ${rangesText} = PRIVATE_CIDR, but no connection from outside was tried (OUTSIDE_PROBE_SOURCE unset)`,
      toProve: `set OUTSIDE_PROBE_SOURCE to an address of this machine outside ${privateCidr} (e.g. a second address on its interface) ${rerun}`,
    };
  }
  const show = (probes: readonly SourceProbeOutcome[]) => probes.map((p) => p.outcome).join(', ');
  const blocked = outside.filter((p) => BLOCKED.has(p.outcome)).length;
  const reached = inside.filter((p) => p.outcome === 'reached');
  const outsideLine = `${blocked}/${outside.length} connections from ${outsideSource} (outside ${privateCidr}) blocked (${show(outside)})`;
  const insideFrom = [...new Set(reached.map((p) => p.source).filter(Boolean))].join(', ') || '?';
  const insideLine = `${reached.length}/${inside.length} from this machine (${insideFrom}) reached Redis (${show(inside)})`;
  const leaked = reached.filter((p) => p.source && !input.inPrivate(p.source));
  if (outside.some((p) => p.outcome === 'reached') || leaked.length > 0) {
    return {
      verdict: 'not met',
      text: `SC-004 NOT met: ${rangesText}; ${outsideLine}; ${insideLine}${leaked.length ? ` — ${leaked[0]?.source} is outside PRIVATE_CIDR and still reached Redis` : ''}`,
    };
  }
  if (outside.some((p) => p.outcome === 'error')) {
    return {
      verdict: 'not proven',
      text: `SC-004 not proven: ${rangesText}; ${outsideLine}: a probe could not be made (${outside.find((p) => p.outcome === 'error')?.detail})`,
      toProve: `make OUTSIDE_PROBE_SOURCE an address this machine holds (ip addr) ${rerun}`,
    };
  }
  if (inside.length === 0 || reached.length < inside.length) {
    return {
      verdict: 'not proven',
      text: `SC-004 not proven: ${rangesText}; ${outsideLine}; but ${insideLine}: this machine does not reach the LoadBalancer, so a blocked outside probe proves nothing`,
      toProve: `run 03-access from a machine in ${privateCidr} that reaches the LoadBalancer ${rerun}`,
    };
  }
  return { verdict: 'met', text: `SC-004 met: ${rangesText}; ${outsideLine}; ${insideLine}` };
}
