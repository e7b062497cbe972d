// The report of the whole change (T048): every success criterion with the evidence a runbook
// recorded for it (value, when, which run and step) or "not proven" with the reason, the
// migration's timeline with its downtime, and what changed in the cluster. Built from the audit
// log's notes and entries only, so it can be regenerated at any time and says nothing the log
// does not hold. Rendered as Markdown here (the pull-request body) and as HTML in report-html.ts.
import type { AuditEntry } from '../audit/audit.ts';
import { formatDuration } from '../duration.ts';
import { ATTEMPT_CLOSE_NOTE } from '../engine/attempts.ts';
import type { Note } from '../engine/notes.ts';
import { maskDeep, maskSecrets } from '../mask.ts';
import type { LatencyBucket } from '../redis/latency-histogram.ts';
import type { HealthRecord } from './health-prober.ts';
import { downtimeUntilReady, formatDowntime } from './migration.ts';
import {
  BENCHMARK_NOTE,
  DOWNTIME_END_NOTE,
  DOWNTIME_START_NOTE,
  MIGRATE_RUNBOOK,
  USER_HEALTH_NOTE,
} from './migration-notes.ts';

/** A note as lib/engine/notes.ts's readNotes returns it (real runs only). */
export type NoteRecord = Note;

export interface Criterion {
  id: string;
  text: string;
  /** Where its evidence is expected to come from, for the "not proven" reason. */
  provenBy: string;
}

/** 013-spec.md SC-001…SC-008 and 013-tasks.md's SC-009/SC-010. */
export const SUCCESS_CRITERIA: readonly Criterion[] = [
  {
    id: 'SC-001',
    text: 'SET/GET from inside the cluster in under 10 ms for 95 % of requests',
    provenBy: '03-access T019 (in-cluster Job) and 07-polish T046 (redis-benchmark Job)',
  },
  {
    id: 'SC-002',
    text: 'Redis stays available to cluster applications when one of the two instances fails',
    provenBy: '03-access T021 (failover drill)',
  },
  {
    id: 'SC-003',
    text: 'Reachable from the 192.168.4.0/24 private network within 100 ms',
    provenBy: '03-access T030 and 07-polish T046 (benchmark through the LoadBalancer)',
  },
  {
    id: 'SC-004',
    text: 'Not reachable from any address outside the private network',
    provenBy: '03-access T030 (source ranges and an outside probe)',
  },
  {
    id: 'SC-005',
    text: 'Metrics for both instances, updated every 15 s or less',
    provenBy: '04-monitoring T025',
  },
  {
    id: 'SC-006',
    text: 'At least 10,000 operations per second',
    provenBy: '07-polish T046 (redis-benchmark Job)',
  },
  {
    id: 'SC-007',
    text: 'Data persists across instance restarts, no acknowledged write lost',
    provenBy: '03-access T021 (restart drill)',
  },
  {
    id: 'SC-008',
    text: 'Connections without valid credentials refused 100 % of the time',
    provenBy: '03-access T018',
  },
  {
    id: 'SC-009',
    text: 'beersystem works on redis-shared: login, session, cache',
    provenBy: '05-migrate T041',
  },
  {
    id: 'SC-010',
    text: 'The old beersystem Redis is decommissioned, beersystem healthy afterwards',
    provenBy: '06-decommission T044',
  },
];

export const EVIDENCE_PREFIX = 'evidence.';

export type Verdict = 'met' | 'not met' | 'not proven';

export interface Evidence {
  id: string;
  summary: string;
  /** true / false when the runbook judged it; undefined when it recorded a fact only */
  met: boolean | undefined;
  data: Record<string, unknown>;
  runbook: string;
  runId: string;
  step: string | null;
  ts: string;
}

export interface CriterionRow {
  criterion: Criterion;
  verdict: Verdict;
  /** the latest evidence; earlier pieces for the same id are in `earlier` */
  evidence: Evidence | undefined;
  earlier: Evidence[];
  /** why it is not proven (or not met) */
  why: string | undefined;
}

export interface TimelineStep {
  step: string;
  title: string | undefined;
  startedAt: string;
  endedAt: string | undefined;
  outcome: string;
  /** the run that ran it: an attempt's steps may span a failed run, its resume and a rollback */
  runId: string;
}

/**
 * One migration attempt (lib/engine/attempts.ts): from the run that reached T035 through its
 * resumes to the run that completed it or rolled it back.
 */
export interface MigrationTimeline {
  /** the run that opened the attempt */
  runId: string;
  /** every real 05 run of the attempt, in order */
  runs: string[];
  outcome: 'completed' | 'rolled-back' | 'open';
  steps: TimelineStep[];
  /** `ms` to the end of the second the cluster recorded Ready in (`atMost`): downtimeUntilReady */
  downtime:
    | { startedAt: string; endedAt: string | undefined; ms: number | undefined; atMost: boolean }
    | undefined;
  /** beersystem's health endpoint as a prober of its own saw it through the window */
  users: HealthRecord | undefined;
}

export interface ClusterChange {
  ts: string;
  runbook: string;
  runId: string;
  step: string | null;
  command: string;
}

export interface Report {
  generatedAt: string;
  criteria: CriterionRow[];
  /** evidence under ids that are not success criteria (US4-AS-1…, SC supplements) */
  otherEvidence: Evidence[];
  /** the last migration attempt */
  timeline: MigrationTimeline | undefined;
  /** every migration attempt, oldest first, the last one being `timeline` */
  attempts: MigrationTimeline[];
  changes: ClusterChange[];
  /** benchmark figures for the plots, when 07 recorded them */
  benchmark: BenchmarkFigures | undefined;
}

export type { LatencyBucket };

export interface ThroughputFigure {
  label: string;
  opsPerSec: number;
}

export interface BenchmarkFigures {
  throughput: ThroughputFigure[];
  histogram: LatencyBucket[] | undefined;
  histogramLabel: string | undefined;
}

export interface ReportInput {
  notes: NoteRecord[];
  audit: AuditEntry[];
  generatedAt?: string;
  /** 05's step titles, so the timeline reads without the runbook at hand */
  stepTitles?: Record<string, string>;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * An evidence note's value, whatever its exact shape: ctx.evidence(id, line, data) stores the
 * line and the data; a bare string is a line with no data.
 */
export function toEvidence(note: NoteRecord): Evidence | undefined {
  if (!note.key.startsWith(EVIDENCE_PREFIX)) return undefined;
  const id = note.key.slice(EVIDENCE_PREFIX.length);
  const value = note.value;
  let summary: string;
  let data: Record<string, unknown> = {};
  if (typeof value === 'string') summary = value;
  else if (isRecord(value)) {
    const nested = isRecord(value.data) ? value.data : {};
    data = { ...value, ...nested };
    delete data.data;
    const line = value.summary ?? value.line ?? value.text ?? value.message;
    summary = typeof line === 'string' ? line : JSON.stringify(maskDeep(value));
  } else summary = JSON.stringify(value);
  const met = typeof data.met === 'boolean' ? data.met : undefined;
  return {
    id,
    summary: maskSecrets(summary),
    met,
    data: maskDeep(data),
    runbook: note.runbook,
    runId: note.run_id,
    step: note.step,
    ts: note.ts,
  };
}

function byTime<T extends { ts: string }>(a: T, b: T): number {
  return a.ts < b.ts ? -1 : a.ts > b.ts ? 1 : 0;
}

export function criterionRows(evidence: readonly Evidence[]): CriterionRow[] {
  return SUCCESS_CRITERIA.map((criterion) => {
    const pieces = evidence.filter((e) => e.id === criterion.id).sort(byTime);
    const latest = pieces.at(-1);
    const earlier = pieces.slice(0, -1);
    if (!latest) {
      return {
        criterion,
        verdict: 'not proven' as const,
        evidence: undefined,
        earlier,
        why: `no evidence recorded: ${criterion.provenBy} has not run to that step`,
      };
    }
    if (latest.met === true)
      return { criterion, verdict: 'met', evidence: latest, earlier, why: undefined };
    if (latest.met === false)
      return { criterion, verdict: 'not met', evidence: latest, earlier, why: latest.summary };
    // A criterion recorded "not proven" (configured, not proven) says in its line what to set.
    const toProve = typeof latest.data.toProve === 'string' ? latest.data.toProve : undefined;
    return {
      criterion,
      verdict: 'not proven',
      evidence: latest,
      earlier,
      why: toProve ? latest.summary : `recorded without a verdict: ${latest.summary}`,
    };
  });
}

/**
 * 05's migration attempts, each told across its runs: the run that reached T035, its resumes and
 * the run that completed it or rolled it back (a lock lets one 05 run at a time, so the real runs
 * between the attempt's opening run and its close are its runs). Its downtime runs from T035 to
 * the Ready time the same attempt noted, never an earlier attempt's.
 */
export function migrationAttempts(
  audit: readonly AuditEntry[],
  notes: readonly NoteRecord[],
  titles: Record<string, string> = {},
): MigrationTimeline[] {
  const starts = notes
    .filter((n) => n.runbook === MIGRATE_RUNBOOK && n.key === DOWNTIME_START_NOTE)
    .sort(byTime);
  const realRuns = audit.filter(
    (e) => e.event === 'run-start' && e.runbook === MIGRATE_RUNBOOK && !e.dry_run && e.run_id,
  );
  return starts.map((start, i) => {
    const attempt = start.attempt;
    const mine = (n: NoteRecord) => (attempt ? n.attempt === attempt : n.run_id === start.run_id);
    const end = notes
      .filter((n) => mine(n) && n.key === DOWNTIME_END_NOTE)
      .sort(byTime)
      .at(-1);
    const close = attempt
      ? notes.find((n) => n.attempt === attempt && n.key === ATTEMPT_CLOSE_NOTE)
      : undefined;
    const opened = realRuns.find((e) => e.run_id === start.run_id)?.ts ?? start.ts;
    const next = starts[i + 1]?.ts;
    const until = close?.ts ?? next;
    const runs = attempt
      ? [
          ...new Set([
            start.run_id,
            ...realRuns
              .filter((e) => e.ts >= opened && (until === undefined || e.ts <= until))
              .map((e) => e.run_id as string),
            ...(close ? [close.run_id] : []),
          ]),
        ]
      : [start.run_id];
    const closeOutcome = (close?.value as { outcome?: unknown } | undefined)?.outcome;
    const outcome: MigrationTimeline['outcome'] = !close
      ? attempt
        ? 'open'
        : end
          ? 'completed'
          : 'open'
      : closeOutcome === 'rolled-back'
        ? 'rolled-back'
        : 'completed';
    const startedAt = timeOf(start.value) ?? start.ts;
    const endedAt = end ? (timeOf(end.value) ?? end.ts) : undefined;
    const measured = endedAt ? downtimeUntilReady(startedAt, endedAt) : undefined;
    return {
      runId: start.run_id,
      runs,
      outcome,
      steps: stepsOf(audit, new Set(runs), titles),
      downtime: { startedAt, endedAt, ms: measured?.ms, atMost: measured?.atMost ?? false },
      users: usersSaw(notes.filter((n) => mine(n) && n.key === USER_HEALTH_NOTE)),
    };
  });
}

/** The prober's records of an attempt (a resume probes again), as one. */
function usersSaw(records: readonly NoteRecord[]): HealthRecord | undefined {
  const all = records
    .map((n) => n.value as HealthRecord)
    .filter((r) => isRecord(r) && Array.isArray(r.transitions));
  if (all.length === 0) return undefined;
  const transitions = all.flatMap((r) => r.transitions).sort((a, b) => a.at.localeCompare(b.at));
  const downAt = transitions.findIndex((t) => !t.ok);
  const down = transitions[downAt];
  const up = down ? transitions.slice(downAt + 1).find((t) => t.ok) : undefined;
  return {
    intervalMs: all[0]!.intervalMs,
    startedAt: all.map((r) => r.startedAt).sort()[0]!,
    stoppedAt: all
      .map((r) => r.stoppedAt)
      .sort()
      .at(-1)!,
    ok: all.reduce((n, r) => n + (r.ok ?? 0), 0),
    failed: all.reduce((n, r) => n + (r.failed ?? 0), 0),
    transitions,
    outageMs: down && up ? Date.parse(up.at) - Date.parse(down.at) : undefined,
  };
}

/** The steps the runs ran, in the order they ran, each with its outcome. */
function stepsOf(
  audit: readonly AuditEntry[],
  runs: ReadonlySet<string>,
  titles: Record<string, string>,
): TimelineStep[] {
  const steps: TimelineStep[] = [];
  const open = new Map<string, TimelineStep>();
  for (const entry of audit) {
    if (!entry.run_id || !runs.has(entry.run_id) || !entry.step || entry.dry_run) continue;
    const key = `${entry.run_id}/${entry.step}`;
    if (entry.event === 'step-start') {
      const step: TimelineStep = {
        step: entry.step,
        title: titles[entry.step],
        startedAt: entry.ts,
        endedAt: undefined,
        outcome: 'running',
        runId: entry.run_id,
      };
      steps.push(step);
      open.set(key, step);
      continue;
    }
    const outcome = STEP_END_EVENTS[entry.event];
    if (!outcome) continue;
    const step = open.get(key);
    if (step) {
      step.endedAt = entry.ts;
      step.outcome = outcome;
      open.delete(key);
    } else {
      // verified-done / skipped steps are recorded without a start
      steps.push({
        step: entry.step,
        title: titles[entry.step],
        startedAt: entry.ts,
        endedAt: entry.ts,
        outcome,
        runId: entry.run_id,
      });
    }
  }
  // A step left without an end is cut short once its run is over (it ended, or another run came
  // after it: the lock lets one run at a time); otherwise it is still running.
  for (const step of open.values()) {
    const over = audit.some(
      (e) =>
        (e.run_id === step.runId && e.event === 'run-end') ||
        (e.run_id !== step.runId && e.runbook === MIGRATE_RUNBOOK && e.ts > step.startedAt),
    );
    if (over) step.outcome = 'cut short';
  }
  return steps;
}

const STEP_END_EVENTS: Partial<Record<AuditEntry['event'], string>> = {
  'step-ok': 'ok',
  'step-failed': 'failed',
  'step-skipped': 'skipped',
  'verified-done': 'verified-done',
};

/** What beersystem's users saw, from the prober's record: a sentence, then a blank line. */
function usersLines(t: MigrationTimeline): string[] {
  const u = t.users;
  if (!u) return [];
  const downAt = u.transitions.findIndex((x) => !x.ok);
  const down = u.transitions[downAt];
  const up = down ? u.transitions.slice(downAt + 1).find((x) => x.ok) : undefined;
  const every = `beersystem's /healthz asked every ${formatDuration(u.intervalMs)} (${u.ok} healthy answers, ${u.failed} failed)`;
  const seen = !down
    ? 'it never stopped answering'
    : up
      ? `it stopped answering at ${down.at} (${down.error ?? 'not healthy'}) and answered again at ${up.at} on ${up.redis ?? 'an unknown Redis'}: its users went ${formatDuration(u.outageMs ?? Date.parse(up.at) - Date.parse(down.at))} without it`
      : `it stopped answering at ${down.at} (${down.error ?? 'not healthy'}) and had not answered again when the prober stopped at ${u.stoppedAt}`;
  return [`What its users saw: ${every}; ${seen}.`, ''];
}

/** The attempt's downtime as formatDowntime says it; undefined while its end is unknown. */
export function downtimeFigure(d: MigrationTimeline['downtime']): string | undefined {
  return d?.ms === undefined ? undefined : formatDowntime({ ms: d.ms, atMost: d.atMost });
}

function downtimeText(a: MigrationTimeline): string {
  const figure = downtimeFigure(a.downtime);
  if (figure) return figure;
  return a.outcome === 'rolled-back'
    ? 'unknown: rolled back before beersystem was Ready on redis-shared'
    : 'unknown: its end was not recorded';
}

/** A downtime note holds an ISO time, or an object with `at`. */
function timeOf(value: unknown): string | undefined {
  if (typeof value === 'string' && !Number.isNaN(Date.parse(value))) return value;
  if (isRecord(value) && typeof value.at === 'string') return value.at;
  return undefined;
}

/** Every mutation a real run sent, masked as the audit log holds it. */
export function clusterChanges(audit: readonly AuditEntry[]): ClusterChange[] {
  return audit
    .filter((e) => e.event === 'command' && !e.dry_run && e.command)
    .map((e) => ({
      ts: e.ts,
      runbook: e.runbook,
      runId: e.run_id,
      step: e.step,
      command: maskSecrets(e.command as string),
    }));
}

function benchmarkFigures(notes: readonly NoteRecord[]): BenchmarkFigures | undefined {
  const note = notes
    .filter((n) => n.key === BENCHMARK_NOTE)
    .sort(byTime)
    .at(-1);
  if (!note || !isRecord(note.value)) return undefined;
  const v = note.value;
  const throughput = Array.isArray(v.throughput)
    ? v.throughput.filter(
        (t): t is ThroughputFigure =>
          isRecord(t) && typeof t.label === 'string' && typeof t.opsPerSec === 'number',
      )
    : [];
  const histogram = Array.isArray(v.histogram)
    ? v.histogram.filter(
        (b): b is LatencyBucket =>
          isRecord(b) && typeof b.leMs === 'number' && typeof b.count === 'number',
      )
    : undefined;
  return {
    throughput,
    histogram: histogram?.length ? histogram : undefined,
    histogramLabel: typeof v.histogramLabel === 'string' ? v.histogramLabel : undefined,
  };
}

export function buildReport(input: ReportInput): Report {
  const evidence = input.notes
    .map(toEvidence)
    .filter((e): e is Evidence => e !== undefined)
    .sort(byTime);
  const criterionIds = new Set(SUCCESS_CRITERIA.map((c) => c.id));
  return {
    generatedAt: input.generatedAt ?? new Date().toISOString(),
    criteria: criterionRows(evidence),
    otherEvidence: evidence.filter((e) => !criterionIds.has(e.id)),
    ...(() => {
      const attempts = migrationAttempts(input.audit, input.notes, input.stepTitles);
      return { attempts, timeline: attempts.at(-1) };
    })(),
    changes: clusterChanges(input.audit),
    benchmark: benchmarkFigures(input.notes),
  };
}

/** `20261130T140118Z-042ddb` → `042ddb`: the part that tells runs of one day apart. */
export function shortRunId(runId: string): string {
  const dash = runId.lastIndexOf('-');
  return dash >= 0 && dash < runId.length - 1 ? runId.slice(dash + 1) : runId;
}

function cell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\r?\n/g, ' ');
}

export function whereFrom(e: Evidence): string {
  return `${e.runbook} ${e.step ?? ''} run ${shortRunId(e.runId)}`.replace(/\s+/g, ' ');
}

export function counts(report: Report): Record<Verdict, number> {
  const out: Record<Verdict, number> = { met: 0, 'not met': 0, 'not proven': 0 };
  for (const row of report.criteria) out[row.verdict]++;
  return out;
}

export function renderMarkdown(report: Report): string {
  const c = counts(report);
  const lines: string[] = [
    '# redis-shared: deploy and migrate beersystem — report',
    '',
    `Generated ${report.generatedAt} from the audit log. ${c.met} of ${report.criteria.length} success criteria met, ${c['not met']} not met, ${c['not proven']} not proven.`,
    '',
    '## Success criteria',
    '',
    '| SC | criterion | verdict | evidence | when | run / step |',
    '| --- | --- | --- | --- | --- | --- |',
  ];
  for (const row of report.criteria) {
    const e = row.evidence;
    const text = row.verdict === 'met' ? (e?.summary ?? '') : (row.why ?? '');
    lines.push(
      `| ${row.criterion.id} | ${cell(row.criterion.text)} | ${row.verdict} | ${cell(text)} | ${e ? e.ts : '—'} | ${e ? cell(whereFrom(e)) : '—'} |`,
    );
  }
  if (report.otherEvidence.length) {
    lines.push(
      '',
      '## Further evidence',
      '',
      '| id | evidence | when | run / step |',
      '| --- | --- | --- | --- |',
    );
    for (const e of report.otherEvidence) {
      lines.push(`| ${e.id} | ${cell(e.summary)} | ${e.ts} | ${cell(whereFrom(e))} |`);
    }
  }
  lines.push('', '## Migration attempts', '');
  if (!report.attempts.length) {
    lines.push('05-migrate has not reached T035 in a real run: no downtime recorded.');
  } else {
    lines.push(
      '| attempt (run that reached T035) | runs | outcome | downtime | failed steps |',
      '| --- | --- | --- | --- | --- |',
    );
    for (const a of report.attempts) {
      const failed = a.steps
        .filter((s) => s.outcome === 'failed' || s.outcome === 'cut short')
        .map((s) => `${s.step} (${s.outcome}, run ${shortRunId(s.runId)})`);
      lines.push(
        `| ${shortRunId(a.runId)} | ${a.runs.map(shortRunId).join(', ')} | ${a.outcome} | ${downtimeText(a)} | ${failed.join(', ') || '—'} |`,
      );
    }
  }
  lines.push('', '## Migration timeline', '');
  const t = report.timeline;
  if (!t) lines.push('05-migrate has not reached T035 in a real run: no downtime recorded.');
  else {
    const d = t.downtime;
    const across = t.runs.length > 1 ? ` (across runs ${t.runs.map(shortRunId).join(', ')})` : '';
    lines.push(
      d?.ms !== undefined
        ? `The last attempt, ${t.outcome}${across}: downtime ${downtimeFigure(d)}, from ${d.startedAt} (T035) to ${d.endedAt} (beersystem Ready and healthy, as the cluster recorded it).`
        : `The last attempt, ${t.outcome}${across}: downtime started ${d?.startedAt} (T035); its end is unknown: no run of the attempt saw beersystem Ready on redis-shared.`,
      '',
      ...usersLines(t),
      '| step | title | run | started | took | outcome |',
      '| --- | --- | --- | --- | --- | --- |',
    );
    for (const s of t.steps) {
      const took = s.endedAt
        ? formatDuration(Date.parse(s.endedAt) - Date.parse(s.startedAt))
        : '—';
      lines.push(
        `| ${s.step} | ${cell(s.title ?? '')} | ${shortRunId(s.runId)} | ${s.startedAt} | ${took} | ${s.outcome} |`,
      );
    }
  }
  lines.push('', '## What changed in the cluster', '');
  if (!report.changes.length) lines.push('No mutation was sent by a real run.');
  else {
    lines.push('| when | runbook | step | command |', '| --- | --- | --- | --- |');
    for (const ch of report.changes) {
      lines.push(`| ${ch.ts} | ${ch.runbook} | ${ch.step ?? ''} | \`${cell(ch.command)}\` |`);
    }
  }
  lines.push('');
  return lines.join('\n');
}
