// The runbook engine (DESIGN.md §3). A runbook file declares its steps with defineRunbook and
// ends with `await runMain(runbook, import.meta.url)`; everything else happens here: flags,
// settings, context pinning, the lock, gates, confirmation, the step lifecycle, the audit trail,
// progress, interruption and the exit code.
//
// Only node built-ins and small local modules are imported statically: settings, the audit log,
// the command runner and the lock are loaded after the flags are parsed, so `--help` loads
// neither zx nor @kubernetes/client-node nor ioredis, and never reads the settings.
import { randomBytes } from 'node:crypto';
import { realpathSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AuditInput, AuditLog } from './audit.ts';
import type { Config } from './config.ts';
import type { Prompter } from './confirm.ts';
import type { Gate } from './gates.ts';
import type { ContextReader } from './kube-context.ts';
import type { RunLock } from './lock.ts';
import { Progress, type ProgressStream, type StepOutcome, type StepStatus } from './progress.ts';
import type { Risk } from './risk.ts';
import {
  COMMON_FLAGS,
  type ExtraFlag,
  parseRunbookArgs,
  type RunbookArgs,
  UsageError,
  usageLine,
} from './runbook-args.ts';
import type { StepContext } from './step-context.ts';

// A runbook file needs only this module.
export type { Gate, GateResult } from './gates.ts';
export type { StepContext } from './step-context.ts';

export const EXIT = {
  ok: 0,
  stepFailed: 1,
  usage: 2,
  gateClosed: 3,
  locked: 4,
  interrupted: 130,
} as const;

export type StepFn<T> = (ctx: StepContext) => T | Promise<T>;

export interface StepDefinition {
  /** the task ID from tasks.md (T035) or a preflight ID (P01) */
  id: string;
  /** the tasks.md line, so the log, the checklist and the spec read the same */
  title: string;
  risk: Risk;
  /** what goes wrong for whom if this step misbehaves; shown when asking (high, irreversible) */
  impact?: string;
  /** irreversible steps: the resource name the operator must type or pass with --confirm */
  confirmName?: string | ((ctx: StepContext) => string);
  /** the post-condition: true means already done, so the step is recorded verified-done */
  done?: StepFn<boolean>;
  run: StepFn<unknown>;
  /** the post-check after run(); without it, done() is asked again */
  verify?: StepFn<boolean>;
  /** how to undo this step by hand, printed when it fails */
  undo?: string;
}

export interface RunbookDefinition {
  id: string;
  title: string;
  /** a paragraph for --help: what the runbook does and when to run it */
  description?: string;
  /** runbooks that must have completed (checked as the gate `requires`) */
  requires?: readonly string[];
  gates?: readonly Gate<StepContext>[];
  /** flags this runbook adds to the common ones */
  flags?: Readonly<Record<string, ExtraFlag>>;
  steps: readonly StepDefinition[];
  /** runs at the end of every run that got as far as its steps, interrupted or not */
  cleanup?: (ctx: StepContext) => void | Promise<void>;
}

export type Runbook = Readonly<RunbookDefinition>;

const ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

/** Checks the definition once, when the file loads, so a mistake fails before any run. */
export function defineRunbook(definition: RunbookDefinition): Runbook {
  const problems: string[] = [];
  if (!ID_PATTERN.test(definition.id)) problems.push(`runbook id "${definition.id}" is not valid`);
  if (definition.steps.length === 0) problems.push('a runbook needs at least one step');
  const seen = new Set<string>();
  for (const step of definition.steps) {
    if (!ID_PATTERN.test(step.id)) problems.push(`step id "${step.id}" is not valid`);
    if (seen.has(step.id)) problems.push(`step id ${step.id} is used twice`);
    seen.add(step.id);
    if (step.risk === 'irreversible' && !step.confirmName) {
      problems.push(`irreversible step ${step.id} needs confirmName (the name to type)`);
    }
  }
  if (problems.length > 0) {
    throw new Error(`runbook ${definition.id} is not valid:\n  ${problems.join('\n  ')}`);
  }
  return Object.freeze({ ...definition, steps: Object.freeze([...definition.steps]) });
}

export interface EngineOptions {
  /** the flags; process.argv.slice(2) by default */
  argv?: readonly string[];
  /** how an operator calls this runbook again (for resume hints); derived from argv[1] */
  program?: string;
  stdout?: ProgressStream;
  stderr?: ProgressStream;
  /** the environment settings are read from (process.env by default) */
  env?: Record<string, string | undefined>;
  readKubeContext?: ContextReader;
  prompter?: Prompter;
  isInteractive?: () => boolean;
  /** the run lock; a lock file beside the audit log by default */
  createLock?: (cfg: Config) => RunLock;
  /** aborted on SIGINT/SIGTERM: the run stops, is audited as interrupted and exits 130 */
  signal?: AbortSignal;
}

/** The object `--json` prints on stdout. */
export interface RunSummary {
  runbook: string;
  run_id: string | null;
  dry_run: boolean;
  outcome: RunOutcome;
  steps: StepOutcome[];
  audit_log: string | null;
  error?: string;
}

export type RunOutcome =
  | 'ok'
  | 'failed'
  | 'refused'
  | 'gate-closed'
  | 'locked'
  | 'interrupted'
  | 'context-mismatch'
  | 'config-error';

class Interrupted extends Error {
  override readonly name = 'Interrupted';
}

class PostCheckFailed extends Error {
  override readonly name = 'PostCheckFailed';
}

/** `./runbooks/05-migrate.mts` from the repository root, or whatever path works from here. */
export function programPath(scriptPath: string | undefined, cwd = process.cwd()): string {
  if (!scriptPath) return 'runbook';
  const rel = relative(cwd, resolve(cwd, scriptPath));
  if (rel.startsWith('..') || isAbsolute(rel)) return resolve(cwd, scriptPath);
  return `./${rel}`;
}

export function helpText(runbook: Runbook, program: string): string {
  const flags = runbook.flags ?? {};
  const stepRows = runbook.steps.map((s) => [s.id, s.risk, s.title]);
  const idWidth = Math.max(...stepRows.map((r) => r[0]?.length ?? 0));
  const riskWidth = Math.max(...stepRows.map((r) => r[1]?.length ?? 0));
  const options: Array<readonly [string, string]> = [
    ...COMMON_FLAGS,
    ...Object.entries(flags).map(
      ([name, f]) =>
        [f.type === 'string' ? `--${name} <value>` : `--${name}`, f.description] as const,
    ),
  ];
  const optionWidth = Math.max(...options.map(([flag]) => flag.length));
  const gates = [
    ...(runbook.requires?.length ? [`requires: ${runbook.requires.join(', ')} completed`] : []),
    ...(runbook.gates ?? []).map((g) => `${g.id}: ${g.describe}`),
  ];
  return [
    `${runbook.id}: ${runbook.title}`,
    '',
    usageLine(program, flags),
    ...(runbook.description ? ['', runbook.description] : []),
    '',
    'Steps:',
    ...stepRows.map(
      ([id, risk, title]) => `  ${id?.padEnd(idWidth)}  ${risk?.padEnd(riskWidth)}  ${title}`,
    ),
    ...(gates.length
      ? ['', 'Gates (checked before the first step):', ...gates.map((g) => `  ${g}`)]
      : []),
    '',
    'Options:',
    ...options.map(([flag, text]) => `  ${flag.padEnd(optionWidth)}  ${text}`),
    '',
    'Confirmation: read steps never ask. change and high steps ask yes/no (default no); --yes',
    'answers them. An irreversible step asks you to type the resource name; without a terminal',
    'it passes only with --yes --confirm <name> naming exactly that resource: --yes alone is',
    'refused. Without a terminal and without --yes, any step that asks is refused (exit 2).',
    'A dry run asks nothing. Gates open only with --override-gate "<reason>", never with --yes.',
    '',
    'Exit codes: 0 ok, 1 a step failed, 2 usage, settings or confirmation refused,',
    '3 gate closed, 4 locked by another run, 130 interrupted (re-run to resume).',
    'Every run is recorded in the audit log (AUDIT_LOG); review it with ./runbooks/audit.mts.',
    '',
  ].join('\n');
}

function newRunId(): string {
  const stamp = new Date()
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z');
  return `${stamp}-${randomBytes(3).toString('hex')}`;
}

function selectSteps(runbook: Runbook, args: RunbookArgs): Set<string> {
  const ids = runbook.steps.map((s) => s.id);
  const known = `steps: ${ids.join(', ')}`;
  if (args.from !== undefined) {
    const start = ids.indexOf(args.from);
    if (start < 0) throw new UsageError(`--from ${args.from}: no such step (${known})`);
    return new Set(ids.slice(start));
  }
  if (args.only.length > 0) {
    const unknown = args.only.filter((id) => !ids.includes(id));
    if (unknown.length > 0) {
      throw new UsageError(`--only ${unknown.join(',')}: no such step (${known})`);
    }
    return new Set(args.only);
  }
  return new Set(ids);
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Runs the runbook with the given options and returns the exit code; never calls process.exit. */
export async function executeRunbook(
  runbook: Runbook,
  options: EngineOptions = {},
): Promise<number> {
  const stdout = options.stdout ?? process.stdout;
  const stderr = options.stderr ?? process.stderr;
  const program = options.program ?? programPath(process.argv[1]);
  const flags = runbook.flags ?? {};

  let args: RunbookArgs;
  let selected: Set<string>;
  try {
    args = parseRunbookArgs(options.argv ?? process.argv.slice(2), flags);
    if (args.help) {
      stdout.write(helpText(runbook, program));
      return EXIT.ok;
    }
    selected = selectSteps(runbook, args);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    stderr.write(`${program}: ${err.message}\n${usageLine(program, flags)}\n`);
    return EXIT.usage;
  }

  const { ConfigError, loadConfig, REPO_ROOT } = await import('./config.ts');
  let cfg: Config;
  try {
    cfg = loadConfig({
      ...(args.envFile !== undefined ? { envFile: args.envFile } : {}),
      ...(options.env !== undefined ? { env: options.env } : {}),
    });
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    stderr.write(`${program}: ${err.message}\n`);
    if (args.json) {
      const summary: RunSummary = {
        runbook: runbook.id,
        run_id: null,
        dry_run: args.dryRun,
        outcome: 'config-error',
        steps: [],
        audit_log: null,
        error: err.message,
      };
      stdout.write(`${JSON.stringify(summary)}\n`);
    }
    return EXIT.usage;
  }

  const [{ AuditLog, currentOperator, gitRevision }, { maskSecrets }, { shellQuote }] =
    await Promise.all([import('./audit.ts'), import('./mask.ts'), import('./shell.ts')]);
  const runId = newRunId();
  const operator = currentOperator();
  const host = hostname();
  const audit: AuditLog = new AuditLog(cfg.auditLog, {
    run_id: runId,
    runbook: runbook.id,
    operator,
    host,
    kube_context: cfg.kubeContext,
    git_rev: gitRevision(REPO_ROOT),
    dry_run: args.dryRun,
  });
  const progress = new Progress(stderr);
  const run = new RunSession(runbook, args, cfg, audit, progress, options, {
    runId,
    program,
    operator,
    host,
    selected,
    mask: maskSecrets,
    quote: shellQuote,
    stdout,
  });
  return run.execute();
}

interface SessionInfo {
  runId: string;
  program: string;
  operator: string;
  host: string;
  selected: Set<string>;
  mask: (text: string) => string;
  quote: (arg: string) => string;
  stdout: ProgressStream;
}

/** One run of one runbook, from run-start to run-end. */
class RunSession {
  private readonly outcomes: StepOutcome[];
  private readonly state: Record<string, unknown> = {};
  private readonly interrupt: AbortController = new AbortController();
  private lock: RunLock | undefined;
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
      const message = this.info.mask(errorMessage(err));
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

    const { kubectlContextReader, contextMismatch } = await import('./kube-context.ts');
    const readContext = this.options.readKubeContext ?? kubectlContextReader;
    let current: string;
    try {
      current = await this.untilInterrupted(readContext(cfg));
    } catch (err) {
      if (err instanceof Interrupted) throw err;
      const message = `cannot read the current kube context: ${errorMessage(err)}`;
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

    const { createStepContext } = await import('./step-context.ts');
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
    const { FileRunLock } = await import('./lock.ts');
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
    const { requiredRunbooksGate } = await import('./gates.ts');
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
    const { ConfirmationRefused, confirmStep } = await import('./confirm.ts');
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
      const message = this.info.mask(errorMessage(err));
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
    const parts = [this.info.program, '--from', stepId];
    if (this.args.envFile !== undefined) parts.push('--env-file', this.args.envFile);
    if (this.args.dryRun) parts.push('--dry-run');
    return parts.map(this.info.quote).join(' ');
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
        this.progress.log(`cleanup failed: ${this.info.mask(errorMessage(err))}`);
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
      this.progress.log(`the audit log could not be written: ${this.info.mask(errorMessage(err))}`);
    }
    await this.lock?.release().catch(() => undefined);
    this.progress.summary(this.runbook.id, this.outcomes, {
      outcome,
      dryRun: this.args.dryRun,
      auditLog: this.cfg.auditLog,
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
        ...(error !== undefined && outcome !== 'ok' ? { error } : {}),
      };
      this.info.stdout.write(`${JSON.stringify(summary)}\n`);
    }
    return code;
  }
}

function isEntryPoint(moduleUrl: string): boolean {
  const script = process.argv[1];
  if (!script) return false;
  try {
    return realpathSync(fileURLToPath(moduleUrl)) === realpathSync(script);
  } catch {
    return false;
  }
}

/**
 * Runs the runbook when `moduleUrl` is the program's entry point (so a runbook file can also be
 * imported, e.g. by tests), then exits with the run's code. SIGINT/SIGTERM interrupt the run:
 * it is audited as interrupted, cleaned up, and the process exits 130; a second signal exits at
 * once.
 */
export async function runMain(runbook: Runbook, moduleUrl?: string): Promise<void> {
  if (moduleUrl !== undefined && !isEntryPoint(moduleUrl)) return;
  const controller = new AbortController();
  const onSignal = () => {
    if (controller.signal.aborted) process.exit(EXIT.interrupted);
    controller.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  let code: number;
  try {
    code = await executeRunbook(runbook, { signal: controller.signal });
  } catch (err) {
    const { maskSecrets } = await import('./mask.ts');
    process.stderr.write(`${runbook.id}: ${maskSecrets(errorMessage(err))}\n`);
    code = EXIT.stepFailed;
  }
  // Let stdout drain (a --json summary into a pipe) before exiting; exit rather than wait for
  // the event loop, because an interrupted step may still hold timers or sockets.
  await new Promise<void>((done) => process.stdout.write('', () => done()));
  process.exit(code);
}
