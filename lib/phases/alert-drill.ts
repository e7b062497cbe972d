// 04-monitoring's alert drill (US3 AS-2): how long to wait for an alert, read from what
// Prometheus itself reports (the rule's `for`, its group's evaluation interval, the targets'
// scrape interval) rather than guessed; and what the alerts API says about one alert.
import { parseDuration } from '../duration.ts';

export interface AlertTiming {
  /** the rule's `for`, as Prometheus loaded it */
  forMs: number;
  /** the rule group's evaluation interval */
  evaluationMs: number;
  /** the scrape interval of the targets the rule reads */
  scrapeMs: number;
}

/**
 * Prometheus durations as its APIs print them: `15s`, `1m`, `1m30s`, or seconds as a number
 * (the rules API gives `duration` and `interval` in seconds).
 */
export function prometheusDurationMs(value: string | number | undefined): number | undefined {
  if (typeof value === 'number')
    return Number.isFinite(value) && value >= 0 ? value * 1000 : undefined;
  if (typeof value !== 'string' || value === '') return undefined;
  if (/^\d+(\.\d+)?$/.test(value)) return Number(value) * 1000;
  return parseDuration(value);
}

/**
 * Time for a change to make the alert fire: the series must be scraped as changed (up to two
 * scrape intervals: the next scrape, plus a staleness-free sample), evaluated (one evaluation
 * interval) and hold for `for`, plus one more evaluation to turn pending into firing. Doubled,
 * so a slow scrape is not a failed drill; never below 30 s.
 */
export function firingTimeoutMs(t: AlertTiming): number {
  const expected = 2 * t.scrapeMs + 2 * t.evaluationMs + t.forMs;
  return Math.max(30_000, 2 * expected);
}

/**
 * Time for a firing alert to resolve once the cause is gone: the series scraped healthy again,
 * then one evaluation (no `for` on the way down), plus the pod's own start. Doubled, ≥ 30 s.
 */
export function resolveTimeoutMs(t: AlertTiming, podStartMs: number): number {
  const expected = podStartMs + 2 * t.scrapeMs + 2 * t.evaluationMs;
  return Math.max(30_000, 2 * expected);
}

export interface RuleInfo {
  name: string;
  group: string;
  forMs: number;
  evaluationMs: number;
  query: string;
}

interface RulesApiGroup {
  name: string;
  file?: string;
  interval?: number | string;
  rules?: { type?: string; name?: string; duration?: number | string; query?: string }[];
}

/** The alerting rules from `/api/v1/rules` (`data.groups`), with their timings. */
export function alertingRules(groups: readonly RulesApiGroup[]): RuleInfo[] {
  return groups.flatMap((g) =>
    (g.rules ?? [])
      .filter((r) => r.type === 'alerting' && typeof r.name === 'string')
      .map((r) => ({
        name: r.name as string,
        group: g.name,
        forMs: prometheusDurationMs(r.duration) ?? 0,
        evaluationMs: prometheusDurationMs(g.interval) ?? 60_000,
        query: r.query ?? '',
      })),
  );
}

interface TargetLike {
  labels?: Record<string, string>;
  scrapeInterval?: string;
  health?: string;
}

/** The longest scrape interval among targets (those of one job, usually); undefined when none says. */
export function scrapeIntervalMs(targets: readonly TargetLike[]): number | undefined {
  const values = targets
    .map((t) => prometheusDurationMs(t.scrapeInterval))
    .filter((v): v is number => v !== undefined);
  return values.length ? Math.max(...values) : undefined;
}

export interface AlertLike {
  labels?: Record<string, string>;
  state?: string;
  activeAt?: string;
}

export type AlertState = 'inactive' | 'pending' | 'firing';

/** The state of the named alert in `/api/v1/alerts` (`data.alerts`): the most advanced instance. */
export function alertState(alerts: readonly AlertLike[], name: string): AlertState {
  const states = alerts.filter((a) => a.labels?.alertname === name).map((a) => a.state);
  if (states.includes('firing')) return 'firing';
  if (states.includes('pending')) return 'pending';
  return 'inactive';
}
