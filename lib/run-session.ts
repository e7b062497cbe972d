// One run of one runbook, from run-start to run-end: context pinning, the lock, gates, then each
// step's lifecycle (done() → verified-done; else confirm → run() → post-check), with every
// event audited, progress on stderr, and the exit code decided in one place (finish()).
import { dirname, join } from 'node:path';
import type { AuditInput, AuditLog } from './audit.ts';
import type { Config } from './config.ts';
import { ConfirmationRefused, confirmStep } from './confirm.ts';
import { requiredRunbooksGate } from './gates.ts';
import { contextMismatch, kubectlContextReader } from './kube-context.ts';
import { FileRunLock, type RunLock } from './lock.ts';
import { maskSecrets } from './mask.ts';
import type { Progress, ProgressStream, StepOutcome, StepStatus } from './progress.ts';
import type { Risk } from './risk.ts';
import {
  type EngineOptions,
  EXIT,
  type Gate,
  type Runbook,
  type RunOutcome,
  type RunSummary,
  type StepContext,
  type StepDefinition,
} from './runbook.ts';
import type { RunbookArgs } from './runbook-args.ts';
import { shellQuote } from './shell.ts';
import { createStepContext } from './step-context.ts';

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
  selected: Set<string>;
  stdout: ProgressStream;
}

/** One run of one runbook, from run-start to run-end. */
export class RunSession {
  private readonly outcomes: StepOutcome[];
  private readonly state: Record<string, unknown> = {};
  private readonly interrupt: AbortController = new AbortController();
  private lock: RunLock | undefined;
  private report: string | undefined;
  private baseContext: StepContext | undefined;
  private startedSteps = false;
  private readonly started = Date.now();

  constructor(
    private readonly runbook: Runbook,
    private readonly args: RunbookArgs,
    private readonly cfg: Config,
    private readonly audit: AuditLog,
    private readonly progress: Progress,
    private readonly options: EngineOptions,
    private readonly info: SessionInfo,
  ) {
    this.outcomes = runbook.steps.map((s) => ({
      id: s.id,
      title: s.title,
      status: 'not-run' as StepStatus,
      duration_ms: 0,
    }));
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

  private async phases(): Promise<number> {
    const { args, cfg, runbook } = this;
    await this.record({
      event: 'run-start',
      detail: {
        argv: this.options.argv ?? process.argv.slice(2),
        steps: [...this.info.selected],
        pid: process.pid,
      },
    });
    this.progress.log(
      `${runbook.id}: ${runbook.title}${args.dryRun ? ' (dry run: no mutation is sent)' : ''}`,
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
    }

    const contextFor = (step: { id: string; risk: Risk } | null) =>
      createStepContext({
        cfg,
        dryRun: args.dryRun,
        runId: this.info.runId,
        runbook: runbook.id,
        step,
        flags: args.extra,
        state: this.state,
        signal: this.interrupt.signal,
        audit: this.audit,
        print: (line) => this.progress.log(line),
        setReport: (path) => {
          this.report = path;
        },
      });
    this.baseContext = contextFor(null);

    const gateExit = await this.checkGates(this.baseContext);
    if (gateExit !== undefined) return gateExit;

    this.startedSteps = true;
    for (const [index, step] of runbook.steps.entries()) {
      const outcome = this.outcomes[index] as StepOutcome;
      if (!this.info.selected.has(step.id)) {
        outcome.status = 'skipped';
        await this.record({
          event: 'step-skipped',
          step: step.id,
          risk: step.risk,
          detail: {
            reason: args.from !== undefined ? `before --from ${args.from}` : 'not in --only',
          },
        });
        this.progress.stepFinished(outcome);
        continue;
      }
      const exit = await this.runStep(step, outcome, contextFor({ id: step.id, risk: step.risk }));
      if (exit !== undefined) return exit;
    }
    return this.finish('ok', EXIT.ok);
  }

  private async takeLock(): Promise<number | undefined> {
    const lock =
      this.options.createLock?.(this.cfg) ??
      new FileRunLock(join(dirname(this.cfg.auditLog), 'run.lock'), {
        ttlMs: this.cfg.timeouts.lockTtlMs,
      });
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
      ...(this.runbook.requires?.length ? [requiredRunbooksGate(this.runbook.requires)] : []),
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
    const started = Date.now();
    const elapsed = () => Date.now() - started;
    const base = { step: step.id, risk: step.risk };
    try {
      this.progress.stepStarted(step.id, step.title);
      if (step.done && (await this.untilInterrupted(step.done(ctx)))) {
        outcome.status = 'verified-done';
        outcome.duration_ms = elapsed();
        await this.record({ ...base, event: 'verified-done', duration_ms: outcome.duration_ms });
        this.progress.stepFinished(outcome);
        return undefined;
      }
      await this.record({ ...base, event: 'step-start' });

      if (step.risk !== 'read') {
        const resourceName =
          typeof step.confirmName === 'function' ? step.confirmName(ctx) : step.confirmName;
        this.progress.stop();
        if (this.args.dryRun) {
          const ask = resourceName ? `the name "${resourceName}" typed` : 'a yes';
          this.progress.log(`${step.id} (${step.risk} risk) would ask for ${ask} before running`);
        }
        const decision = await this.untilInterrupted(
          confirmStep(
            {
              stepId: step.id,
              title: step.title,
              risk: step.risk,
              ...(step.impact !== undefined ? { impact: step.impact } : {}),
              ...(resourceName !== undefined ? { resourceName } : {}),
            },
            { yes: this.args.yes, confirmNames: this.args.confirmNames, dryRun: this.args.dryRun },
            {
              ...(this.options.prompter ? { prompter: this.options.prompter } : {}),
              ...(this.options.isInteractive ? { isInteractive: this.options.isInteractive } : {}),
            },
          ),
        );
        await this.record({
          ...base,
          event: 'confirm',
          outcome: 'confirmed',
          detail: { method: decision.method, ...(resourceName ? { name: resourceName } : {}) },
        });
        this.progress.stepStarted(step.id, step.title);
      }

      await this.untilInterrupted(step.run(ctx));

      if (!this.args.dryRun) {
        const check = step.verify ?? step.done;
        if (check && !(await this.untilInterrupted(check(ctx)))) {
          throw new PostCheckFailed(
            `post-check failed: ${step.verify ? 'verify()' : 'done()'} is still false after the step ran`,
          );
        }
      }
      outcome.status = 'ok';
      outcome.duration_ms = elapsed();
      await this.record({
        ...base,
        event: 'step-ok',
        outcome: 'ok',
        duration_ms: outcome.duration_ms,
      });
      this.progress.stepFinished(outcome);
      return undefined;
    } catch (err) {
      outcome.duration_ms = elapsed();
      // Ctrl-C on a terminal signals the whole process group: a command may die of it and
      // report back before our own handler has run. Give the handler that turn first.
      await new Promise((next) => setImmediate(next));
      const interrupted =
        err instanceof Interrupted ||
        this.interrupt.signal.aborted ||
        (err instanceof ConfirmationRefused && err.interrupted);
      const message = maskSecrets(errorMessage(err));
      const resume = this.resumeCommand(step.id);
      if (interrupted) {
        outcome.status = 'interrupted';
        await this.record({
          ...base,
          event: 'step-failed',
          outcome: 'interrupted',
          duration_ms: outcome.duration_ms,
        });
        this.progress.stepFinished(outcome);
        this.progress.log(`  resume: ${resume}`);
        return this.finish('interrupted', EXIT.interrupted, 'interrupted');
      }
      if (err instanceof ConfirmationRefused) {
        outcome.status = 'refused';
        await this.record({ ...base, event: 'confirm', outcome: 'refused', detail: { message } });
        this.progress.stepFinished(outcome);
        this.progress.log(`${this.info.program}: ${message}`);
        return this.finish('refused', EXIT.usage, message);
      }
      outcome.status = 'failed';
      outcome.error = message;
      await this.record({
        ...base,
        event: 'step-failed',
        outcome: 'failed',
        duration_ms: outcome.duration_ms,
        detail: { error: message, ...(step.undo ? { undo: step.undo } : {}) },
      });
      this.progress.stepFinished(outcome);
      this.progress.log(`  error: ${message.replaceAll('\n', '\n    ')}`);
      this.progress.log(`  undo: ${step.undo ?? 'nothing recorded for this step'}`);
      this.progress.log(`  resume: ${resume}`);
      return this.finish('failed', EXIT.stepFailed, message);
    }
  }

  private resumeCommand(stepId: string): string {
    // After an --only run, `--from` would also run the steps the operator left out (an
    // irreversible one among them): resume the listed steps that are left, and no others.
    const ids = this.runbook.steps.map((s) => s.id);
    const rest = ids.slice(ids.indexOf(stepId)).filter((id) => this.info.selected.has(id));
    const parts = [this.info.program];
    if (this.args.only.length > 0) parts.push('--only', rest.join(','));
    else parts.push('--from', stepId);
    if (this.args.envFile !== undefined) parts.push('--env-file', this.args.envFile);
    if (this.args.dryRun) parts.push('--dry-run');
    return parts.map(shellQuote).join(' ');
  }

  /** Rejects with Interrupted as soon as the run is interrupted, whatever `work` is doing. */
  private untilInterrupted<T>(work: T | Promise<T>): Promise<T> {
    const signal = this.interrupt.signal;
    if (signal.aborted) {
      // Whatever `work` still does, its failure is no longer anyone's concern.
      Promise.resolve(work).catch(() => undefined);
      return Promise.reject(new Interrupted('interrupted'));
    }
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
    await this.audit.append(input);
  }

  private async finish(outcome: RunOutcome, code: number, error?: string): Promise<number> {
    const complete =
      !this.args.dryRun &&
      outcome === 'ok' &&
      this.outcomes.every((o) => o.status === 'ok' || o.status === 'verified-done');
    // Cleanup and the lock release happen whatever failed before them.
    if (this.startedSteps && this.runbook.cleanup && this.baseContext) {
      try {
        await this.runbook.cleanup(this.baseContext);
      } catch (err) {
        this.progress.log(`cleanup failed: ${maskSecrets(errorMessage(err))}`);
      }
    }
    try {
      await this.audit.append({
        event: 'run-end',
        outcome,
        duration_ms: Date.now() - this.started,
        detail: {
          complete,
          exit_code: code,
          steps: Object.fromEntries(this.outcomes.map((o) => [o.id, o.status])),
          ...(error !== undefined ? { error } : {}),
        },
      });
    } catch (err) {
      this.progress.log(`the audit log could not be written: ${maskSecrets(errorMessage(err))}`);
    }
    await this.lock?.release().catch(() => undefined);
    this.progress.summary(this.runbook.id, this.outcomes, {
      outcome,
      dryRun: this.args.dryRun,
      auditLog: this.cfg.auditLog,
      ...(this.report !== undefined ? { report: this.report } : {}),
      runId: this.info.runId,
    });
    if (this.args.json) {
      const summary: RunSummary = {
        runbook: this.runbook.id,
        run_id: this.info.runId,
        dry_run: this.args.dryRun,
        outcome,
        steps: this.outcomes,
        audit_log: this.cfg.auditLog,
        ...(this.report !== undefined ? { report: this.report } : {}),
        ...(error !== undefined && outcome !== 'ok' ? { error } : {}),
      };
      this.info.stdout.write(`${JSON.stringify(summary)}\n`);
    }
    return code;
  }
}
