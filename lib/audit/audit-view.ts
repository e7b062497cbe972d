// Filtering and presenting audit entries for ./runbooks/audit.mts.

import { formatDuration, parseDuration } from '../duration.ts';
import type { AuditEntry } from './audit.ts';

export interface AuditFilter {
  runbook?: string;
  step?: string;
  run?: string;
  /** Entries at or after this instant. */
  since?: Date;
}

/** `--since 2h` (a duration back from now) or `--since 2026-11-22T10:00:00Z` (an instant). */
export function parseSince(text: string, now = new Date()): Date | undefined {
  const ms = parseDuration(text);
  if (ms !== undefined) return new Date(now.getTime() - ms);
  if (!/^\d{4}-\d{2}-\d{2}/.test(text)) return undefined;
  const date = new Date(text);
  return Number.isNaN(date.getTime()) ? undefined : date;
}

// Run ids are `<UTC start, to the second>-<random suffix>` (20261130T140118Z-042ddb): every run
// of a day shares the first 9 characters, so the table shows the start time and the suffix.
const RUN_ID = /^\d{8}T(\d{6})Z-([0-9a-z]+)$/;

/** `20261130T140118Z-042ddb` → `140118-042ddb`; any other id is shown whole. */
export function shortRunId(runId: string): string {
  const match = RUN_ID.exec(runId);
  return match ? `${match[1]}-${match[2]}` : runId;
}

/** A run id, a prefix of it, its short form (or a prefix of that), or its random suffix. */
export function runMatches(runId: string | undefined, wanted: string): boolean {
  if (!runId) return false;
  const suffix = RUN_ID.exec(runId)?.[2];
  return runId.startsWith(wanted) || shortRunId(runId).startsWith(wanted) || suffix === wanted;
}

/** `--runbook 05` matches `05-migrate`; no filter matches every runbook. */
export function runbookMatches(runbook: string | undefined, wanted: string | undefined): boolean {
  return !wanted || runbook === wanted || runbook?.startsWith(`${wanted}-`) === true;
}

/** `--runbook 05` matches `05-migrate`; `--run` as runMatches; `--step` exactly (any case). */
export function filterEntries(entries: AuditEntry[], filter: AuditFilter): AuditEntry[] {
  return entries.filter(
    (e) =>
      runbookMatches(e.runbook, filter.runbook) &&
      (!filter.step || e.step?.toLowerCase() === filter.step.toLowerCase()) &&
      (!filter.run || runMatches(e.run_id, filter.run)) &&
      (!filter.since || new Date(e.ts).getTime() >= filter.since.getTime()),
  );
}

interface Column {
  header: string;
  /** the value in the table: short, one line */
  cell: (e: AuditEntry) => string;
  /** the value for a pipe (tsv): whole; the table's when absent */
  full?: (e: AuditEntry) => string;
}

const COLUMN_DEFS = {
  seq: { header: 'SEQ', cell: (e) => String(e.seq) },
  time: {
    header: 'TIME (UTC)',
    cell: (e) => e.ts.replace('T', ' ').slice(0, 19),
    full: (e) => e.ts,
  },
  run: { header: 'RUN', cell: (e) => shortRunId(e.run_id ?? ''), full: (e) => e.run_id ?? '' },
  runbook: { header: 'RUNBOOK', cell: (e) => e.runbook ?? '' },
  step: { header: 'STEP', cell: (e) => e.step ?? '' },
  event: { header: 'EVENT', cell: (e) => (e.dry_run ? `${e.event} (dry)` : e.event) },
  outcome: { header: 'OUTCOME', cell: (e) => e.outcome ?? '' },
  took: {
    header: 'TOOK',
    cell: (e) =>
      e.duration_ms === null || e.duration_ms === undefined ? '' : formatDuration(e.duration_ms),
    full: (e) =>
      e.duration_ms === null || e.duration_ms === undefined ? '' : String(e.duration_ms),
  },
  detail: { header: 'COMMAND / DETAIL', cell: (e) => e.command ?? describeDetail(e.detail) },
} satisfies Record<string, Column>;

export type ColumnName = keyof typeof COLUMN_DEFS;
export const COLUMN_NAMES = Object.keys(COLUMN_DEFS) as ColumnName[];
export const OUTPUT_FORMATS = ['table', 'tsv', 'json'] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

/** `--columns seq,run,step` → the names, or the first unknown one. */
export function parseColumns(text: string): { columns: ColumnName[] } | { unknown: string } {
  const names = text
    .split(',')
    .map((n) => n.trim().toLowerCase())
    .filter(Boolean);
  const unknown = names.find((n) => !(COLUMN_NAMES as string[]).includes(n));
  if (unknown !== undefined || names.length === 0) return { unknown: unknown ?? text };
  return { columns: names as ColumnName[] };
}

export function formatAuditTable(
  entries: AuditEntry[],
  width = 160,
  columns: readonly ColumnName[] = COLUMN_NAMES,
): string {
  if (entries.length === 0) return 'No audit entries match.';
  const defs: Column[] = columns.map((name) => COLUMN_DEFS[name]);
  const headers = defs.map((d) => d.header);
  const rows = entries.map((e) => defs.map((d) => d.cell(e)));
  const widths = headers.map((c, i) =>
    Math.max(c.length, ...rows.map((r) => (r[i] as string).length)),
  );
  const fixed = widths.slice(0, -1).reduce((a, b) => a + b + 2, 0);
  const last = Math.max(20, width - fixed);
  const render = (cells: string[]) =>
    cells
      .map((cell, i) =>
        i === cells.length - 1 ? clip(cell, last) : cell.padEnd(widths[i] as number),
      )
      .join('  ')
      .trimEnd();
  // A failed step's error is what a post-mortem reads first: whole, on its own line.
  const lines = rows.flatMap((row, i) => {
    const error = failureError(entries[i] as AuditEntry);
    return error
      ? [render(row), `    error: ${error.replace(/\n/g, '\n           ')}`]
      : [render(row)];
  });
  return [render(headers), ...lines].join('\n');
}

function failureError(e: AuditEntry): string | undefined {
  if (e.event !== 'step-failed') return undefined;
  const error = (e.detail as { error?: unknown } | null | undefined)?.error;
  return typeof error === 'string' && error !== '' ? error : undefined;
}

/** Tab-separated, a header line, whole values (tabs and newlines become spaces): for pipes. */
export function formatAuditTsv(
  entries: AuditEntry[],
  columns: readonly ColumnName[] = COLUMN_NAMES,
): string {
  const defs: Column[] = columns.map((name) => COLUMN_DEFS[name]);
  const clean = (text: string) => text.replace(/[\t\r\n]+/g, ' ');
  const lines = [
    defs.map((d) => d.header).join('\t'),
    ...entries.map((e) => defs.map((d) => clean((d.full ?? d.cell)(e))).join('\t')),
  ];
  return lines.join('\n');
}

function describeDetail(detail: unknown): string {
  if (detail === null || detail === undefined) return '';
  return typeof detail === 'string' ? detail : JSON.stringify(detail);
}

function clip(text: string, max: number): string {
  const oneLine = text.replace(/\s+/g, ' ');
  return oneLine.length <= max ? oneLine : `${oneLine.slice(0, max - 1)}…`;
}
