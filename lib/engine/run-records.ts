// A run's records: its audit lines, and where the run held the Lease, the anchors of its log
// and its run-end in the cluster (lib/audit/cluster-records.ts).
import type { AuditEntry, AuditInput, AuditLog } from '../audit/audit.ts';
import { ClusterRecords } from '../audit/cluster-records.ts';
import type { Config } from '../config.ts';
import { ClusterOrFileRunLock } from '../lock/lease-lock.ts';
import type { RunLock } from '../lock/lock.ts';
import { maskSecrets } from '../mask.ts';
import { errorMessage } from './interrupt-scope.ts';
import type { RunOutcome } from './runbook-types.ts';

/** entries between two anchors of a run's log in the cluster (besides the one at its end) */
export const ANCHOR_EVERY = 50;

export class RunRecords {
  /** the run's lock, once taken: its records go to the cluster only when it is the Lease */
  lock: RunLock | undefined;
  private lastEntry: AuditEntry | undefined;
  private anchoredSeq = 0;

  constructor(
    private readonly cfg: Config,
    private readonly audit: AuditLog,
    private readonly dryRun: boolean,
    private readonly warn: (line: string) => void,
  ) {}

  async append(input: AuditInput): Promise<AuditEntry> {
    const entry = await this.audit.append(input);
    this.lastEntry = entry;
    this.anchoredSeq ||= entry.seq;
    return entry;
  }

  /** A long run moves its log's anchor in the cluster forward every ANCHOR_EVERY entries. */
  async anchorIfDue(): Promise<void> {
    const entry = this.lastEntry;
    if (!entry || !this.inCluster()) return;
    if (entry.seq - this.anchoredSeq < ANCHOR_EVERY) return;
    this.anchoredSeq = entry.seq;
    await new ClusterRecords(this.cfg).anchorHead(this.cfg.auditLog, entry).catch((err) => {
      this.warn(
        `warning: the audit anchor could not be written to the cluster: ${maskSecrets(errorMessage(err))}`,
      );
    });
  }

  /**
   * A real run that held the Lease anchors its run-end in the cluster; a completed run records
   * the runbook as completed there, a completed rollback clears that.
   */
  async recordRunEnd(
    runEnd: AuditEntry,
    mode: string,
    outcome: RunOutcome,
    complete: boolean,
  ): Promise<void> {
    if (!this.inCluster()) return;
    const rollbackDone = mode === 'rollback' && outcome === 'ok';
    try {
      await new ClusterRecords(this.cfg).recordRunEnd({
        logPath: this.cfg.auditLog,
        entry: runEnd,
        mode,
        complete: complete || rollbackDone,
      });
    } catch (err) {
      this.warn(
        `warning: this run's record and audit anchor could not be written to the cluster: ${maskSecrets(errorMessage(err))}`,
      );
    }
  }

  private inCluster(): boolean {
    return !this.dryRun && this.lock instanceof ClusterOrFileRunLock && this.lock.inCluster;
  }
}
