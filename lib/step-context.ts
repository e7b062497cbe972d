// What a step (and a gate) is handed: the settings, the run's flags and a command runner already
// bound to the run's audit log, dry-run flag and interrupt signal, so a step body stays two to
// six readable lines.
//
// Extension point: clients that are costly to load (client-node for `ctx.kube`, ioredis for the
// probes) join StepContext as getters in createStepContext that `await import()` their module on
// first use and keep the instance in `shared`, so `--help` and steps that never touch them pay
// nothing.
import type { AuditLog } from './audit.ts';
import { kubectlCommandKind, tofuCommandKind } from './command-kind.ts';
import type { Config } from './config.ts';
import type { Risk } from './risk.ts';
import {
  type CommandKind,
  type CommandOptions,
  type CommandResult,
  formatCommand,
  runCommand,
} from './shell.ts';

/** Per-call options; dry-run, audit and interruption come from the run. */
export type StepCommandOptions = Omit<CommandOptions, 'kind' | 'dryRun' | 'audit' | 'signal'> & {
  kind?: CommandKind;
};

export interface StepLogger {
  info(message: string): void;
  warn(message: string): void;
}

/** Values one step leaves for a later one in the same run (e.g. a replica count to restore). */
export type RunState = Record<string, unknown>;

export interface StepContext {
  readonly cfg: Config;
  readonly dryRun: boolean;
  readonly runId: string;
  readonly runbook: string;
  /** the step being run; null while gates are checked */
  readonly step: { id: string; risk: Risk } | null;
  /** the runbook's own flags (see RunbookDefinition.flags) */
  readonly flags: Readonly<Record<string, string | boolean | undefined>>;
  readonly state: RunState;
  readonly log: StepLogger;
  /** aborted when the run is interrupted (SIGINT/SIGTERM) */
  readonly signal: AbortSignal;
  /** the run's audit log, with run and step filled in */
  readonly audit: AuditLog;
  /** names the report this run wrote, so the summary (and --json) can say where it is */
  setReport(path: string): void;
  /** any command; `kind` is required because nothing can be inferred about an arbitrary program */
  run(
    argv: readonly string[],
    options: StepCommandOptions & { kind: CommandKind },
  ): Promise<CommandResult>;
  /** kubectl pinned to the configured context; read or mutation inferred from the verb */
  kubectl(args: readonly string[], options?: StepCommandOptions): Promise<CommandResult>;
  /** the tofu binary in the configured working directory; kind inferred from the subcommand */
  tofu(args: readonly string[], options?: StepCommandOptions): Promise<CommandResult>;
}

export interface StepContextInput {
  cfg: Config;
  dryRun: boolean;
  runId: string;
  runbook: string;
  step: { id: string; risk: Risk } | null;
  flags: Readonly<Record<string, string | boolean | undefined>>;
  state: RunState;
  signal: AbortSignal;
  audit: AuditLog;
  print: (line: string) => void;
  setReport: (path: string) => void;
}

/** `--context` (and `--kubeconfig`) on every kubectl call, so no call can reach another cluster. */
export function kubectlPinArgs(cfg: Pick<Config, 'kubeContext' | 'kubeconfig'>): string[] {
  return [
    '--context',
    cfg.kubeContext,
    ...(cfg.kubeconfig ? ['--kubeconfig', cfg.kubeconfig] : []),
  ];
}

/**
 * A step may mark a kubectl/tofu call as a mutation that the verb alone does not reveal, but
 * never the reverse: a change declared a read would be sent during a dry run.
 */
function kindFor(
  argv: readonly string[],
  inferred: CommandKind,
  requested: CommandKind | undefined,
): CommandKind {
  if (requested === 'read' && inferred === 'mutation') {
    throw new Error(
      `${formatCommand(argv)} is classified as a mutation and cannot be run as a read, because a dry run would send it. If it only reads, give its flags after the verb (kubectl get pods -n redis, not kubectl -n redis get pods)`,
    );
  }
  return requested ?? inferred;
}

export function createStepContext(input: StepContextInput): StepContext {
  const { cfg } = input;
  const audit = input.step
    ? input.audit.with({ step: input.step.id, risk: input.step.risk })
    : input.audit;
  const run = (argv: readonly string[], options: StepCommandOptions & { kind: CommandKind }) =>
    runCommand(argv, {
      timeoutMs: cfg.timeouts.commandMs,
      print: input.print,
      ...options,
      dryRun: input.dryRun,
      audit,
      signal: input.signal,
    });
  return {
    cfg,
    dryRun: input.dryRun,
    runId: input.runId,
    runbook: input.runbook,
    step: input.step,
    flags: input.flags,
    state: input.state,
    signal: input.signal,
    audit,
    setReport: input.setReport,
    log: {
      info: (message) => input.print(message),
      warn: (message) => input.print(`warning: ${message}`),
    },
    run,
    kubectl: async (args, options = {}) => {
      const argv = ['kubectl', ...kubectlPinArgs(cfg), ...args];
      return run(argv, { ...options, kind: kindFor(argv, kubectlCommandKind(args), options.kind) });
    },
    tofu: async (args, options = {}) => {
      const argv = [cfg.tofu.bin, ...args];
      const kind = kindFor(argv, tofuCommandKind(args), options.kind);
      return run(argv, { cwd: cfg.tofu.dir, ...options, kind });
    },
  };
}
