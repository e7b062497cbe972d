// What a runbook declares and what the engine answers with: the definition types, the exit
// codes, the --json summary and the engine's options. Types only (and the EXIT table), so the
// engine's modules can share them without importing each other at run time.
import type { Config } from '../config.ts';
import type { RunLock } from '../lock/lock.ts';
import type { Prompter } from './confirm.ts';
import type { Gate } from './gates.ts';
import type { ContextReader } from './kube-context.ts';
import type { ProgressStream, StepOutcome } from './progress.ts';
import type { Risk } from './risk.ts';
import type { ExtraFlag } from './runbook-args.ts';
import type { StepContext } from './step-context.ts';

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
  /**
   * what goes wrong for whom if this step misbehaves; shown when asking (high, irreversible). A
   * function is asked just before the question, so it can name what earlier steps found.
   */
  impact?: string | ((ctx: StepContext) => string);
  /** irreversible steps: the resource name the operator must type or pass with --confirm */
  confirmName?: string | ((ctx: StepContext) => string);
  /** the post-condition: true means already done, so the step is recorded verified-done */
  done?: StepFn<boolean>;
  /** a reason means the step does not apply: it is recorded `skipped` with it and not run */
  skip?: StepFn<string | undefined>;
  run: StepFn<unknown>;
  /** the post-check after run(); without it, done() is asked again */
  verify?: StepFn<boolean>;
  /**
   * how to undo this step by hand, printed when it fails; a command in it is built with
   * ctx.commandLine or ctx.kubectlLine, so that it pastes and acts on the same cluster and log
   */
  undo?: string | StepFn<string>;
  /**
   * This step's confirmation also covers every following step up to and including the step
   * with this id: they run without further questions and are audited as confirmed by it.
   */
  confirmCovers?: string;
  /** added to the covering question, e.g. "beersystem is down from T035 until T040 is Ready" */
  coverText?: string;
}

/** Another step list of the same runbook, selected with --<name> (e.g. --rollback). */
export interface ModeDefinition {
  title: string;
  description?: string;
  steps: readonly StepDefinition[];
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
  /** other step lists, each selected by a flag named after it: { rollback: … } → --rollback */
  modes?: Readonly<Record<string, ModeDefinition>>;
  /**
   * A sentence when the runbook is already complete: a plain re-run (default mode, no --from or
   * --only) then verifies, sends no mutation and prints that sentence.
   */
  completed?: (ctx: StepContext) => Promise<string | undefined> | string | undefined;
  /**
   * How to get back when a step fails at or after `from` (in the default step list): on a
   * terminal the operator is asked to retry the step, run `mode` now, or stop.
   */
  rollback?: {
    mode: string;
    from: string;
    /** what stopping there leaves behind, said by the Stop choice (e.g. "beersystem stays down") */
    stopLeaves?: string;
  };
  /**
   * Where the system stands, asked when a run that started its steps ends without completing;
   * printed last, under the summary, with the lines to go back (rollback) and on (resume), as
   * `kubectl rollout status` ends with the rollout's state. A read only.
   */
  standing?: (ctx: StepContext) => Promise<string | undefined> | string | undefined;
  /**
   * What comes next after a run that ended well (the next runbook, a gate's time), printed as
   * the last line; a dry run's last line is the command to run it for real. A read only.
   */
  next?: (ctx: StepContext) => Promise<string | undefined> | string | undefined;
  /** runs at the end of every run that got as far as its steps, interrupted or not */
  cleanup?: (ctx: StepContext) => void | Promise<void>;
}

export type Runbook = Readonly<RunbookDefinition>;

/** The step list's name: 'default', or the name of a mode. */
export type ModeName = string;

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
  /**
   * Set for a run started because the operator chose "roll back now" after a failed step: its
   * change and high confirmations are that choice (irreversible ones are still asked).
   */
  recoveryOf?: RecoveryOf;
  /** the run lock; a lock file beside the audit log by default */
  createLock?: (cfg: Config) => RunLock;
  /** aborted on SIGINT/SIGTERM: the run stops, is audited as interrupted and exits 130 */
  signal?: AbortSignal;
  /**
   * After an interrupt: stops every command still running and resolves to the pids that would
   * not die (lib/engine/shell.ts stopRunningCommands by default).
   */
  stopCommands?: () => Promise<number[]>;
}

/** The failed run a rollback run was started from, within the same invocation. */
export interface RecoveryOf {
  runId: string;
  step: string;
  error: string;
  /** the failed run's --json summary, carried into the rollback run's summary */
  summary?: object;
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

/** The object `--json` prints on stdout. */
export interface RunSummary {
  runbook: string;
  run_id: string | null;
  mode: ModeName;
  dry_run: boolean;
  outcome: RunOutcome;
  steps: StepOutcome[];
  audit_log: string | null;
  /** the report the run wrote, when it wrote one */
  report?: string;
  /** the sentence completed() returned when the runbook was already complete */
  already_complete?: string;
  error?: string;
}

/** Builds the --json summary: the one place its shape is decided. */
export function runSummary(fields: {
  runbook: string;
  runId: string | null;
  mode: ModeName;
  dryRun: boolean;
  outcome: RunOutcome;
  steps: StepOutcome[];
  auditLog: string | null;
  report?: string | undefined;
  alreadyComplete?: string | undefined;
  error?: string | undefined;
}): RunSummary {
  return {
    runbook: fields.runbook,
    run_id: fields.runId,
    mode: fields.mode,
    dry_run: fields.dryRun,
    outcome: fields.outcome,
    steps: fields.steps,
    audit_log: fields.auditLog,
    ...(fields.report !== undefined ? { report: fields.report } : {}),
    ...(fields.alreadyComplete !== undefined ? { already_complete: fields.alreadyComplete } : {}),
    ...(fields.error !== undefined && fields.outcome !== 'ok' ? { error: fields.error } : {}),
  };
}

/** What a run knows of itself before its first step: who, where, which steps. */
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
