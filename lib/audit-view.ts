// Filtering and presenting audit entries for ./runbooks/audit.mts.
import type { AuditEntry } from './audit.ts';
import { formatDuration, parseDuration } from './duration.ts';

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

/** `--runbook 05` matches `05-migrate`; `--run` matches a run id by prefix; `--step` exactly (any case). */
export function filterEntries(entries: AuditEntry[], filter: AuditFilter): AuditEntry[] {
  return entries.filter(
    (e) =>
      (!filter.runbook ||
        e.runbook === filter.runbook ||
        e.runbook?.startsWith(`${filter.runbook}-`)) &&
      (!filter.step || e.step?.toLowerCase() === filter.step.toLowerCase()) &&
      (!filter.run || e.run_id?.startsWith(filter.run)) &&
      (!filter.since || new Date(e.ts).getTime() >= filter.since.getTime()),
  );
}

const COLUMNS = [
  'SEQ',
  'TIME (UTC)',
  'RUN',
  'RUNBOOK',
  'STEP',
  'EVENT',
  'OUTCOME',
  'TOOK',
  'COMMAND / DETAIL',
];

export function formatAuditTable(entries: AuditEntry[], width = 160): string {
  if (entries.length === 0) return 'No audit entries match.';
  const rows = entries.map((e) => [
    String(e.seq),
    e.ts.replace('T', ' ').slice(0, 19),
    (e.run_id ?? '').slice(0, 8),
    e.runbook ?? '',
    e.step ?? '',
    e.dry_run ? `${e.event} (dry)` : e.event,
    e.outcome ?? '',
    e.duration_ms === null || e.duration_ms === undefined ? '' : formatDuration(e.duration_ms),
    e.command ?? describeDetail(e.detail),
  ]);
  const widths = COLUMNS.map((c, i) =>
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
  return [render(COLUMNS), ...rows.map(render)].join('\n');
}

function describeDetail(detail: unknown): string {
  if (detail === null || detail === undefined) return '';
  return typeof detail === 'string' ? detail : JSON.stringify(detail);
}

function clip(text: string, max: number): string {
  const oneLine = text.replace(/\s+/g, ' ');
  return oneLine.length <= max ? oneLine : `${oneLine.slice(0, max - 1)}…`;
}
