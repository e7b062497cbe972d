// One run of one runbook, from run-start to run-end: the guards before the first step
// (run-preamble.ts), then each step's lifecycle (skip() → skipped; done() → verified-done; else
// confirm → execute → post-check, or fail), with every event audited (run-records.ts),
// confirmations asked once per sequence (run-confirmations.ts), progress on stderr, the
// printed commands made for this run (run-commands.ts), and the exit code and the last screen
// decided in one place (finish(), run-ending.ts).
import type { AuditInput, AuditLog } from '../audit/audit.ts';
import type { Config } from '../config.ts';
import type { RunLock } from '../lock/lock.ts';
import { maskSecrets } from '../mask.ts';
import type { CommandLineOptions } from './command-line.ts';
import type { FailureChoice } from './failure-choice.ts';
import { errorMessage, Interrupted, InterruptScope } from './interrupt-scope.ts';
import type { Progress, StepOutcome, StepStatus } from './progress.ts';
import type { Risk } from './risk.ts';
import { RunCommands } from './run-commands.ts';
import { RunConfirmations } from './run-confirmations.ts';
import { type RunEnd, RunEnding } from './run-ending.ts';
import { RunFailures } from './run-failures.ts';
import { RunPreamble, type RunStop } from './run-preamble.ts';
import { RunRecords } from './run-records.ts';
import type { RunbookArgs } from './runbook-args.ts';
import {
  type EngineOptions,
  EXIT,
  type RecoveryOf,
  type Runbook,
  type RunOutcome,
  type SessionInfo,
  type StepDefinition,
} from './runbook-types.ts';
import { stopRunningCommands } from './shell.ts';
import { createStepContext, type RunShared, type StepContext } from './step-context.ts';

export { ANCHOR_EVERY } from './run-records.ts';
export type { SessionInfo } from './runbook-types.ts';

/** after an interrupt, how long the step has to write its last audit lines */
const WIND_DOWN_MS = 5_000;

class PostCheckFailed extends Error {
  override readonly name = 'PostCheckFailed';
}

/** A step's clock: since it started, less the time spent waiting for the operator. */
interface StepTiming {
  started: number;
  waited: number;
  confirmed: boolean;
}

/** One run of one runbook, from run-start to run-end. */
export class RunSession {
  private readonly outcomes: StepOutcome[];
  private readonly state: Record<string, unknown> = {};
  private readonly shared: RunShared = { notes: new Map(), unsentMutations: 0 };
  private readonly scope: InterruptScope;
  private readonly records: RunRecords;
  private readonly commands: RunCommands;
  private readonly confirmations: RunConfirmations;
  private readonly ending: RunEnding;
  private readonly failures: RunFailures;
  /** steps left out by --from/--only: skipped, but the run is then not the runbook's completion */
  private readonly notSelected = new Set<string>();
  private lock: RunLock | undefined;
  /** unregisters the lock's release on a forced exit (a second Ctrl-C) */
  private forgetForcedExit: () => void = () => undefined;
  private report: string | undefined;
  private alreadyComplete: string | undefined;
  /** a step at or after the runbook's rollback point has been sent to run in this run */
  private changedPastRollbackPoint = false;
  /** set when the operator chose "roll back now": the caller starts that run next */
  rollbackRequest: RecoveryOf | undefined;
  private stepStartedAt = Date.now();
  private baseContext: StepContext | undefined;
  private startedSteps = false;
  private readonly started = Date.now();
  /** the step the run stopped at (failed or interrupted), for the last screen's resume line */
  private stoppedAt: StepDefinition | undefined;

  constructor(
    private readonly runbook: Runbook,
    private readonly args: RunbookArgs,
    private readonly cfg: Config,
    private readonly audit: AuditLog,
    private readonly progress: Progress,
    private readonly options: EngineOptions,
    private readonly info: SessionInfo,
  ) {
    this.outcomes = info.steps.map((s) => ({
      id: s.id,
      title: s.title,
      status: 'not-run' as StepStatus,
      duration_ms: 0,
    }));
    progress.setLabels((o) => this.labelOf(o));
    this.scope = new InterruptScope(options.signal);
    this.records = new RunRecords(cfg, audit, args.dryRun, (line) => progress.log(line));
    this.commands = new RunCommands(runbook, args, info);
    const record = (input: AuditInput) => this.record(input);
    this.confirmations = new RunConfirmations({
      info,
      args,
      options,
      progress,
      scope: this.scope,
      record,
    });
    this.failures = new RunFailures({
      runbook,
      args,
      options,
      info,
      progress,
      scope: this.scope,
      commands: this.commands,
      confirmations: this.confirmations,
      record,
      contextFor: (step) => this.contextFor({ id: step.id, risk: step.risk }),
      changedPastRollbackPoint: () => this.changedPastRollbackPoint,
    });
    this.ending = new RunEnding({
      runbook,
      args,
      cfg,
      info,
      audit,
      progress,
      state: this.state,
      commands: this.commands,
    });
  }

  async execute(): Promise<number> {
    try {
      return await this.phases();
    } catch (err) {
      if (err instanceof Interrupted || this.scope.interrupted) {
        return this.finish('interrupted', EXIT.interrupted, 'interrupted');
      }
      // A fault in the engine or an audit log that cannot be written: still end the run cleanly.
      const message = maskSecrets(errorMessage(err));
      this.progress.log(`error: ${message}`);
      return this.finish('failed', EXIT.stepFailed, message);
    }
  }

  /**
   * "passed" for a read-only check that holds (already done is for a change already in place),
   * and "would change" for a change a dry run only printed, as Ansible's check mode says.
   */
  private labelOf(outcome: StepOutcome): string | undefined {
    const risk = this.info.steps.find((s) => s.id === outcome.id)?.risk;
    if (outcome.status === 'verified-done' && risk === 'read') return 'passed';
    if (outcome.status === 'ok' && this.args.dryRun && risk !== 'read') return 'would change';
    return undefined;
  }

  private get mode(): string {
    return this.args.mode;
  }

  private contextFor(step: { id: string; risk: Risk } | null): StepContext {
    return createStepContext({
      cfg: this.cfg,
      dryRun: this.args.dryRun,
      runId: this.info.runId,
      runbook: this.runbook.id,
      mode: this.mode,
      step,
      flags: this.args.extra,
      state: this.state,
      shared: this.shared,
      signal: this.scope.signal,
      audit: this.audit,
      print: (line) => this.progress.log(line),
      showWaiting: (what, started, detail) => this.progress.waiting(what, started, detail),
      endWaiting: () => {
        const title = this.info.steps.find((s) => s.id === step?.id)?.title;
        if (step && title !== undefined) {
          this.progress.stepStarted(step.id, title, this.stepStartedAt);
        }
      },
      setReport: (path) => {
        this.report = path;
      },
      setStatus: (render) => this.progress.setStatus(render),
      commandLine: (options: CommandLineOptions | undefined) => this.commands.line(options),
    });
  }

  private async phases(): Promise<number> {
    const { args, runbook } = this;
    await this.record({
      event: 'run-start',
      detail: {
        argv: this.options.argv ?? process.argv.slice(2),
        mode: this.mode,
        steps: [...this.info.selected],
        pid: process.pid,
      },
    });
    const modeTitle =
      this.mode === 'default' ? '' : ` — ${this.mode}: ${runbook.modes?.[this.mode]?.title}`;
    this.progress.log(
      `${runbook.id}: ${runbook.title}${modeTitle}${args.dryRun ? ' (dry run: no mutation is sent)' : ''}`,
    );

    const preamble = new RunPreamble({
      runbook,
      args,
      cfg: this.cfg,
      options: this.options,
      info: this.info,
      progress: this.progress,
      scope: this.scope,
      record: (input) => this.record(input),
      outcomes: this.outcomes,
      confirmations: this.confirmations,
    });
    const stop = (s: RunStop) => this.finish(s.outcome, s.code, s.message);
    const wrongContext = await preamble.checkContext();
    if (wrongContext) return stop(wrongContext);
    if (!args.dryRun) {
      const held = await preamble.takeLock(this.shared);
      if ('outcome' in held) return stop(held);
      this.lock = held.lock;
      this.records.lock = held.lock;
      this.forgetForcedExit = held.forgetForcedExit;
    } else {
      await preamble.sayWhoHoldsTheLock();
    }
    this.baseContext = this.contextFor(null);
    const closed = await preamble.closedGate(this.baseContext);
    if (closed) return stop(closed);
    this.alreadyComplete = await preamble.alreadyComplete(this.baseContext);
    if (this.alreadyComplete !== undefined) return this.finish('ok', EXIT.ok);
    const refused = await preamble.refusedWithoutTerminal(this.baseContext);
    if (refused) return stop(refused);

    this.startedSteps = true;
    for (const [index, step] of this.info.steps.entries()) {
      const outcome = this.outcomes[index] as StepOutcome;
      if (!this.info.selected.has(step.id)) {
        this.notSelected.add(step.id);
        const reason = args.from !== undefined ? `before --from ${args.from}` : 'not in --only';
        outcome.status = 'skipped';
        await this.record({
          event: 'step-skipped',
          step: step.id,
          risk: step.risk,
          detail: { reason },
        });
        this.progress.stepFinished(outcome);
        continue;
      }
      const exit = await this.runStep(
        step,
        outcome,
        this.contextFor({ id: step.id, risk: step.risk }),
      );
      if (exit !== undefined) return exit;
      await this.records.anchorIfDue();
    }
    return this.finish('ok', EXIT.ok);
  }

  private async runStep(
    step: StepDefinition,
    outcome: StepOutcome,
    ctx: StepContext,
  ): Promise<number | undefined> {
    const timing: StepTiming = { started: Date.now(), waited: 0, confirmed: false };
    this.stepStartedAt = timing.started;
    for (let attempt = 1; ; attempt++) {
      const failure = await this.attemptStep(step, outcome, ctx, timing, attempt);
      if (failure === undefined) return undefined;
      let choice: FailureChoice | undefined;
      try {
        choice = await this.failures.ask(step, outcome, failure.error, timing);
      } catch (err) {
        return this.fail(step, outcome, err); // Ctrl-C at the question
      }
      if (choice === 'retry') continue;
      return this.fail(step, outcome, failure.error, {
        shown: choice !== undefined,
        rollback: choice === 'rollback',
      });
    }
  }

  /** One try of a step: undefined when it ended well (ok, done, skipped), else what it threw. */
  private async attemptStep(
    step: StepDefinition,
    outcome: StepOutcome,
    ctx: StepContext,
    timing: StepTiming,
    attempt: number,
  ): Promise<{ error: unknown } | undefined> {
    const until = <T>(work: T | Promise<T>) => this.scope.until(work);
    const workTime = () => Date.now() - timing.started - timing.waited;
    const base = { step: step.id, risk: step.risk };
    try {
      this.progress.stepStarted(step.id, step.title, timing.started);
      const reason = step.skip ? await until(step.skip(ctx)) : undefined;
      if (reason) {
        outcome.status = 'skipped';
        outcome.reason = reason;
        await this.record({ ...base, event: 'step-skipped', detail: { reason } });
        this.progress.stepFinished(outcome);
        return undefined;
      }
      if (step.done && (await until(step.done(ctx)))) {
        outcome.status = 'verified-done';
        outcome.duration_ms = workTime();
        await this.record({ ...base, event: 'verified-done', duration_ms: outcome.duration_ms });
        this.progress.stepFinished(outcome);
        return undefined;
      }
      await this.record({
        ...base,
        event: 'step-start',
        ...(attempt > 1 ? { detail: { attempt } } : {}),
      });
      // A retry after the question was answered is the operator's own answer: not asked again.
      if (!timing.confirmed) {
        timing.waited += await this.confirmations.confirm(step, ctx);
        timing.confirmed = true;
      }
      if (this.commands.atOrAfterRollbackPoint(step)) this.changedPastRollbackPoint = true;
      await until(step.run(ctx));
      const check = step.verify ?? step.done;
      if (!this.args.dryRun && check && !(await until(check(ctx)))) {
        throw new PostCheckFailed(
          `post-check failed: ${step.verify ? 'verify()' : 'done()'} is still false after the step ran`,
        );
      }
      outcome.status = 'ok';
      outcome.duration_ms = workTime();
      if (timing.waited > 0) outcome.waited_ms = timing.waited;
      const detail = {
        ...(timing.waited > 0 ? { waited_ms: timing.waited } : {}),
        ...(attempt > 1 ? { attempt } : {}),
      };
      await this.record({
        ...base,
        event: 'step-ok',
        outcome: 'ok',
        duration_ms: outcome.duration_ms,
        ...(Object.keys(detail).length > 0 ? { detail } : {}),
      });
      this.progress.stepFinished(outcome);
      return undefined;
    } catch (error) {
      outcome.duration_ms = workTime();
      if (timing.waited > 0) outcome.waited_ms = timing.waited;
      return { error };
    }
  }

  private async fail(
    step: StepDefinition,
    outcome: StepOutcome,
    err: unknown,
    after: { shown?: boolean; rollback?: boolean } = {},
  ): Promise<number> {
    this.stoppedAt = step;
    const failed = await this.failures.settle(step, outcome, err, after);
    this.rollbackRequest = failed.rollback;
    return this.finish(failed.outcome, failed.code, failed.message);
  }

  private async record(input: AuditInput): Promise<void> {
    await this.records.append(input);
  }

  /** The run counts as the runbook's completion (for `requires` and the cluster record). */
  private async isComplete(outcome: RunOutcome): Promise<boolean> {
    if (this.args.dryRun || this.mode !== 'default' || outcome !== 'ok') return false;
    const everyStep = this.outcomes.every(
      (o) =>
        o.status === 'ok' ||
        o.status === 'verified-done' ||
        (o.status === 'skipped' && !this.notSelected.has(o.id)),
    );
    // A resume that ended well completes the runbook when its completed() check says so.
    return everyStep || (this.startedSteps && (await this.ending.completeByState()));
  }

  /**
   * After an interrupt, commands still running are stopped and the step winds down; resolves to
   * the pids that would not die.
   */
  private async stopAfterInterrupt(): Promise<number[]> {
    // Commands the interrupt stopped must be gone before the run counts as ended and the lock
    // lets the next run in: a `tofu apply` still running would change the cluster under it.
    const survivors = await (this.options.stopCommands ?? stopRunningCommands)();
    // The step sees the interrupt through ctx.signal; its last audit lines (a wait's, a
    // command's) come before the run-end.
    await this.scope.windDown(WIND_DOWN_MS);
    return survivors;
  }

  private async finish(outcome: RunOutcome, code: number, error?: string): Promise<number> {
    const survivors = outcome === 'interrupted' ? await this.stopAfterInterrupt() : [];
    if (survivors.length > 0) {
      const many = survivors.length > 1;
      const where = this.lock
        ? ` The lock ${this.lock.location} is kept so that no other run starts while it may still change the cluster.`
        : '';
      error = `interrupted, but process${many ? 'es' : ''} ${survivors.join(', ')} of this run would not die, even after SIGKILL.${where} Find out what ${many ? 'they are' : 'it is'} doing (ps -o pid,stat,cmd -p ${survivors.join(',')}), stop ${many ? 'them' : 'it'}, then resume`;
      this.progress.log(`${this.info.program}: ${error}`);
    }
    const complete = await this.isComplete(outcome);
    // Cleanup and the lock release happen whatever failed before them.
    if (this.startedSteps && this.runbook.cleanup && this.baseContext) {
      try {
        await this.runbook.cleanup(this.baseContext);
      } catch (err) {
        this.progress.log(`cleanup failed: ${maskSecrets(errorMessage(err))}`);
      }
    }
    try {
      const runEnd = await this.audit.append({
        event: 'run-end',
        outcome,
        duration_ms: Date.now() - this.started,
        detail: {
          complete,
          mode: this.mode,
          exit_code: code,
          steps: Object.fromEntries(this.outcomes.map((o) => [o.id, o.status])),
          ...(this.alreadyComplete !== undefined ? { already_complete: this.alreadyComplete } : {}),
          ...(survivors.length > 0 ? { survivors, lock_kept: this.lock?.location ?? null } : {}),
          ...(error !== undefined ? { error } : {}),
        },
      });
      await this.records.recordRunEnd(runEnd, this.mode, outcome, complete);
    } catch (err) {
      this.progress.log(`the audit log could not be written: ${maskSecrets(errorMessage(err))}`);
    }
    this.forgetForcedExit();
    if (survivors.length > 0) await this.lock?.keepFor?.(survivors).catch(() => undefined);
    else await this.lock?.release().catch(() => undefined);
    await this.show(outcome, error);
    return code;
  }

  /**
   * The run's end on screen. When the operator chose "roll back now", the rollback run that
   * follows in this invocation shows the one table and carries this run's JSON in its own.
   */
  private async show(outcome: RunOutcome, error: string | undefined): Promise<void> {
    const handingOver = this.rollbackRequest;
    const ran = this.startedSteps && this.baseContext !== undefined;
    let standing: string[] = [];
    if (!handingOver && this.baseContext) {
      if (outcome === 'ok') standing = await this.ending.whatNext();
      else if (ran && !this.args.dryRun)
        standing = await this.ending.standing(outcome, {
          changedPastRollbackPoint: this.changedPastRollbackPoint,
          stoppedAt: this.stoppedAt,
        });
    }
    const end: RunEnd = {
      outcome,
      outcomes: this.outcomes,
      report: this.report,
      alreadyComplete: this.alreadyComplete,
      error,
      standing,
    };
    if (!handingOver) this.ending.showHuman(end);
    if (!this.args.json) return;
    const json = this.ending.json(end, this.options.recoveryOf);
    if (handingOver) handingOver.summary = json;
    else this.info.stdout.write(`${JSON.stringify(json)}\n`);
  }
}
