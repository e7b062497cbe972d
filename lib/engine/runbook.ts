// The runbook engine (docs/architecture.md), and the module a runbook file imports: it declares its
// steps with defineRunbook and ends with `await runMain(runbook, import.meta.url)`; everything
// else happens here and in run-session.ts: flags, modes, settings, context pinning, the lock,
// gates, confirmation, the step lifecycle, the audit trail, progress, interruption and the exit
// code. Its helpers (lib/cluster/kube.ts, lib/cluster/tofu.ts, lib/engine/wait.ts,
// lib/engine/notes.ts) reach a step through its StepContext.
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
import type { AuditLog } from '../audit/audit.ts';
import type { Config } from '../config.ts';
import { maskSecrets } from '../mask.ts';
import { runForcedExitTasks } from './forced-exit.ts';
import { Progress } from './progress.ts';
import {
  flagsToRepeat,
  parseRunbookArgs,
  type RunbookArgs,
  UsageError,
  usageLine,
} from './runbook-args.ts';
import { helpText } from './runbook-help.ts';
import {
  type EngineOptions,
  EXIT,
  type Runbook,
  type RunbookDefinition,
  runSummary,
  type StepDefinition,
} from './runbook-types.ts';

export type { Gate, GateResult } from './gates.ts';
export { helpText } from './runbook-help.ts';
export {
  type EngineOptions,
  EXIT,
  type ModeDefinition,
  type Runbook,
  type RunbookDefinition,
  type RunOutcome,
  type RunSummary,
  type StepDefinition,
  type StepFn,
} from './runbook-types.ts';
export type { StepContext } from './step-context.ts';

const ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
const RESERVED_FLAGS = new Set([
  'help',
  'dry-run',
  'yes',
  'confirm',
  'from',
  'only',
  'json',
  'env-file',
  'override-gate',
]);

function checkSteps(label: string, steps: readonly StepDefinition[], problems: string[]): void {
  if (steps.length === 0) problems.push(`${label} needs at least one step`);
  const ids = steps.map((s) => s.id);
  const seen = new Set<string>();
  for (const [index, step] of steps.entries()) {
    if (!ID_PATTERN.test(step.id)) problems.push(`step id "${step.id}" is not valid`);
    if (seen.has(step.id)) problems.push(`step id ${step.id} is used twice`);
    seen.add(step.id);
    if (step.risk === 'irreversible' && !step.confirmName) {
      problems.push(`irreversible step ${step.id} needs confirmName (the name to type)`);
    }
    if (step.confirmCovers === undefined) continue;
    const end = ids.indexOf(step.confirmCovers);
    if (end <= index) {
      problems.push(
        `step ${step.id}: confirmCovers ${step.confirmCovers} must name a later step of ${label}`,
      );
      continue;
    }
    if (step.risk === 'read') {
      problems.push(`step ${step.id} asks nothing (risk read), so it cannot confirm others`);
    }
    for (const covered of steps.slice(index + 1, end + 1)) {
      // An irreversible step's typed name is its own; a yes for a sequence cannot stand for it.
      if (covered.risk === 'irreversible') {
        problems.push(
          `step ${step.id}: confirmCovers cannot cover irreversible step ${covered.id}`,
        );
      }
      if (covered.confirmCovers !== undefined) {
        problems.push(`step ${covered.id} is covered by ${step.id} and cannot cover others`);
      }
    }
  }
}

/** Checks the definition once, when the file loads, so a mistake fails before any run. */
export function defineRunbook(definition: RunbookDefinition): Runbook {
  const problems: string[] = [];
  if (!ID_PATTERN.test(definition.id)) problems.push(`runbook id "${definition.id}" is not valid`);
  checkSteps('the runbook', definition.steps, problems);
  const flagNames = new Set(Object.keys(definition.flags ?? {}));
  for (const [name, mode] of Object.entries(definition.modes ?? {})) {
    if (!/^[a-z][a-z0-9-]*$/.test(name) || name === 'default') {
      problems.push(`mode "${name}" is not a valid flag name`);
    }
    if (RESERVED_FLAGS.has(name) || flagNames.has(name)) {
      problems.push(`mode ${name} would use the flag --${name}, which is taken`);
    }
    checkSteps(`mode ${name}`, mode.steps, problems);
  }
  for (const name of flagNames) {
    if (RESERVED_FLAGS.has(name)) problems.push(`flag --${name} is one of the common flags`);
  }
  const rollback = definition.rollback;
  if (rollback && !definition.modes?.[rollback.mode]) {
    problems.push(`rollback names mode ${rollback.mode}, which the runbook does not have`);
  }
  if (rollback && !definition.steps.some((s) => s.id === rollback.from)) {
    problems.push(`rollback.from ${rollback.from} is not a step of the runbook`);
  }
  if (problems.length > 0) {
    throw new Error(`runbook ${definition.id} is not valid:\n  ${problems.join('\n  ')}`);
  }
  const modes = Object.fromEntries(
    Object.entries(definition.modes ?? {}).map(([name, mode]) => [
      name,
      Object.freeze({ ...mode, steps: Object.freeze([...mode.steps]) }),
    ]),
  );
  return Object.freeze({
    ...definition,
    steps: Object.freeze([...definition.steps]),
    ...(definition.modes ? { modes: Object.freeze(modes) } : {}),
  });
}

/** The step list a run of `mode` goes through. */
export function stepsFor(runbook: Runbook, mode: string): readonly StepDefinition[] {
  if (mode === 'default') return runbook.steps;
  const chosen = runbook.modes?.[mode];
  if (!chosen) throw new UsageError(`no mode ${mode}`);
  return chosen.steps;
}

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

function selectSteps(steps: readonly StepDefinition[], args: RunbookArgs): Set<string> {
  const ids = steps.map((s) => s.id);
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
  const modes = Object.keys(runbook.modes ?? {});

  let args: RunbookArgs;
  let steps: readonly StepDefinition[];
  let selected: Set<string>;
  try {
    args = parseRunbookArgs(options.argv ?? process.argv.slice(2), flags, modes);
    if (args.help) {
      stdout.write(helpText(runbook, program));
      return EXIT.ok;
    }
    steps = stepsFor(runbook, args.mode);
    selected = selectSteps(steps, args);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    stderr.write(`${program}: ${err.message}\n${usageLine(program, flags, modes)}\n`);
    return EXIT.usage;
  }

  const { ConfigError, loadConfig, REPO_ROOT, settingsFromEnvironment } = await import(
    '../config.ts'
  );
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
      const summary = runSummary({
        runbook: runbook.id,
        runId: null,
        mode: args.mode,
        dryRun: args.dryRun,
        outcome: 'config-error',
        steps: [],
        auditLog: null,
        error: err.message,
      });
      stdout.write(`${JSON.stringify(summary)}\n`);
    }
    return EXIT.usage;
  }

  const [
    { AuditLog, currentOperator, gitRevision },
    { RunSession },
    { AuditKeyError, loadAuditKey },
  ] = await Promise.all([
    import('../audit/audit.ts'),
    import('./run-session.ts'),
    import('../audit/audit-hmac.ts'),
  ]);
  let hmacKey: Buffer | undefined;
  if (cfg.auditHmacKeyFile !== undefined) {
    try {
      hmacKey = await loadAuditKey(cfg.auditHmacKeyFile);
    } catch (err) {
      if (!(err instanceof AuditKeyError)) throw err;
      stderr.write(`${program}: ${err.message}. Nothing was run\n`);
      return EXIT.usage;
    }
  }
  const environment = settingsFromEnvironment({
    ...(args.envFile !== undefined ? { envFile: args.envFile } : {}),
    ...(options.env !== undefined ? { env: options.env } : {}),
  });
  const operator = currentOperator();
  const host = hostname();
  const gitRev = gitRevision(REPO_ROOT);
  const session = (
    runArgs: RunbookArgs,
    runSteps: readonly StepDefinition[],
    runSelected: Set<string>,
    sessionOptions: EngineOptions,
  ) => {
    const runId = newRunId();
    const audit: AuditLog = new AuditLog(
      cfg.auditLog,
      {
        run_id: runId,
        runbook: runbook.id,
        operator,
        host,
        kube_context: cfg.kubeContext,
        git_rev: gitRev,
        dry_run: runArgs.dryRun,
      },
      hmacKey ? { hmacKey } : {},
    );
    return new RunSession(runbook, runArgs, cfg, audit, new Progress(stderr), sessionOptions, {
      runId,
      program,
      operator,
      host,
      steps: runSteps,
      selected: runSelected,
      stdout,
      environment,
    });
  };
  const run = session(args, steps, selected, options);
  const code = await run.execute();
  const recoveryOf = run.rollbackRequest;
  const mode = runbook.rollback?.mode;
  if (!recoveryOf || !mode) return code;

  // The operator chose "roll back now" after a failed step: the rollback mode runs at once, its
  // questions answered by that choice. The change did not happen, so the exit stays non-zero.
  // A gate override given for the forward run does not open the rollback's own gates.
  const rollbackArgs: RunbookArgs = {
    ...args,
    mode,
    from: undefined,
    only: [],
    overrideGate: undefined,
  };
  const rollbackSteps = stepsFor(runbook, mode);
  const rollback = session(rollbackArgs, rollbackSteps, new Set(rollbackSteps.map((s) => s.id)), {
    ...options,
    argv: flagsToRepeat(rollbackArgs, runbook.flags),
    recoveryOf,
  });
  const rollbackCode = await rollback.execute();
  stderr.write(
    rollbackCode === EXIT.ok
      ? `${program}: ${recoveryOf.step} failed and the ${mode} completed; the change was not made\n`
      : `${program}: ${recoveryOf.step} failed and the ${mode} did not complete (exit ${rollbackCode}); see above\n`,
  );
  return rollbackCode === EXIT.ok ? code : rollbackCode;
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

/** how long a second Ctrl-C waits for the lock's release before the process leaves */
const FORCED_EXIT_MS = 3_000;

/**
 * Runs the runbook when `moduleUrl` is the program's entry point (so a runbook file can also be
 * imported, e.g. by tests), then exits with the run's code. SIGINT/SIGTERM interrupt the run:
 * it is audited as interrupted, cleaned up, and the process exits 130; a second signal kills the
 * run's commands, releases its lock (within FORCED_EXIT_MS) and exits; a third exits at once.
 */
export async function runMain(
  runbook: Runbook,
  moduleUrl?: string,
  /** e.g. createLock, when the Lease lock replaces the lock file */
  options: Omit<EngineOptions, 'signal'> = {},
): Promise<void> {
  if (moduleUrl !== undefined && !isEntryPoint(moduleUrl)) return;
  const controller = new AbortController();
  let forcing = false;
  const onSignal = () => {
    if (!controller.signal.aborted) {
      controller.abort();
      return;
    }
    // A second signal: leave now, but free the lock first (a third leaves at once).
    if (forcing) process.exit(EXIT.interrupted);
    forcing = true;
    void runForcedExitTasks(FORCED_EXIT_MS).then(() => process.exit(EXIT.interrupted));
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
