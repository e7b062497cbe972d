// `./runbooks/audit.mts runs`: the post-mortem's first view, one row per run (what ran, how it
// ended, how long beersystem was down, what the operator chose when a step failed) and the runs
// that belong together: a "Roll back now" run and the failed run it rolled back.
import { formatDuration } from '../duration.ts';
import type { AuditEntry } from './audit.ts';
import { shortRunId } from './audit-view.ts';

export interface RunSummary {
  runId: string;
  runbook: string;
  mode: string;
  dryRun: boolean;
  /** the run's end as recorded, or what its absence means */
  outcome: string;
  started: string;
  tookMs: number | undefined;
  downtimeMs: number | undefined;
  /** what the operator chose when a step failed: `T039 rollback` */
  choices: string[];
  /** the run this one belongs with: the failed run it rolled back, or the run that rolled it back */
  chainedTo: string | undefined;
  /** the failed step's error, whole */
  error: string | undefined;
}

const CHOICES = new Set(['retry', 'rollback', 'stop']);

/** `downtimeNote`: the note key that holds a run's measured downtime in ms (05's). */
export function summariseRuns(entries: readonly AuditEntry[], downtimeNote?: string): RunSummary[] {
  const runs = new Map<string, RunSummary>();
  const rolledBackBy = new Map<string, string>();
  for (const e of entries) {
    const id = e.run_id;
    if (!id) continue;
    let run = runs.get(id);
    if (!run) {
      run = {
        runId: id,
        runbook: e.runbook ?? '',
        mode: 'default',
        dryRun: false,
        outcome: 'no end recorded: killed, or still running',
        started: e.ts,
        tookMs: undefined,
        downtimeMs: undefined,
        choices: [],
        chainedTo: undefined,
        error: undefined,
      };
      runs.set(id, run);
    }
    const detail = (e.detail ?? {}) as Record<string, unknown>;
    if (e.event === 'run-start') {
      run.started = e.ts;
      if (typeof detail.mode === 'string') run.mode = detail.mode;
      run.dryRun = e.dry_run === true;
    } else if (e.event === 'run-end') {
      run.outcome = e.outcome ?? 'ended';
      run.tookMs = e.duration_ms ?? undefined;
    } else if (e.event === 'note' && downtimeNote && detail.key === downtimeNote) {
      const ms = Number(detail.value);
      if (Number.isFinite(ms)) run.downtimeMs = ms;
    } else if (e.event === 'confirm' && e.outcome && CHOICES.has(e.outcome)) {
      run.choices.push(`${e.step ?? '?'} ${e.outcome}`);
    } else if (e.event === 'confirm' && typeof detail.failed_run === 'string') {
      run.chainedTo = detail.failed_run;
      rolledBackBy.set(detail.failed_run, id);
    } else if (e.event === 'step-failed' && typeof detail.error === 'string') {
      run.error = `${e.step ?? ''}: ${detail.error}`;
    }
  }
  for (const [failed, rollback] of rolledBackBy) {
    const run = runs.get(failed);
    if (run && !run.chainedTo) run.chainedTo = rollback;
  }
  return [...runs.values()];
}

/** The runs `wanted` names (as `--run` matches them) and the runs chained to them. */
export function withChainedRuns(
  runs: readonly RunSummary[],
  matches: (runId: string) => boolean,
): Set<string> {
  const ids = new Set<string>();
  for (const run of runs) {
    if (!matches(run.runId)) continue;
    ids.add(run.runId);
    if (run.chainedTo) ids.add(run.chainedTo);
  }
  return ids;
}

const HEADERS = [
  'RUN',
  'RUNBOOK',
  'MODE',
  'OUTCOME',
  'STARTED (UTC)',
  'TOOK',
  'DOWNTIME',
  'CHOICES',
  'CHAINED',
];

function cells(run: RunSummary): string[] {
  return [
    shortRunId(run.runId),
    run.runbook,
    run.dryRun ? `${run.mode} (dry)` : run.mode,
    run.outcome,
    run.started.replace('T', ' ').slice(0, 19),
    run.tookMs === undefined ? '' : formatDuration(run.tookMs),
    run.downtimeMs === undefined ? '' : formatDuration(run.downtimeMs),
    run.choices.join(', '),
    run.chainedTo ? shortRunId(run.chainedTo) : '',
  ];
}

/** `audit`: this invocation's own command (with its --log or --env-file), for the hint line. */
export function formatRunsTable(
  runs: readonly RunSummary[],
  audit = './runbooks/audit.mts',
): string {
  if (runs.length === 0) return 'No runs match.';
  const rows = runs.map(cells);
  const widths = HEADERS.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const render = (row: string[]) =>
    row
      .map((cell, i) => cell.padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  const lines = [render(HEADERS)];
  for (const [i, row] of rows.entries()) {
    lines.push(render(row));
    const error = runs[i]!.error;
    if (error && runs[i]!.outcome !== 'ok') {
      lines.push(`    error: ${error.replace(/\n/g, '\n           ')}`);
    }
  }
  lines.push(
    '',
    `RUN is what --run takes: ${audit} --run <RUN> shows the run and the run chained to it.`,
  );
  return lines.join('\n');
}

/** Tab-separated with a header line, whole values and full run ids: for pipes. */
export function formatRunsTsv(runs: readonly RunSummary[]): string {
  const clean = (text: string) => text.replace(/[\t\r\n]+/g, ' ');
  return [
    HEADERS.join('\t'),
    ...runs.map((run) => {
      const row = cells(run);
      row[0] = run.runId;
      row[4] = run.started;
      row[8] = run.chainedTo ?? '';
      return row.map(clean).join('\t');
    }),
  ].join('\n');
}
