// Notes: small values one run leaves for a later one (the replica count to restore, a backup's
// path, a plan's hash, when the downtime started). They are audit events, so they survive the
// process, are masked like every entry, and a resume by --from, after a crash or by another
// operator finds them where the run's history already is.
import { readAuditEntries } from '../audit/audit.ts';

export interface Note {
  runbook: string;
  run_id: string;
  step: string | null;
  ts: string;
  key: string;
  value: unknown;
  /** the attempt (lib/engine/attempts.ts) the note belongs to, when one was open */
  attempt?: string;
}

interface NoteDetail {
  key?: unknown;
  value?: unknown;
  attempt?: unknown;
}

/** Every note of real (not dry) runs in the log, oldest first; filtered by runbook and key. */
export async function readNotes(
  auditLogPath: string,
  filter: { runbook?: string; key?: string } = {},
): Promise<Note[]> {
  const entries = await readAuditEntries(auditLogPath);
  const notes: Note[] = [];
  for (const entry of entries) {
    if (entry.event !== 'note' || entry.dry_run) continue;
    const detail = (entry.detail ?? {}) as NoteDetail;
    if (typeof detail.key !== 'string') continue;
    if (filter.runbook !== undefined && entry.runbook !== filter.runbook) continue;
    if (filter.key !== undefined && detail.key !== filter.key) continue;
    notes.push({
      runbook: entry.runbook,
      run_id: entry.run_id,
      step: entry.step,
      ts: entry.ts,
      key: detail.key,
      value: detail.value,
      ...(typeof detail.attempt === 'string' ? { attempt: detail.attempt } : {}),
    });
  }
  return notes;
}

/** A note must survive JSON (the audit line) unchanged, and stay small. */
export function checkNoteValue(key: string, value: unknown): void {
  let text: string | undefined;
  try {
    text = JSON.stringify(value);
  } catch (err) {
    throw new Error(`note ${key}: the value cannot be written as JSON (${(err as Error).message})`);
  }
  if (text === undefined) throw new Error(`note ${key}: the value cannot be written as JSON`);
  if (text.length > 16_384) {
    throw new Error(
      `note ${key}: the value is ${text.length} characters as JSON; notes are for small values (at most 16384): write a file and note its path`,
    );
  }
}
