// The runbook engine (DESIGN.md §3). A runbook file declares its steps with defineRunbook and
// ends with `await runMain(runbook, import.meta.url)`; everything else happens here: flags,
// settings, context pinning, the lock, gates, confirmation, the step lifecycle, the audit trail,
// progress, interruption and the exit code.
//
// Only node built-ins and small local modules are imported statically: settings, the audit log,
// the command runner and the run itself (run-session.ts) are loaded after the flags are parsed,
// so `--help` loads neither zx nor @kubernetes/client-node nor ioredis, and never reads the
// settings.
import { randomBytes } from 'node:crypto';
import { realpathSync } from 'node:fs';
import { hostname } from 'node:os';
import { isAbsolute, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AuditLog } from './audit.ts';
import type { Config } from './config.ts';
import type { Prompter } from './confirm.ts';
import type { Gate } from './gates.ts';
import type { ContextReader } from './kube-context.ts';
import type { RunLock } from './lock.ts';
import { maskSecrets } from './mask.ts';
import { Progress, type ProgressStream, type StepOutcome } from './progress.ts';
import type { Risk } from './risk.ts';
import {
  type ExtraFlag,
  parseRunbookArgs,
  type RunbookArgs,
  UsageError,
  usageLine,
} from './runbook-args.ts';
import { helpText } from './runbook-help.ts';
import type { StepContext } from './step-context.ts';

// A runbook file needs only this module.
export type { Gate, GateResult } from './gates.ts';
export { helpText } from './runbook-help.ts';
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
  /** the report the run wrote, when it wrote one */
  report?: string;
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

/** `./runbooks/05-migrate.mts` from the repository root, or whatever path works from here. */
export function programPath(scriptPath: string | undefined, cwd = process.cwd()): string {
  if (!scriptPath) return 'runbook';
  const rel = relative(cwd, resolve(cwd, scriptPath));
  if (rel.startsWith('..') || isAbsolute(rel)) return resolve(cwd, scriptPath);
  return `./${rel}`;
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

  const [{ AuditLog, currentOperator, gitRevision }, { RunSession }] = await Promise.all([
    import('./audit.ts'),
    import('./run-session.ts'),
  ]);
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
    stdout,
  });
  return run.execute();
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
export async function runMain(
  runbook: Runbook,
  moduleUrl?: string,
  /** e.g. createLock, when the Lease lock replaces the lock file */
  options: Omit<EngineOptions, 'signal'> = {},
): Promise<void> {
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
    code = await executeRunbook(runbook, { ...options, signal: controller.signal });
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    process.stderr.write(`${runbook.id}: ${maskSecrets(message)}\n`);
    code = EXIT.stepFailed;
  }
  // Let stdout drain (a --json summary into a pipe) before exiting; exit rather than wait for
  // the event loop, because an interrupted step may still hold timers or sockets.
  await new Promise<void>((done) => process.stdout.write('', () => done()));
  process.exit(code);
}
