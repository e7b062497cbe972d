// What a step's failure becomes: on a terminal, inside a confirmed sequence or past the
// runbook's rollback point, the question retry / roll back now / stop; then the audit line and
// the screen's lines for each kind of end (interrupted, lock lost, refused, failed), with the
// undo and resume commands made for this run.
import type { AuditInput } from '../audit/audit.ts';
import { LockLostError } from '../lock/lock.ts';
import { maskSecrets } from '../mask.ts';
import { ConfirmationRefused, inquirerPrompter, isInteractiveTerminal } from './confirm.ts';
import { askAfterFailure, type FailureChoice } from './failure-choice.ts';
import { errorMessage, Interrupted, type InterruptScope } from './interrupt-scope.ts';
import type { Progress, StepOutcome } from './progress.ts';
import type { RunCommands } from './run-commands.ts';
import type { RunConfirmations } from './run-confirmations.ts';
import type { RunStop } from './run-preamble.ts';
import type { RunbookArgs } from './runbook-args.ts';
import {
  type EngineOptions,
  EXIT,
  type RecoveryOf,
  type Runbook,
  type SessionInfo,
  type StepDefinition,
} from './runbook-types.ts';
import type { StepContext } from './step-context.ts';

export interface FailuresDeps {
  runbook: Runbook;
  args: RunbookArgs;
  options: EngineOptions;
  info: SessionInfo;
  progress: Progress;
  scope: InterruptScope;
  commands: RunCommands;
  confirmations: RunConfirmations;
  record: (input: AuditInput) => Promise<unknown>;
  contextFor: (step: StepDefinition) => StepContext;
  /** a step at or after the runbook's rollback point has been sent to run in this run */
  changedPastRollbackPoint: () => boolean;
}

/** How a failed step ends the run; `rollback` when the operator chose "roll back now". */
export interface FailedRun extends RunStop {
  rollback?: RecoveryOf;
}

export class RunFailures {
  constructor(private readonly d: FailuresDeps) {}

  /**
   * On a terminal, a step that fails inside a confirmed sequence, or past the runbook's rollback
   * point, asks: retry, roll back now (when the runbook has a rollback), or stop. Undefined
   * when nobody is asked (no terminal, --yes, a dry run, an interrupt): the run stops as always.
   */
  async ask(
    step: StepDefinition,
    outcome: StepOutcome,
    error: unknown,
    timing: { waited: number },
  ): Promise<FailureChoice | undefined> {
    const { args, options, scope, progress, confirmations, commands, runbook } = this.d;
    await new Promise((next) => setImmediate(next)); // an interrupt's handler goes first
    if (
      error instanceof Interrupted ||
      error instanceof LockLostError ||
      error instanceof ConfirmationRefused ||
      scope.interrupted ||
      args.dryRun ||
      args.yes ||
      !(options.isInteractive ?? isInteractiveTerminal)()
    )
      return undefined;
    const rollback = this.rollbackOffer(step);
    if (!confirmations.inConfirmedSequence(step.id) && !rollback) return undefined;
    const message = maskSecrets(errorMessage(error));
    outcome.status = 'failed';
    outcome.error = message;
    progress.stepFinished(outcome);
    progress.log(`  error: ${message.replaceAll('\n', '\n    ')}`);
    const asked = Date.now();
    const answer = (choice: string, detail: Record<string, unknown>) =>
      this.d.record({
        step: step.id,
        risk: step.risk,
        event: 'confirm',
        outcome: choice,
        detail: { method: 'prompt', after_failure: message, ...detail },
      });
    let choice: FailureChoice;
    try {
      choice = await scope.until(
        askAfterFailure(
          {
            stepId: step.id,
            title: step.title,
            resume: commands.resume(step.id),
            ...(rollback ? { rollback } : {}),
            ...(rollback && runbook.rollback?.stopLeaves
              ? { stopLeaves: runbook.rollback.stopLeaves }
              : {}),
          },
          options.prompter ?? inquirerPrompter,
        ),
      );
    } catch (err) {
      // Ctrl-C at the question: the step's own error is still what the audit must keep.
      await answer('interrupted', {});
      throw err;
    }
    const waited = Date.now() - asked;
    timing.waited += waited;
    await answer(choice, { waited_ms: waited });
    if (choice === 'retry') {
      delete outcome.error;
      outcome.status = 'not-run';
    }
    return choice;
  }

  /** Audits the failure, prints what it means and what to run next, and says how the run ends. */
  async settle(
    step: StepDefinition,
    outcome: StepOutcome,
    err: unknown,
    /** shown: the failure is on screen already (the operator was asked what to do) */
    after: { shown?: boolean; rollback?: boolean } = {},
  ): Promise<FailedRun> {
    const { scope, commands, progress, info, runbook } = this.d;
    const record = this.d.record;
    const base = { step: step.id, risk: step.risk };
    // Ctrl-C on a terminal signals the whole process group: a command may die of it and
    // report back before our own handler has run. Give the handler that turn first.
    await new Promise((next) => setImmediate(next));
    const interrupted =
      err instanceof Interrupted ||
      scope.interrupted ||
      (err instanceof ConfirmationRefused && err.interrupted);
    const message = maskSecrets(errorMessage(err));
    const resume = commands.resume(step.id);
    if (interrupted) {
      outcome.status = 'interrupted';
      await record({
        ...base,
        event: 'step-failed',
        outcome: 'interrupted',
        duration_ms: outcome.duration_ms,
        ...(outcome.waited_ms ? { detail: { waited_ms: outcome.waited_ms } } : {}),
      });
      progress.stepFinished(outcome);
      progress.log(`  resume: ${resume}`);
      return { outcome: 'interrupted', code: EXIT.interrupted, message: 'interrupted' };
    }
    if (err instanceof LockLostError) {
      outcome.status = 'failed';
      outcome.error = message;
      await record({
        ...base,
        event: 'step-failed',
        outcome: 'lock-lost',
        detail: { error: message },
      });
      progress.stepFinished(outcome);
      progress.log(`${info.program}: ${message}`);
      progress.log(`  resume: ${resume}`);
      return { outcome: 'locked', code: EXIT.locked, message };
    }
    if (err instanceof ConfirmationRefused) {
      outcome.status = 'refused';
      await record({ ...base, event: 'confirm', outcome: 'refused', detail: { message } });
      progress.stepFinished(outcome);
      progress.log(`${info.program}: ${message}`);
      progress.log(`  re-run: ${commands.line()}`);
      return { outcome: 'refused', code: EXIT.usage, message };
    }
    outcome.status = 'failed';
    outcome.error = message;
    const undo = await this.undoOf(step);
    await record({
      ...base,
      event: 'step-failed',
      outcome: 'failed',
      duration_ms: outcome.duration_ms,
      detail: {
        error: message,
        ...(undo ? { undo } : {}),
        ...(outcome.waited_ms ? { waited_ms: outcome.waited_ms } : {}),
      },
    });
    if (!after.shown) {
      progress.stepFinished(outcome);
      progress.log(`  error: ${message.replaceAll('\n', '\n    ')}`);
    }
    const failed: FailedRun = { outcome: 'failed', code: EXIT.stepFailed, message };
    const rollback = runbook.rollback;
    if (after.rollback && rollback) {
      failed.rollback = { runId: info.runId, step: step.id, error: message };
      progress.log(`  rolling back now: ${commands.rollback(rollback.mode)}`);
    } else {
      progress.log(`  undo: ${undo ?? 'nothing recorded for this step'}`);
      progress.log(`  resume: ${resume}`);
    }
    return failed;
  }

  /** The rollback this step's failure may start, if the runbook has one and it applies here. */
  private rollbackOffer(step: StepDefinition): { command: string; title: string } | undefined {
    const { runbook, commands } = this.d;
    const rollback = runbook.rollback;
    // Nothing past the rollback point has been run yet: there is nothing to roll back.
    if (!rollback || !this.d.changedPastRollbackPoint() || !commands.atOrAfterRollbackPoint(step))
      return undefined;
    const mode = runbook.modes?.[rollback.mode];
    return { command: commands.rollback(rollback.mode), title: mode?.title ?? rollback.mode };
  }

  /** The step's undo line, its commands built for this run's cluster and log. */
  private async undoOf(step: StepDefinition): Promise<string | undefined> {
    if (typeof step.undo !== 'function') return step.undo;
    try {
      return maskSecrets(await step.undo(this.d.contextFor(step)));
    } catch (err) {
      return `(the undo line could not be made: ${maskSecrets(errorMessage(err))})`;
    }
  }
}
