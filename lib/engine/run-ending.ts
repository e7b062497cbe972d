// How a run ends on screen: what is read from the system for the last lines (where it stands
// after a run that stopped, what comes next after one that ended well, whether the runbook is
// complete however many runs it took), then the two views of the end — the human one (the
// summary table and those lines, on stderr) and the JSON one (one object on stdout).
import type { AuditLog } from '../audit/audit.ts';
import type { Config } from '../config.ts';
import { maskSecrets } from '../mask.ts';
import { errorMessage, readWithin } from './interrupt-scope.ts';
import type { Progress, StepOutcome } from './progress.ts';
import type { RunCommands } from './run-commands.ts';
import type { RunbookArgs } from './runbook-args.ts';
import {
  type RecoveryOf,
  type Runbook,
  type RunOutcome,
  runSummary,
  type SessionInfo,
  type StepDefinition,
} from './runbook-types.ts';
import { createStepContext, type StepContext } from './step-context.ts';

/** how long the last screen waits for the system's state before saying it could not be read */
const STANDING_READ_MS = 10_000;

export interface EndingDeps {
  runbook: Runbook;
  args: RunbookArgs;
  cfg: Config;
  info: SessionInfo;
  audit: AuditLog;
  progress: Progress;
  state: Record<string, unknown>;
  commands: RunCommands;
}

/** What a run knows at its end, for both views. */
export interface RunEnd {
  outcome: RunOutcome;
  outcomes: StepOutcome[];
  report?: string | undefined;
  alreadyComplete?: string | undefined;
  error?: string | undefined;
  /** the last lines of the human view */
  standing: string[];
}

export class RunEnding {
  constructor(private readonly d: EndingDeps) {}

  /**
   * The last screen of a run that changed something and did not complete: where the system
   * stands (the runbook's standing()), then the lines back and on.
   */
  async standing(
    outcome: RunOutcome,
    run: { changedPastRollbackPoint: boolean; stoppedAt: StepDefinition | undefined },
  ): Promise<string[]> {
    const { runbook, args, commands } = this.d;
    const check = runbook.standing;
    if (!check) return [];
    let sentence: string | undefined;
    try {
      // read after an interrupt too: the run's own signal would cut the read short
      sentence = await readWithin(
        () => check(this.readContext()),
        STANDING_READ_MS,
        'its state could not be read in time',
      );
    } catch (err) {
      sentence = `its state could not be read: ${maskSecrets(errorMessage(err))}`;
    }
    if (!sentence) return [];
    const lines = [maskSecrets(sentence)];
    const rollback = runbook.rollback;
    if (rollback && run.changedPastRollbackPoint && args.mode === 'default')
      lines.push(`  roll back: ${commands.rollback(rollback.mode)}`);
    // a refusal is gone past with a plain re-run: --from would skip the checks before the step
    if (outcome === 'refused') lines.push(`  re-run:    ${commands.line()}`);
    else if (run.stoppedAt) lines.push(`  resume:    ${commands.resume(run.stoppedAt.id)}`);
    return lines;
  }

  /** The last line of a run that ended well: the runbook's next(), or a dry run's real command. */
  async whatNext(): Promise<string[]> {
    const { runbook, args, commands } = this.d;
    if (args.dryRun) return [`next: run it for real: ${commands.line({ dryRun: false })}`];
    const next = runbook.next;
    if (!next || args.mode !== 'default') return [];
    try {
      const line = await readWithin(() => next(this.readContext()), STANDING_READ_MS, undefined);
      return line ? [`next: ${maskSecrets(line)}`] : [];
    } catch {
      return [];
    }
  }

  /**
   * The runbook's completed() check after a run that ended well: completion is the runbook's
   * state, however many runs it took, not this run's step list.
   */
  async completeByState(): Promise<boolean> {
    const check = this.d.runbook.completed;
    if (!check) return false;
    try {
      return Boolean(
        await readWithin(() => check(this.readContext()), STANDING_READ_MS, undefined),
      );
    } catch {
      return false;
    }
  }

  /** The summary table and the last lines, on stderr. */
  showHuman(end: RunEnd): void {
    const { args, cfg, info, progress, runbook } = this.d;
    progress.summary(runbook.id, end.outcomes, {
      outcome:
        args.mode === 'default'
          ? end.outcome
          : `${args.mode} ${end.outcome === 'ok' ? 'complete' : end.outcome}`,
      dryRun: args.dryRun,
      auditLog: cfg.auditLog,
      ...(end.report !== undefined ? { report: end.report } : {}),
      runId: info.runId,
      ...(end.standing.length > 0 ? { standing: end.standing } : {}),
    });
  }

  /** The --json object: the failed run's own when this one is its rollback. */
  json(end: RunEnd, recovery: RecoveryOf | undefined): object {
    const { args, cfg, info, runbook } = this.d;
    const summary = runSummary({
      runbook: runbook.id,
      runId: info.runId,
      mode: args.mode,
      dryRun: args.dryRun,
      outcome: end.outcome,
      steps: end.outcomes,
      auditLog: cfg.auditLog,
      report: end.report,
      alreadyComplete: end.alreadyComplete,
      error: end.error,
    });
    return recovery?.summary ? { ...summary, rolled_back_run: recovery.summary } : summary;
  }

  /** A context for reads after the run's end, not tied to the run's (perhaps aborted) signal. */
  private readContext(): StepContext {
    const { cfg, info, runbook, args, state, audit, commands } = this.d;
    return createStepContext({
      cfg,
      dryRun: true,
      runId: info.runId,
      runbook: runbook.id,
      mode: args.mode,
      step: null,
      flags: args.extra,
      state,
      signal: new AbortController().signal,
      audit,
      print: () => undefined,
      setReport: () => undefined,
      commandLine: (options) => commands.line(options),
    });
  }
}
