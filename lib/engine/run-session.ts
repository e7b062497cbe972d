// One run of one runbook, from run-start to run-end: context pinning, the lock, gates, the
// runbook's completed() check, the confirmations a run without a terminal will need, then each
// step's lifecycle (skip() → skipped; done() → verified-done; else confirm → execute → post-check,
// or fail), with every event audited, progress on stderr, and the exit code decided in one
// place (finish()).
import { dirname, join } from 'node:path';
import type { AuditEntry, AuditInput, AuditLog } from '../audit/audit.ts';
import { ClusterRecords, clusterRequiredRunbooksGate } from '../audit/cluster-records.ts';
import type { Config } from '../config.ts';
import { ClusterOrFileRunLock, LeaseRunLock } from '../lock/lease-lock.ts';
import { FileRunLock, LockLostError, type RunLock } from '../lock/lock.ts';
import { maskSecrets } from '../mask.ts';
import { type CommandLineOptions, runbookCommandLine } from './command-line.ts';
import {
  ConfirmationRefused,
  type ConfirmDecision,
  type ConfirmRequest,
  confirmStep,
  inquirerPrompter,
  isInteractiveTerminal,
  refusalWithoutTerminal,
} from './confirm.ts';
import { askAfterFailure, type FailureChoice } from './failure-choice.ts';
import { onForcedExit } from './forced-exit.ts';
import { type Gate, requiredRunbooksGate } from './gates.ts';
import { contextMismatch, kubectlContextReader } from './kube-context.ts';
import type { Progress, ProgressStream, StepOutcome, StepStatus } from './progress.ts';
import type { Risk } from './risk.ts';
import type { RunbookArgs } from './runbook-args.ts';
import {
  type EngineOptions,
  EXIT,
  type RecoveryOf,
  type Runbook,
  type RunOutcome,
  runSummary,
  type StepDefinition,
} from './runbook-types.ts';
import { killRunningCommandsNow, stopRunningCommands } from './shell.ts';
import { createStepContext, type RunShared, type StepContext } from './step-context.ts';

/** after an interrupt, how long the step has to write its last audit lines */
const WIND_DOWN_MS = 5_000;
/** entries between two anchors of a run's log in the cluster (besides the one at its end) */
export const ANCHOR_EVERY = 50;
/** how long the last screen waits for the system's state before saying it could not be read */
const STANDING_READ_MS = 10_000;

class Interrupted extends Error {
  override readonly name = 'Interrupted';
}

class PostCheckFailed extends Error {
  override readonly name = 'PostCheckFailed';
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export interface SessionInfo {
  runId: string;
  program: string;
  operator: string;
  host: string;
  /** the step list of the run's mode */
  steps: readonly StepDefinition[];
  selected: Set<string>;
  stdout: ProgressStream;
  /** settings the environment gave that the env file would not: printed commands carry them */
  environment: Readonly<Record<string, string>>;
}

/** An answer given once for a sequence of steps (confirmCovers). */
interface Cover {
  by: string;
  through: string;
  method: ConfirmDecision['method'];
  ids: ReadonlySet<string>;
}

/** The steps from `step` (excluded) through its confirmCovers step (included). */
function coveredIds(steps: readonly StepDefinition[], step: StepDefinition): Set<string> {
  if (!step.confirmCovers) return new Set();
  const ids = steps.map((s) => s.id);
  const from = ids.indexOf(step.id);
  const to = ids.indexOf(step.confirmCovers);
  return new Set(ids.slice(from + 1, to + 1));
}

/** One run of one runbook, from run-start to run-end. */
export class RunSession {
  private readonly outcomes: StepOutcome[];
  private readonly state: Record<string, unknown> = {};
  private readonly shared: RunShared = { notes: new Map(), unsentMutations: 0 };
  private readonly interrupt: AbortController = new AbortController();
  /** steps left out by --from/--only: skipped, but the run is then not the runbook's completion */
  private readonly notSelected = new Set<string>();
  private lock: RunLock | undefined;
  /** unregisters the lock's release on a forced exit (a second Ctrl-C) */
  private forgetForcedExit: () => void = () => undefined;
  /** the last entry this session wrote, and the seq its log was last anchored at */
  private lastEntry: AuditEntry | undefined;
  private anchoredSeq = 0;
  private report: string | undefined;
  private alreadyComplete: string | undefined;
  private cover: Cover | undefined;
  /** the steps of a sequence confirmed in this run: a failure among them asks what now */
  private window: ReadonlySet<string> = new Set();
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
  /** what the step was doing when the run was interrupted, to let it finish its audit lines */
  private readonly inFlight = new Set<Promise<unknown>>();

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
    const external = options.signal;
    if (external) {
      if (external.aborted) this.interrupt.abort();
      else external.addEventListener('abort', () => this.interrupt.abort(), { once: true });
    }
  }

  async execute(): Promise<number> {
    try {
      return await this.phases();
    } catch (err) {
      if (err instanceof Interrupted || this.interrupt.signal.aborted) {
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
      signal: this.interrupt.signal,
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
      commandLine: (options) => this.commandLine(options),
    });
  }

  private async phases(): Promise<number> {
    const { args, cfg, runbook } = this;
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

    const readContext = this.options.readKubeContext ?? kubectlContextReader;
    let current: string;
    try {
      current = await this.untilInterrupted(readContext(cfg));
    } catch (err) {
      if (err instanceof Interrupted) throw err;
      const message = `cannot read the current kube context: ${errorMessage(err)}\nNothing was run. Check that kubectl is installed and that KUBECONFIG (or ~/.kube/config) names the ${cfg.kubeContext} context, then re-run`;
      this.progress.log(`${this.info.program}: ${message}`);
      return this.finish('context-mismatch', EXIT.usage, message);
    }
    const mismatch = contextMismatch(current, cfg.kubeContext);
    if (mismatch) {
      this.progress.log(`${this.info.program}: ${mismatch}`);
      return this.finish('context-mismatch', EXIT.usage, mismatch);
    }

    if (!args.dryRun) {
      const locked = await this.takeLock();
      if (locked !== undefined) return locked;
    } else {
      await this.sayWhoHoldsTheLock();
    }

    this.baseContext = this.contextFor(null);
    const gateExit = await this.checkGates(this.baseContext);
    if (gateExit !== undefined) return gateExit;

    if (await this.isAlreadyComplete(this.baseContext)) return this.finish('ok', EXIT.ok);

    const refused = await this.refuseEarly(this.baseContext);
    if (refused !== undefined) return refused;

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
      await this.anchorIfDue();
    }
    return this.finish('ok', EXIT.ok);
  }

  /** A plain re-run of a complete runbook verifies that and changes nothing. */
  private async isAlreadyComplete(ctx: StepContext): Promise<boolean> {
    const check = this.runbook.completed;
    const plain =
      this.mode === 'default' && this.args.from === undefined && this.args.only.length === 0;
    if (!check || !plain) return false;
    const sentence = await this.untilInterrupted(Promise.resolve(check(ctx)));
    if (!sentence) return false;
    this.alreadyComplete = sentence;
    this.progress.log(`already complete: ${sentence}. Nothing to do; no step was run`);
    for (const [index, step] of this.info.steps.entries()) {
      const outcome = this.outcomes[index] as StepOutcome;
      outcome.status = 'skipped';
      outcome.reason = 'the runbook is already complete';
      await this.record({
        event: 'step-skipped',
        step: step.id,
        risk: step.risk,
        detail: { reason: outcome.reason, already_complete: sentence },
      });
    }
    return true;
  }

  /**
   * Without a terminal nobody can answer later, so a confirmation the flags cannot give is
   * refused now, before the first step changes anything.
   */
  private async refuseEarly(ctx: StepContext): Promise<number | undefined> {
    if (this.args.dryRun) return undefined;
    if ((this.options.isInteractive ?? isInteractiveTerminal)()) return undefined;
    const covered = new Set<string>();
    for (const [index, step] of this.info.steps.entries()) {
      if (!this.info.selected.has(step.id) || step.risk === 'read' || covered.has(step.id))
        continue;
      for (const id of coveredIds(this.info.steps, step)) {
        if (this.info.selected.has(id)) covered.add(id);
      }
      let request: ConfirmRequest;
      try {
        request = this.confirmRequest(step, ctx);
      } catch {
        continue; // a name that depends on earlier steps is checked when the step comes
      }
      const refusal = refusalWithoutTerminal(request, this.confirmFlags());
      if (!refusal) continue;
      const message = `${refusal.message}. Nothing was run: without a terminal every confirmation is checked before the first step`;
      const outcome = this.outcomes[index] as StepOutcome;
      outcome.status = 'refused';
      await this.record({
        step: step.id,
        risk: step.risk,
        event: 'confirm',
        outcome: 'refused',
        detail: { message, before_first_step: true },
      });
      this.progress.stepFinished(outcome);
      this.progress.log(`${this.info.program}: ${message}`);
      return this.finish('refused', EXIT.usage, message);
    }
    return undefined;
  }

  /** The Lease (lib/lock/lease-lock.ts); the lock file only where no cluster can be reached. */
  private defaultLock(): RunLock {
    const file = new FileRunLock(join(dirname(this.cfg.auditLog), 'run.lock'), {
      ttlMs: this.cfg.timeouts.lockTtlMs,
    });
    const lease = new LeaseRunLock(this.cfg, {
      onLost: (reason) => {
        this.progress.log(
          `${this.info.program}: lost the lock: ${reason}. No further mutation is sent`,
        );
        this.record({
          event: 'gate',
          outcome: 'lock-lost',
          detail: { gate: 'run-lock', reason },
        }).catch(() => undefined);
      },
    });
    return new ClusterOrFileRunLock(lease, file);
  }

  private async sayWhoHoldsTheLock(): Promise<void> {
    const lock = this.options.createLock?.(this.cfg) ?? this.defaultLock();
    const holder = await lock.peek?.().catch(() => undefined);
    if (holder) {
      this.progress.log(
        `note: ${lock.location} is held by run ${holder.runId} of ${holder.runbook} by ${holder.operator}@${holder.host} since ${holder.acquiredAt}; a real run now would exit 4`,
      );
    }
  }

  private async takeLock(): Promise<number | undefined> {
    const lock = this.options.createLock?.(this.cfg) ?? this.defaultLock();
    const result = await lock.acquire({
      runId: this.info.runId,
      runbook: this.runbook.id,
      operator: this.info.operator,
      host: this.info.host,
      pid: process.pid,
    });
    if (!result.acquired) {
      const h = result.holder;
      const message = `locked: run ${h.runId} of ${h.runbook} by ${h.operator}@${h.host} (pid ${h.pid}) holds ${lock.location} since ${h.acquiredAt}, until ${h.expiresAt} unless renewed. Wait for it to finish, then re-run`;
      this.progress.log(`${this.info.program}: ${message}`);
      await this.record({
        event: 'gate',
        outcome: 'locked',
        detail: { gate: 'run-lock', location: lock.location, holder: h },
      });
      return this.finish('locked', EXIT.locked, message);
    }
    this.lock = lock;
    this.forgetForcedExit = onForcedExit(async () => {
      // a command still changing the cluster must be gone before the lock lets the next run in
      killRunningCommandsNow();
      await lock.release();
    });
    this.shared.lockLost = () => lock.lostReason?.();
    if (lock instanceof ClusterOrFileRunLock && lock.fallback) {
      this.progress.log(`warning: ${lock.fallback}`);
    }
    if (result.takenOverFrom) {
      this.progress.log(
        `took over a stale lock of run ${result.takenOverFrom.runId} (${result.takeoverReason})`,
      );
      await this.record({
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
    return undefined;
  }

  private async checkGates(ctx: StepContext): Promise<number | undefined> {
    const gates: Gate<StepContext>[] = [
      ...(this.runbook.requires?.length
        ? [
            clusterRequiredRunbooksGate(
              this.runbook.requires,
              requiredRunbooksGate(this.runbook.requires),
            ),
          ]
        : []),
      ...(this.runbook.gates ?? []),
    ];
    const override = this.args.overrideGate;
    for (const gate of gates) {
      let result: { open: boolean; reason: string };
      try {
        result = await this.untilInterrupted(Promise.resolve(gate.check(ctx)));
      } catch (err) {
        if (err instanceof Interrupted) throw err;
        // A gate that cannot be read is closed: the safe answer when in doubt.
        result = { open: false, reason: `could not be checked: ${errorMessage(err)}` };
      }
      if (result.open) {
        await this.record({
          event: 'gate',
          outcome: 'open',
          detail: { gate: gate.id, reason: result.reason },
        });
        continue;
      }
      if (override !== undefined) {
        this.progress.log(`gate ${gate.id} is closed (${result.reason}); overridden: ${override}`);
        await this.record({
          event: 'gate',
          outcome: 'overridden',
          detail: { gate: gate.id, reason: result.reason, override_reason: override },
        });
        continue;
      }
      const message = `gate ${gate.id} is closed: ${result.reason}. Nothing was run. Re-run when it opens, or with --override-gate "<why it is safe>" to go through it (audited)`;
      this.progress.log(`${this.info.program}: ${message}`);
      await this.record({
        event: 'gate',
        outcome: 'closed',
        detail: { gate: gate.id, reason: result.reason },
      });
      return this.finish('gate-closed', EXIT.gateClosed, message);
    }
    return undefined;
  }

  private async runStep(
    step: StepDefinition,
    outcome: StepOutcome,
    ctx: StepContext,
  ): Promise<number | undefined> {
    const timing = { started: Date.now(), waited: 0, confirmed: false };
    this.stepStartedAt = timing.started;
    for (let attempt = 1; ; attempt++) {
      const failure = await this.attemptStep(step, outcome, ctx, timing, attempt);
      if (failure === undefined) return undefined;
      let choice: FailureChoice | undefined;
      try {
        choice = await this.choiceAfterFailure(step, outcome, failure.error, timing);
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
    timing: { started: number; waited: number; confirmed: boolean },
    attempt: number,
  ): Promise<{ error: unknown } | undefined> {
    const workTime = () => Date.now() - timing.started - timing.waited;
    const base = { step: step.id, risk: step.risk };
    try {
      this.progress.stepStarted(step.id, step.title, timing.started);
      const reason = step.skip ? await this.untilInterrupted(step.skip(ctx)) : undefined;
      if (reason) {
        outcome.status = 'skipped';
        outcome.reason = reason;
        await this.record({ ...base, event: 'step-skipped', detail: { reason } });
        this.progress.stepFinished(outcome);
        return undefined;
      }
      if (step.done && (await this.untilInterrupted(step.done(ctx)))) {
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
        timing.waited += await this.confirm(step, ctx);
        timing.confirmed = true;
      }
      if (this.atOrAfterRollbackPoint(step)) this.changedPastRollbackPoint = true;
      await this.executeStep(step, ctx);
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

  /**
   * On a terminal, a step that fails inside a confirmed sequence, or past the runbook's rollback
   * point, asks: retry, roll back now (when the runbook has a rollback), or stop. Undefined
   * when nobody is asked (no terminal, --yes, a dry run, an interrupt): the run stops as always.
   */
  private async choiceAfterFailure(
    step: StepDefinition,
    outcome: StepOutcome,
    error: unknown,
    timing: { waited: number },
  ): Promise<FailureChoice | undefined> {
    await new Promise((next) => setImmediate(next)); // an interrupt's handler goes first
    if (
      error instanceof Interrupted ||
      error instanceof LockLostError ||
      error instanceof ConfirmationRefused ||
      this.interrupt.signal.aborted ||
      this.args.dryRun ||
      this.args.yes ||
      !(this.options.isInteractive ?? isInteractiveTerminal)()
    )
      return undefined;
    const rollback = this.rollbackOffer(step);
    if (!this.window.has(step.id) && !rollback) return undefined;
    const message = maskSecrets(errorMessage(error));
    outcome.status = 'failed';
    outcome.error = message;
    this.progress.stepFinished(outcome);
    this.progress.log(`  error: ${message.replaceAll('\n', '\n    ')}`);
    const asked = Date.now();
    let choice: FailureChoice;
    try {
      choice = await this.untilInterrupted(
        askAfterFailure(
          {
            stepId: step.id,
            title: step.title,
            resume: this.resumeCommand(step.id),
            ...(rollback ? { rollback } : {}),
            ...(rollback && this.runbook.rollback?.stopLeaves
              ? { stopLeaves: this.runbook.rollback.stopLeaves }
              : {}),
          },
          this.options.prompter ?? inquirerPrompter,
        ),
      );
    } catch (err) {
      // Ctrl-C at the question: the step's own error is still what the audit must keep.
      await this.record({
        step: step.id,
        risk: step.risk,
        event: 'confirm',
        outcome: 'interrupted',
        detail: { method: 'prompt', after_failure: message },
      });
      throw err;
    }
    const waited = Date.now() - asked;
    timing.waited += waited;
    await this.record({
      step: step.id,
      risk: step.risk,
      event: 'confirm',
      outcome: choice,
      detail: { method: 'prompt', after_failure: message, waited_ms: waited },
    });
    if (choice === 'retry') {
      delete outcome.error;
      outcome.status = 'not-run';
    }
    return choice;
  }

  /** The rollback this step's failure may start, if the runbook has one and it applies here. */
  private rollbackOffer(step: StepDefinition): { command: string; title: string } | undefined {
    const rollback = this.runbook.rollback;
    // Nothing past the rollback point has been run yet: there is nothing to roll back.
    if (!rollback || !this.changedPastRollbackPoint || !this.atOrAfterRollbackPoint(step))
      return undefined;
    const mode = this.runbook.modes?.[rollback.mode];
    return {
      command: this.rollbackCommand(rollback.mode),
      title: mode?.title ?? rollback.mode,
    };
  }

  private atOrAfterRollbackPoint(step: StepDefinition): boolean {
    const rollback = this.runbook.rollback;
    if (!rollback || this.mode !== 'default') return false;
    const ids = this.info.steps.map((s) => s.id);
    return ids.indexOf(step.id) >= ids.indexOf(rollback.from);
  }

  private rollbackCommand(mode: string): string {
    return this.commandLine({ mode, dryRun: false });
  }

  /** This runbook again with this run's settings and flags (lib/engine/command-line.ts). */
  private commandLine(options: CommandLineOptions = {}): string {
    return runbookCommandLine(
      {
        program: this.info.program,
        args: this.args,
        flags: this.runbook.flags,
        environment: this.info.environment,
      },
      options,
    );
  }

  private confirmFlags() {
    return { yes: this.args.yes, confirmNames: this.args.confirmNames, dryRun: this.args.dryRun };
  }

  private confirmRequest(step: StepDefinition, ctx: StepContext): ConfirmRequest {
    const resourceName =
      typeof step.confirmName === 'function' ? step.confirmName(ctx) : step.confirmName;
    const { head, ids: covered } = this.sequenceOf(step);
    return {
      stepId: step.id,
      title: step.title,
      risk: step.risk,
      ...(step.impact !== undefined ? { impact: step.impact } : {}),
      ...(resourceName !== undefined ? { resourceName } : {}),
      ...(covered.length > 0
        ? {
            covers: {
              through: covered.at(-1) as string,
              ...(head.coverText !== undefined ? { text: head.coverText } : {}),
            },
          }
        : {}),
    };
  }

  /**
   * The steps this step's answer covers in this run (an --only run may leave some out), and
   * the step whose confirmCovers made the sequence. When that step did not ask (it was already
   * done, or --from started later), the first step of the sequence that asks covers the rest:
   * a resumed downtime still has one question, before it.
   */
  private sequenceOf(step: StepDefinition): { head: StepDefinition; ids: string[] } {
    const selected = (ids: Iterable<string>) => [...ids].filter((id) => this.info.selected.has(id));
    if (step.confirmCovers) return { head: step, ids: selected(coveredIds(this.info.steps, step)) };
    const head = this.info.steps.find((s) => coveredIds(this.info.steps, s).has(step.id));
    if (!head) return { head: step, ids: [] };
    const sequence = [...coveredIds(this.info.steps, head)];
    return { head, ids: selected(sequence.slice(sequence.indexOf(step.id) + 1)) };
  }

  private coveredBy(step: StepDefinition): string[] {
    return this.sequenceOf(step).ids;
  }

  /** Asks (or takes the flags' answer, or a covering answer); resolves to the time spent asking. */
  private async confirm(step: StepDefinition, ctx: StepContext): Promise<number> {
    if (step.risk === 'read') return 0;
    const base = { step: step.id, risk: step.risk };
    const cover = this.cover;
    if (cover?.ids.has(step.id)) {
      if (step.id === cover.through) this.cover = undefined;
      await this.record({
        ...base,
        event: 'confirm',
        outcome: this.args.dryRun ? 'would-ask' : 'confirmed',
        detail: { method: 'covered', covered_by: cover.by, answer: cover.method },
      });
      return 0;
    }
    const request = this.confirmRequest(step, ctx);
    this.progress.stop();
    if (this.args.dryRun) {
      const ask = request.resourceName ? `the name "${request.resourceName}" typed` : 'a yes';
      const sequence = request.covers ? ` for ${step.id}–${request.covers.through}` : '';
      this.progress.log(
        `${step.id} (${step.risk} risk) would ask for ${ask}${sequence} before running`,
      );
    }
    const asked = Date.now();
    const recovery = this.options.recoveryOf;
    const decision: ConfirmDecision =
      recovery && step.risk !== 'irreversible' && !this.args.dryRun
        ? { method: 'rollback-chosen' }
        : await this.untilInterrupted(
            confirmStep(request, this.confirmFlags(), {
              ...(this.options.prompter ? { prompter: this.options.prompter } : {}),
              ...(this.options.isInteractive ? { isInteractive: this.options.isInteractive } : {}),
            }),
          );
    const waited = decision.method === 'prompt' ? Date.now() - asked : 0;
    await this.record({
      ...base,
      event: 'confirm',
      // a dry run asks nothing, so nothing was confirmed
      outcome: decision.method === 'dry-run' ? 'would-ask' : 'confirmed',
      detail: {
        method: decision.method,
        ...(request.resourceName ? { name: request.resourceName } : {}),
        ...(request.covers ? { covers: this.coveredBy(step) } : {}),
        ...(waited > 0 ? { waited_ms: waited } : {}),
        ...(decision.method === 'rollback-chosen' && recovery
          ? { failed_run: recovery.runId, failed_step: recovery.step }
          : {}),
      },
    });
    if (request.covers) {
      this.cover = {
        by: step.id,
        through: request.covers.through,
        method: decision.method,
        ids: new Set(this.coveredBy(step)),
      };
      this.window = new Set([step.id, ...this.coveredBy(step)]);
    }
    this.progress.stepStarted(step.id, step.title);
    return waited;
  }

  private async executeStep(step: StepDefinition, ctx: StepContext): Promise<void> {
    await this.untilInterrupted(step.run(ctx));
    if (this.args.dryRun) return;
    const check = step.verify ?? step.done;
    if (check && !(await this.untilInterrupted(check(ctx)))) {
      throw new PostCheckFailed(
        `post-check failed: ${step.verify ? 'verify()' : 'done()'} is still false after the step ran`,
      );
    }
  }

  private async fail(
    step: StepDefinition,
    outcome: StepOutcome,
    err: unknown,
    /** shown: the failure is on screen already (the operator was asked what to do) */
    after: { shown?: boolean; rollback?: boolean } = {},
  ): Promise<number> {
    const base = { step: step.id, risk: step.risk };
    // Ctrl-C on a terminal signals the whole process group: a command may die of it and
    // report back before our own handler has run. Give the handler that turn first.
    await new Promise((next) => setImmediate(next));
    const interrupted =
      err instanceof Interrupted ||
      this.interrupt.signal.aborted ||
      (err instanceof ConfirmationRefused && err.interrupted);
    const message = maskSecrets(errorMessage(err));
    const resume = this.resumeCommand(step.id);
    this.stoppedAt = step;
    const timing = {
      duration_ms: outcome.duration_ms,
      ...(outcome.waited_ms ? { detail: { waited_ms: outcome.waited_ms } } : {}),
    };
    if (interrupted) {
      outcome.status = 'interrupted';
      await this.record({ ...base, event: 'step-failed', outcome: 'interrupted', ...timing });
      this.progress.stepFinished(outcome);
      this.progress.log(`  resume: ${resume}`);
      return this.finish('interrupted', EXIT.interrupted, 'interrupted');
    }
    if (err instanceof LockLostError) {
      outcome.status = 'failed';
      outcome.error = message;
      await this.record({
        ...base,
        event: 'step-failed',
        outcome: 'lock-lost',
        detail: { error: message },
      });
      this.progress.stepFinished(outcome);
      this.progress.log(`${this.info.program}: ${message}`);
      this.progress.log(`  resume: ${resume}`);
      return this.finish('locked', EXIT.locked, message);
    }
    if (err instanceof ConfirmationRefused) {
      outcome.status = 'refused';
      await this.record({ ...base, event: 'confirm', outcome: 'refused', detail: { message } });
      this.progress.stepFinished(outcome);
      this.progress.log(`${this.info.program}: ${message}`);
      this.progress.log(`  re-run: ${this.commandLine()}`);
      return this.finish('refused', EXIT.usage, message);
    }
    outcome.status = 'failed';
    outcome.error = message;
    const undo = await this.undoOf(step);
    await this.record({
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
      this.progress.stepFinished(outcome);
      this.progress.log(`  error: ${message.replaceAll('\n', '\n    ')}`);
    }
    const rollback = this.runbook.rollback;
    if (after.rollback && rollback) {
      this.rollbackRequest = { runId: this.info.runId, step: step.id, error: message };
      this.progress.log(`  rolling back now: ${this.rollbackCommand(rollback.mode)}`);
    } else {
      this.progress.log(`  undo: ${undo ?? 'nothing recorded for this step'}`);
      this.progress.log(`  resume: ${resume}`);
    }
    return this.finish('failed', EXIT.stepFailed, message);
  }

  /** The step's undo line, its commands built for this run's cluster and log. */
  private async undoOf(step: StepDefinition): Promise<string | undefined> {
    if (typeof step.undo !== 'function') return step.undo;
    try {
      return maskSecrets(await step.undo(this.contextFor({ id: step.id, risk: step.risk })));
    } catch (err) {
      return `(the undo line could not be made: ${maskSecrets(errorMessage(err))})`;
    }
  }

  /** The command that goes on from `stepId` with the same mode and flags. */
  private resumeCommand(stepId: string): string {
    // After an --only run, `--from` would also run the steps the operator left out (an
    // irreversible one among them): resume the listed steps that are left, and no others.
    const ids = this.info.steps.map((s) => s.id);
    const rest = ids.slice(ids.indexOf(stepId)).filter((id) => this.info.selected.has(id));
    return this.args.only.length > 0
      ? this.commandLine({ only: rest })
      : this.commandLine({ from: stepId });
  }

  /** Rejects with Interrupted as soon as the run is interrupted, whatever `work` is doing. */
  private untilInterrupted<T>(work: T | Promise<T>): Promise<T> {
    const signal = this.interrupt.signal;
    const settled: Promise<unknown> = Promise.resolve(work).then(
      () => this.inFlight.delete(settled),
      () => this.inFlight.delete(settled),
    );
    this.inFlight.add(settled);
    if (signal.aborted) return Promise.reject(new Interrupted('interrupted'));
    return new Promise<T>((resolvePromise, reject) => {
      const onAbort = () => reject(new Interrupted('interrupted'));
      signal.addEventListener('abort', onAbort, { once: true });
      Promise.resolve(work).then(
        (value) => {
          signal.removeEventListener('abort', onAbort);
          resolvePromise(value);
        },
        (err: unknown) => {
          signal.removeEventListener('abort', onAbort);
          reject(err);
        },
      );
    });
  }

  private async record(input: AuditInput): Promise<void> {
    const entry = await this.audit.append(input);
    this.lastEntry = entry;
    this.anchoredSeq ||= entry.seq;
  }

  /** A long run moves its log's anchor in the cluster forward every ANCHOR_EVERY entries. */
  private async anchorIfDue(): Promise<void> {
    const entry = this.lastEntry;
    const lock = this.lock;
    if (!entry || this.args.dryRun || !(lock instanceof ClusterOrFileRunLock) || !lock.inCluster)
      return;
    if (entry.seq - this.anchoredSeq < ANCHOR_EVERY) return;
    this.anchoredSeq = entry.seq;
    await new ClusterRecords(this.cfg).anchorHead(this.cfg.auditLog, entry).catch((err) => {
      this.progress.log(
        `warning: the audit anchor could not be written to the cluster: ${maskSecrets(errorMessage(err))}`,
      );
    });
  }

  /**
   * A real run that held the Lease anchors its run-end in the cluster; a completed run records
   * the runbook as completed there, a completed rollback clears that (lib/audit/cluster-records.ts).
   */
  private async recordInCluster(
    runEnd: AuditEntry,
    outcome: RunOutcome,
    complete: boolean,
  ): Promise<void> {
    const lock = this.lock;
    if (this.args.dryRun || !(lock instanceof ClusterOrFileRunLock) || !lock.inCluster) return;
    const rollbackDone = this.mode === 'rollback' && outcome === 'ok';
    try {
      await new ClusterRecords(this.cfg).recordRunEnd({
        logPath: this.cfg.auditLog,
        entry: runEnd,
        mode: this.mode,
        complete: complete || rollbackDone,
      });
    } catch (err) {
      this.progress.log(
        `warning: this run's record and audit anchor could not be written to the cluster: ${maskSecrets(errorMessage(err))}`,
      );
    }
  }

  /**
   * The last screen of a run that changed something and did not complete: where the system
   * stands (the runbook's standing()), then the lines back and on. Nothing when the operator
   * chose "roll back now": the rollback run that follows ends with its own.
   */
  private async standing(outcome: RunOutcome): Promise<string[]> {
    const check = this.runbook.standing;
    if (
      outcome === 'ok' ||
      this.args.dryRun ||
      this.rollbackRequest ||
      !check ||
      !this.startedSteps ||
      !this.baseContext
    )
      return [];
    let sentence: string | undefined;
    try {
      // read after an interrupt too: the run's own signal would cut the read short
      sentence = await Promise.race([
        Promise.resolve(check(this.standingContext())),
        new Promise<string>((done) =>
          setTimeout(() => done('its state could not be read in time'), STANDING_READ_MS).unref(),
        ),
      ]);
    } catch (err) {
      sentence = `its state could not be read: ${maskSecrets(errorMessage(err))}`;
    }
    if (!sentence) return [];
    const lines = [maskSecrets(sentence)];
    const rollback = this.runbook.rollback;
    if (rollback && this.changedPastRollbackPoint && this.mode === 'default')
      lines.push(`  roll back: ${this.rollbackCommand(rollback.mode)}`);
    // a refusal is gone past with a plain re-run: --from would skip the checks before the step
    if (outcome === 'refused') lines.push(`  re-run:    ${this.commandLine()}`);
    else if (this.stoppedAt) lines.push(`  resume:    ${this.resumeCommand(this.stoppedAt.id)}`);
    return lines;
  }

  /** The last line of a run that ended well: the runbook's next(), or a dry run's real command. */
  private async whatNext(): Promise<string[]> {
    if (!this.baseContext) return [];
    if (this.args.dryRun) return [`next: run it for real: ${this.commandLine({ dryRun: false })}`];
    const next = this.runbook.next;
    if (!next || this.mode !== 'default') return [];
    try {
      const line = await Promise.race([
        Promise.resolve(next(this.standingContext())),
        new Promise<undefined>((done) =>
          setTimeout(() => done(undefined), STANDING_READ_MS).unref(),
        ),
      ]);
      return line ? [`next: ${maskSecrets(line)}`] : [];
    } catch {
      return [];
    }
  }

  /** A context for reads after the run's end, not tied to the run's (perhaps aborted) signal. */
  private standingContext(): StepContext {
    return createStepContext({
      cfg: this.cfg,
      dryRun: true,
      runId: this.info.runId,
      runbook: this.runbook.id,
      mode: this.mode,
      step: null,
      flags: this.args.extra,
      state: this.state,
      signal: new AbortController().signal,
      audit: this.audit,
      print: () => undefined,
      setReport: () => undefined,
      commandLine: (options) => this.commandLine(options),
    });
  }

  /**
   * A run that ended well after --from or --only (a resume) completes the runbook when the
   * runbook's completed() check says so: completion is the runbook's state, however many runs
   * it took, not this run's step list.
   */
  private async completeByState(outcome: RunOutcome): Promise<boolean> {
    const check = this.runbook.completed;
    if (this.args.dryRun || this.mode !== 'default' || outcome !== 'ok' || !check) return false;
    if (!this.startedSteps || !this.baseContext) return false;
    try {
      const sentence = await Promise.race([
        Promise.resolve(check(this.standingContext())),
        new Promise<undefined>((done) =>
          setTimeout(() => done(undefined), STANDING_READ_MS).unref(),
        ),
      ]);
      return Boolean(sentence);
    } catch {
      return false;
    }
  }

  /** The run counts as the runbook's completion (for `requires` and the cluster record). */
  private isComplete(outcome: RunOutcome): boolean {
    return (
      !this.args.dryRun &&
      this.mode === 'default' &&
      outcome === 'ok' &&
      this.outcomes.every(
        (o) =>
          o.status === 'ok' ||
          o.status === 'verified-done' ||
          (o.status === 'skipped' && !this.notSelected.has(o.id)),
      )
    );
  }

  private async finish(outcome: RunOutcome, code: number, error?: string): Promise<number> {
    // Commands the interrupt stopped must be gone before the run counts as ended and the lock
    // lets the next run in: a `tofu apply` still running would change the cluster under it.
    let survivors: number[] = [];
    if (outcome === 'interrupted') {
      survivors = await (this.options.stopCommands ?? stopRunningCommands)();
      // The step sees the interrupt through ctx.signal; give it a moment to wind down, so its
      // last audit lines (a wait's, a command's) come before the run-end.
      await Promise.race([
        Promise.all(this.inFlight),
        new Promise((done) => setTimeout(done, WIND_DOWN_MS).unref()),
      ]);
      if (survivors.length > 0) {
        const where = this.lock
          ? ` The lock ${this.lock.location} is kept so that no other run starts while it may still change the cluster.`
          : '';
        error = `interrupted, but process${survivors.length > 1 ? 'es' : ''} ${survivors.join(', ')} of this run would not die, even after SIGKILL.${where} Find out what ${survivors.length > 1 ? 'they are' : 'it is'} doing (ps -o pid,stat,cmd -p ${survivors.join(',')}), stop ${survivors.length > 1 ? 'them' : 'it'}, then resume`;
        this.progress.log(`${this.info.program}: ${error}`);
      }
    }
    const complete = this.isComplete(outcome) || (await this.completeByState(outcome));
    // Cleanup and the lock release happen whatever failed before them.
    if (this.startedSteps && this.runbook.cleanup && this.baseContext) {
      try {
        await this.runbook.cleanup(this.baseContext);
      } catch (err) {
        this.progress.log(`cleanup failed: ${maskSecrets(errorMessage(err))}`);
      }
    }
    let runEnd: AuditEntry | undefined;
    try {
      runEnd = await this.audit.append({
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
    } catch (err) {
      this.progress.log(`the audit log could not be written: ${maskSecrets(errorMessage(err))}`);
    }
    if (runEnd) await this.recordInCluster(runEnd, outcome, complete);
    this.forgetForcedExit();
    if (survivors.length > 0) await this.lock?.keepFor?.(survivors).catch(() => undefined);
    else await this.lock?.release().catch(() => undefined);
    // A rollback follows in this invocation ("Roll back now"): its summary is the one table, and
    // it says where things stand at the end.
    if (!this.rollbackRequest) {
      const standing = outcome === 'ok' ? await this.whatNext() : await this.standing(outcome);
      this.progress.summary(this.runbook.id, this.outcomes, {
        outcome:
          this.mode === 'default'
            ? outcome
            : `${this.mode} ${outcome === 'ok' ? 'complete' : outcome}`,
        dryRun: this.args.dryRun,
        auditLog: this.cfg.auditLog,
        ...(this.report !== undefined ? { report: this.report } : {}),
        runId: this.info.runId,
        ...(standing.length > 0 ? { standing } : {}),
      });
    }
    if (this.args.json) {
      const summary = runSummary({
        runbook: this.runbook.id,
        runId: this.info.runId,
        mode: this.mode,
        dryRun: this.args.dryRun,
        outcome,
        steps: this.outcomes,
        auditLog: this.cfg.auditLog,
        report: this.report,
        alreadyComplete: this.alreadyComplete,
        error,
      });
      const recovery = this.options.recoveryOf;
      const full = recovery?.summary ? { ...summary, rolled_back_run: recovery.summary } : summary;
      // A rollback follows in this invocation: its summary carries this one, so stdout stays
      // one JSON object.
      if (this.rollbackRequest) this.rollbackRequest.summary = full;
      else this.info.stdout.write(`${JSON.stringify(full)}\n`);
    }
    return code;
  }
}
