// Attempts: one try at a change that spans runs, e.g. 05-migrate's window from T035 until the
// migration completes or is rolled back. Notes written while an attempt is open belong to it, and
// so do the notes its opening run wrote before opening it (the replica count P01 noted). A
// resume continues the open attempt and reads only its notes, so a value a rolled-back attempt
// left (when its downtime ended) can never stand for the current one.
//
// Opening and closing are notes themselves (attempt.open, attempt.close), so they live in the
// audit log beside the values they scope, survive a SIGKILL and are seen by any operator.
import type { Note } from './notes.ts';

export const ATTEMPT_OPEN_NOTE = 'attempt.open';
export const ATTEMPT_CLOSE_NOTE = 'attempt.close';

export type AttemptOutcome = 'completed' | 'rolled-back';

export interface Attempt {
  /** the id notes carry: the opening run's id */
  id: string;
  runbook: string;
  /** the run that opened it; its notes from before the opening belong to the attempt too */
  openedBy: string;
  openedAt: string;
  /** the step that opened it */
  openedAtStep: string | null;
  /** the runs that wrote to it, in order (the opener first, then resumes and the rollback) */
  runs: string[];
  closedAt?: string;
  outcome?: AttemptOutcome;
}

interface CloseValue {
  attempt?: unknown;
  outcome?: unknown;
}

/** The attempts of `runbook` in the order they were opened. */
export function attemptsOf(notes: readonly Note[], runbook: string): Attempt[] {
  const attempts: Attempt[] = [];
  const byId = new Map<string, Attempt>();
  for (const note of notes) {
    if (note.runbook !== runbook) continue;
    if (note.key === ATTEMPT_OPEN_NOTE) {
      const id = String((note.value as { attempt?: unknown })?.attempt ?? note.run_id);
      if (byId.has(id)) continue;
      const attempt: Attempt = {
        id,
        runbook,
        openedBy: note.run_id,
        openedAt: note.ts,
        openedAtStep: note.step,
        runs: [note.run_id],
      };
      attempts.push(attempt);
      byId.set(id, attempt);
      continue;
    }
    const attempt = note.attempt ? byId.get(note.attempt) : undefined;
    if (!attempt) continue;
    if (!attempt.runs.includes(note.run_id)) attempt.runs.push(note.run_id);
    if (note.key === ATTEMPT_CLOSE_NOTE) {
      const value = note.value as CloseValue;
      attempt.closedAt = note.ts;
      attempt.outcome = value?.outcome === 'rolled-back' ? 'rolled-back' : 'completed';
    }
  }
  return attempts;
}

/** The attempt still open, if any (at most one: an attempt is opened only when none is). */
export function openAttemptOf(notes: readonly Note[], runbook: string): Attempt | undefined {
  return attemptsOf(notes, runbook)
    .filter((a) => !a.closedAt)
    .at(-1);
}

/**
 * The attempt a run's notes are read from: the open one; for an undo mode (a rollback) with none
 * open, the last attempt that completed, which is the one it undoes. Undefined: none.
 */
export function attemptInScope(
  notes: readonly Note[],
  runbook: string,
  mode: string,
): Attempt | undefined {
  const attempts = attemptsOf(notes, runbook);
  const open = attempts.filter((a) => !a.closedAt).at(-1);
  if (open || mode === 'default') return open;
  const last = attempts.at(-1);
  return last?.outcome === 'completed' ? last : undefined;
}

/** The notes that belong to `attempt`: tagged with it, or its opener's notes from before. */
export function notesOfAttempt(notes: readonly Note[], attempt: Attempt): Note[] {
  return notes.filter(
    (n) =>
      n.runbook === attempt.runbook &&
      (n.attempt === attempt.id || (n.attempt === undefined && n.run_id === attempt.openedBy)),
  );
}

/** Notes outside every attempt: neither tagged with one nor written by a run that opened one. */
export function notesOutsideAttempts(notes: readonly Note[], runbook: string): Note[] {
  const openers = new Set(attemptsOf(notes, runbook).map((a) => a.openedBy));
  return notes.filter(
    (n) => n.runbook === runbook && n.attempt === undefined && !openers.has(n.run_id),
  );
}

/**
 * The latest value of `key` a run may read: from the attempt in scope when there is one, else
 * from the notes outside every attempt (a runbook that never opens one reads all its notes).
 */
export function recallInScope(
  notes: readonly Note[],
  runbook: string,
  mode: string,
  key: string,
): unknown {
  const attempt = attemptInScope(notes, runbook, mode);
  const pool = attempt ? notesOfAttempt(notes, attempt) : notesOutsideAttempts(notes, runbook);
  return pool.filter((n) => n.key === key).at(-1)?.value;
}
