// A judgement: a check's verdict as one readable line and, when it fails, what to fix. Phase
// modules make them; the engine's check steps record them and list collected failures at once.

export interface Judgement {
  ok: boolean;
  /** one readable line: what was found */
  detail: string;
  /** when not ok: what the operator does about it */
  fix?: string;
}

/** Several judgements as one: ok when all are, otherwise the failed ones' details and fixes. */
export function allOf(...judgements: Judgement[]): Judgement {
  const failed = judgements.filter((j) => !j.ok);
  return failed.length === 0
    ? { ok: true, detail: judgements.map((j) => j.detail).join('; ') }
    : {
        ok: false,
        detail: failed.map((j) => j.detail).join('; '),
        fix: failed
          .map((j) => j.fix)
          .filter(Boolean)
          .join('; '),
      };
}

/** Failures collected over several checks, reported all at once. */
export interface PreflightFailure {
  step: string;
  detail: string;
  fix: string;
}

export function formatFailures(failures: readonly PreflightFailure[], rerun: string): string {
  const noun = failures.length === 1 ? 'check failed' : 'checks failed';
  return [
    `${failures.length} preflight ${noun}; nothing was changed:`,
    ...failures.map((f) => `  ${f.step}: ${f.detail}\n      fix: ${f.fix}`),
    `Fix them, then run ${rerun} again.`,
  ].join('\n');
}
