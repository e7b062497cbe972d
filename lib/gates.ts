// Gates decide whether a runbook may start at all (the 24 h validation window before the old
// Redis is deleted, the earlier phases having passed). `--yes` never opens one; only
// `--override-gate "<reason>"` does, and that is audited. The cluster-stored gates (annotations
// written by the migration) implement the same interface.
import { readAuditEntries } from './audit.ts';

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

/**
 * Open when every required runbook has a real (not dry) run that ended `ok` with every one of
 * its steps ok or already done, as recorded in the audit log at `auditLog`.
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
              (e.detail as { complete?: unknown } | null)?.complete === true,
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
