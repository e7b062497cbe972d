// The guards before a run's first step, in order: the pinned kube context, the lock (a dry run
// only says who holds it), the gates, the runbook's completed() check and, without a terminal,
// every confirmation the flags cannot give. Each lets the run go on or says how it ends (a
// RunStop); none sends a mutation.
import { dirname, join } from 'node:path';
import type { AuditInput } from '../audit/audit.ts';
import { clusterRequiredRunbooksGate } from '../audit/cluster-records.ts';
import type { Config } from '../config.ts';
import { ClusterOrFileRunLock, LeaseRunLock } from '../lock/lease-lock.ts';
import { FileRunLock, type RunLock } from '../lock/lock.ts';
import { onForcedExit } from './forced-exit.ts';
import { type Gate, requiredRunbooksGate } from './gates.ts';
import { errorMessage, Interrupted, type InterruptScope } from './interrupt-scope.ts';
import { contextMismatch, kubectlContextReader } from './kube-context.ts';
import type { Progress, StepOutcome } from './progress.ts';
import type { RunConfirmations } from './run-confirmations.ts';
import type { RunbookArgs } from './runbook-args.ts';
import {
  type EngineOptions,
  EXIT,
  type Runbook,
  type RunOutcome,
  type SessionInfo,
} from './runbook-types.ts';
import { killRunningCommandsNow } from './shell.ts';
import type { RunShared, StepContext } from './step-context.ts';

/** How a run ends before its first step. */
export interface RunStop {
  outcome: RunOutcome;
  code: number;
  message?: string;
}

export interface PreambleDeps {
  runbook: Runbook;
  args: RunbookArgs;
  cfg: Config;
  options: EngineOptions;
  info: SessionInfo;
  progress: Progress;
  scope: InterruptScope;
  record: (input: AuditInput) => Promise<unknown>;
  outcomes: StepOutcome[];
  confirmations: RunConfirmations;
}

export interface HeldLock {
  lock: RunLock;
  /** unregisters the lock's release on a forced exit (a second Ctrl-C) */
  forgetForcedExit: () => void;
}

export class RunPreamble {
  constructor(private readonly d: PreambleDeps) {}

  /** The run stops (usage) unless kubectl's current context is the pinned one. */
  async checkContext(): Promise<RunStop | undefined> {
    const { cfg, options, scope, info, progress } = this.d;
    const readContext = options.readKubeContext ?? kubectlContextReader;
    let current: string;
    try {
      current = await scope.until(readContext(cfg));
    } catch (err) {
      if (err instanceof Interrupted) throw err;
      const message = `cannot read the current kube context: ${errorMessage(err)}\nNothing was run. Check that kubectl is installed and that KUBECONFIG (or ~/.kube/config) names the ${cfg.kubeContext} context, then re-run`;
      progress.log(`${info.program}: ${message}`);
      return { outcome: 'context-mismatch', code: EXIT.usage, message };
    }
    const mismatch = contextMismatch(current, cfg.kubeContext);
    if (!mismatch) return undefined;
    progress.log(`${info.program}: ${mismatch}`);
    return { outcome: 'context-mismatch', code: EXIT.usage, message: mismatch };
  }

  async takeLock(shared: RunShared): Promise<RunStop | HeldLock> {
    const { info, runbook, progress, record } = this.d;
    const lock = this.createLock();
    const result = await lock.acquire({
      runId: info.runId,
      runbook: runbook.id,
      operator: info.operator,
      host: info.host,
      pid: process.pid,
    });
    if (!result.acquired) {
      const h = result.holder;
      const message = `locked: run ${h.runId} of ${h.runbook} by ${h.operator}@${h.host} (pid ${h.pid}) holds ${lock.location} since ${h.acquiredAt}, until ${h.expiresAt} unless renewed. Wait for it to finish, then re-run`;
      progress.log(`${info.program}: ${message}`);
      await record({
        event: 'gate',
        outcome: 'locked',
        detail: { gate: 'run-lock', location: lock.location, holder: h },
      });
      return { outcome: 'locked', code: EXIT.locked, message };
    }
    const forgetForcedExit = onForcedExit(async () => {
      // a command still changing the cluster must be gone before the lock lets the next run in
      killRunningCommandsNow();
      await lock.release();
    });
    shared.lockLost = () => lock.lostReason?.();
    if (lock instanceof ClusterOrFileRunLock && lock.fallback) {
      progress.log(`warning: ${lock.fallback}`);
    }
    if (result.takenOverFrom) {
      progress.log(
        `took over a stale lock of run ${result.takenOverFrom.runId} (${result.takeoverReason})`,
      );
      await record({
        event: 'gate',
        outcome: 'lock-taken-over',
        detail: {
          gate: 'run-lock',
          location: lock.location,
          previous: result.takenOverFrom,
          reason: result.takeoverReason,
        },
      });
    }
    return { lock, forgetForcedExit };
  }

  /** A dry run takes no lock; it says who holds it, since a real run now would stop there. */
  async sayWhoHoldsTheLock(): Promise<void> {
    const lock = this.createLock();
    const holder = await lock.peek?.().catch(() => undefined);
    if (holder) {
      this.d.progress.log(
        `note: ${lock.location} is held by run ${holder.runId} of ${holder.runbook} by ${holder.operator}@${holder.host} since ${holder.acquiredAt}; a real run now would exit 4`,
      );
    }
  }

  /** The first closed gate that --override-gate does not open; every gate's answer is audited. */
  async closedGate(ctx: StepContext): Promise<RunStop | undefined> {
    const { runbook, args, scope, progress, info, record } = this.d;
    const gates: Gate<StepContext>[] = [
      ...(runbook.requires?.length
        ? [clusterRequiredRunbooksGate(runbook.requires, requiredRunbooksGate(runbook.requires))]
        : []),
      ...(runbook.gates ?? []),
    ];
    const override = args.overrideGate;
    for (const gate of gates) {
      let result: { open: boolean; reason: string };
      try {
        result = await scope.until(Promise.resolve(gate.check(ctx)));
      } catch (err) {
        if (err instanceof Interrupted) throw err;
        // A gate that cannot be read is closed: the safe answer when in doubt.
        result = { open: false, reason: `could not be checked: ${errorMessage(err)}` };
      }
      const detail = { gate: gate.id, reason: result.reason };
      if (result.open) {
        await record({ event: 'gate', outcome: 'open', detail });
        continue;
      }
      if (override !== undefined) {
        progress.log(`gate ${gate.id} is closed (${result.reason}); overridden: ${override}`);
        await record({
          event: 'gate',
          outcome: 'overridden',
          detail: { ...detail, override_reason: override },
        });
        continue;
      }
      const message = `gate ${gate.id} is closed: ${result.reason}. Nothing was run. Re-run when it opens, or with --override-gate "<why it is safe>" to go through it (audited)`;
      progress.log(`${info.program}: ${message}`);
      await record({ event: 'gate', outcome: 'closed', detail });
      return { outcome: 'gate-closed', code: EXIT.gateClosed, message };
    }
    return undefined;
  }

  /**
   * A plain re-run of a complete runbook verifies that and changes nothing: the completed()
   * check's sentence, with every step recorded as skipped; undefined when the run goes on.
   */
  async alreadyComplete(ctx: StepContext): Promise<string | undefined> {
    const { runbook, args, scope, progress, info, outcomes, record } = this.d;
    const check = runbook.completed;
    const plain = args.mode === 'default' && args.from === undefined && args.only.length === 0;
    if (!check || !plain) return undefined;
    const sentence = await scope.until(Promise.resolve(check(ctx)));
    if (!sentence) return undefined;
    progress.log(`already complete: ${sentence}. Nothing to do; no step was run`);
    for (const [index, step] of info.steps.entries()) {
      const outcome = outcomes[index] as StepOutcome;
      outcome.status = 'skipped';
      outcome.reason = 'the runbook is already complete';
      await record({
        event: 'step-skipped',
        step: step.id,
        risk: step.risk,
        detail: { reason: outcome.reason, already_complete: sentence },
      });
    }
    return sentence;
  }

  /** Without a terminal, a confirmation the flags cannot give stops the run before any step. */
  async refusedWithoutTerminal(ctx: StepContext): Promise<RunStop | undefined> {
    const { confirmations, outcomes, progress, info, record } = this.d;
    const refusal = confirmations.refusalWithoutTerminal(ctx);
    if (!refusal) return undefined;
    const { index, step } = refusal;
    const message = `${refusal.message}. Nothing was run: without a terminal every confirmation is checked before the first step`;
    const outcome = outcomes[index] as StepOutcome;
    outcome.status = 'refused';
    await record({
      step: step.id,
      risk: step.risk,
      event: 'confirm',
      outcome: 'refused',
      detail: { message, before_first_step: true },
    });
    progress.stepFinished(outcome);
    progress.log(`${info.program}: ${message}`);
    return { outcome: 'refused', code: EXIT.usage, message };
  }

  /** The Lease (lib/lock/lease-lock.ts); the lock file only where no cluster can be reached. */
  private createLock(): RunLock {
    const { cfg, options, progress, info, record } = this.d;
    const custom = options.createLock?.(cfg);
    if (custom) return custom;
    const file = new FileRunLock(join(dirname(cfg.auditLog), 'run.lock'), {
      ttlMs: cfg.timeouts.lockTtlMs,
    });
    const lease = new LeaseRunLock(cfg, {
      onLost: (reason) => {
        progress.log(`${info.program}: lost the lock: ${reason}. No further mutation is sent`);
        record({ event: 'gate', outcome: 'lock-lost', detail: { gate: 'run-lock', reason } }).catch(
          () => undefined,
        );
      },
    });
    return new ClusterOrFileRunLock(lease, file);
  }
}
