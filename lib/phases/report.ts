// The report of the whole change (T048): every success criterion with the evidence a runbook
// recorded for it (value, when, which run and step) or "not proven" with the reason, the
// migration's timeline with its downtime, and what changed in the cluster. Built from the audit
// log's notes and entries only, so it can be regenerated at any time and says nothing the log
// does not hold. Rendered as Markdown here (the pull-request body) and as HTML in report-html.ts.
import type { AuditEntry } from '../audit/audit.ts';
import { formatDuration } from '../duration.ts';
import { maskDeep, maskSecrets } from '../mask.ts';
import type { LatencyBucket } from '../redis/latency-histogram.ts';
import {
  BENCHMARK_NOTE,
  DOWNTIME_END_NOTE,
  DOWNTIME_START_NOTE,
  MIGRATE_RUNBOOK,
} from './migration-notes.ts';

/** A note as lib/engine/notes.ts's readNotes returns it (real runs only). */
export interface NoteRecord {
  runbook: string;
  run_id: string;
  step: string | null;
  ts: string;
  key: string;
  value: unknown;
  /** the migration attempt the note belongs to (lib/engine/attempts.ts) */
  attempt?: string;
}

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
}

export interface MigrationTimeline {
  runId: string;
  steps: TimelineStep[];
  downtime: { startedAt: string; endedAt: string | undefined; ms: number | undefined } | undefined;
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
  /** evidence under ids that are not success criteria (US4-AS1…, SC supplements) */
  otherEvidence: Evidence[];
  timeline: MigrationTimeline | undefined;
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
 * 05's real run that reached T035 last (a rollback run does not count), its steps from the audit
 * log, and the downtime from its notes: from T035's start to beersystem Ready and healthy.
 */
export function migrationTimeline(
  audit: readonly AuditEntry[],
  notes: readonly NoteRecord[],
  titles: Record<string, string> = {},
): MigrationTimeline | undefined {
  const starts = notes.filter(
    (n) => n.runbook === MIGRATE_RUNBOOK && n.key === DOWNTIME_START_NOTE,
  );
  const start = starts.sort(byTime).at(-1);
  if (!start) return undefined;
  const runId = start.run_id;
  // The end is the same attempt's, whichever run (a resume) noted it; never an earlier attempt's.
  const sameAttempt = (n: NoteRecord) =>
    start.attempt ? n.attempt === start.attempt : n.run_id === runId;
  const end = notes
    .filter((n) => sameAttempt(n) && n.key === DOWNTIME_END_NOTE)
    .sort(byTime)
    .at(-1);
  const steps: TimelineStep[] = [];
  const open = new Map<string, TimelineStep>();
  for (const entry of audit) {
    if (entry.run_id !== runId || !entry.step || entry.dry_run) continue;
    if (entry.event === 'step-start') {
      const step: TimelineStep = {
        step: entry.step,
        title: titles[entry.step],
        startedAt: entry.ts,
        endedAt: undefined,
        outcome: 'running',
      };
      steps.push(step);
      open.set(entry.step, step);
      continue;
    }
    const outcome = STEP_END_EVENTS[entry.event];
    if (!outcome) continue;
    const step = open.get(entry.step);
    if (step) {
      step.endedAt = entry.ts;
      step.outcome = outcome;
      open.delete(entry.step);
    } else {
      // verified-done / skipped steps are recorded without a start
      steps.push({
        step: entry.step,
        title: titles[entry.step],
        startedAt: entry.ts,
        endedAt: entry.ts,
        outcome,
      });
    }
  }
  const startedAt = timeOf(start.value) ?? start.ts;
  const endedAt = end ? (timeOf(end.value) ?? end.ts) : undefined;
  const ms = endedAt ? Date.parse(endedAt) - Date.parse(startedAt) : undefined;
  return { runId, steps, downtime: { startedAt, endedAt, ms } };
}

const STEP_END_EVENTS: Partial<Record<AuditEntry['event'], string>> = {
  'step-ok': 'ok',
  'step-failed': 'failed',
  'step-skipped': 'skipped',
  'verified-done': 'verified-done',
};

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
    timeline: migrationTimeline(input.audit, input.notes, input.stepTitles),
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
  lines.push('', '## Migration timeline', '');
  const t = report.timeline;
  if (!t) lines.push('05-migrate has not reached T035 in a real run: no downtime recorded.');
  else {
    const d = t.downtime;
    lines.push(
      d?.ms !== undefined
        ? `Downtime ${formatDuration(d.ms)}: from ${d.startedAt} (T035) to ${d.endedAt} (beersystem Ready and healthy), run ${shortRunId(t.runId)}.`
        : `Downtime started ${d?.startedAt} (T035), run ${shortRunId(t.runId)}; its end was not recorded.`,
      '',
      '| step | title | started | took | outcome |',
      '| --- | --- | --- | --- | --- |',
    );
    for (const s of t.steps) {
      const took = s.endedAt
        ? formatDuration(Date.parse(s.endedAt) - Date.parse(s.startedAt))
        : '—';
      lines.push(
        `| ${s.step} | ${cell(s.title ?? '')} | ${s.startedAt} | ${took} | ${s.outcome} |`,
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
