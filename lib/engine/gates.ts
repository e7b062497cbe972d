// Gates decide whether a runbook may start at all (the 24 h validation window before the old
// Redis is deleted, the earlier phases having passed). `--yes` never opens one; only
// `--override-gate "<reason>"` does, and that is audited. The cluster-stored gates (annotations
// written by the migration) implement the same interface.
import { readAuditEntries } from '../audit/audit.ts';

export interface GateResult {
  open: boolean;
  /** why it is open or closed, in words the operator can act on */
  reason: string;
}

export interface Gate<Ctx = unknown> {
  id: string;
  /** one line for --help: what must hold before the runbook may run */
  describe: string;
  check(ctx: Ctx): Promise<GateResult> | GateResult;
}

function isCompleteDefaultRun(detail: unknown): boolean {
  const d = (detail ?? {}) as { complete?: unknown; mode?: unknown };
  return d.complete === true && (d.mode === undefined || d.mode === 'default');
}

/**
 * Open when every required runbook has a real (not dry) run of its default steps that ended
 * `ok` and complete (every step ok, already done or not applying), as recorded in the audit log
 * at `auditLog`. A run in another mode (a rollback) never counts.
 */
export function requiredRunbooksGate(
  required: readonly string[],
): Gate<{ cfg: { auditLog: string } }> {
  return {
    id: 'requires',
    describe: `earlier runbooks completed: ${required.join(', ')}`,
    async check(ctx) {
      const entries = await readAuditEntries(ctx.cfg.auditLog);
      const missing = required.filter(
        (id) =>
          !entries.some(
            (e) =>
              e.runbook === id &&
              e.event === 'run-end' &&
              e.outcome === 'ok' &&
              !e.dry_run &&
              isCompleteDefaultRun(e.detail),
          ),
      );
      return missing.length === 0
        ? { open: true, reason: `${required.join(', ')} completed` }
        : {
            open: false,
            reason: `not yet completed in full: ${missing.join(', ')} (run ${missing
              .map((id) => `./runbooks/${id}.mts`)
              .join(', then ')} first)`,
          };
    },
  };
}
