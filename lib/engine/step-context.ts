// What a step (and a gate) is handed: the settings, the run's flags and mode, commands already
// bound to the run's audit log, dry-run flag and interrupt signal (as zx-style tagged templates
// or argv arrays), the one wait helper, notes that outlive the process, and `ctx.kube`, the
// cluster reads of lib/cluster/kube.ts. client-node is costly to load, so `ctx.kube` loads it on first
// use: `--help` and runs that never read the cluster pay nothing.
import type { AuditLog } from '../audit/audit.ts';
import type { Kube } from '../cluster/kube.ts';
import type { Config } from '../config.ts';
import { LockLostError } from '../lock/lock.ts';
import type { EvidenceId } from '../names.ts';
import {
  ATTEMPT_CLOSE_NOTE,
  ATTEMPT_OPEN_NOTE,
  type Attempt,
  type AttemptOutcome,
  attemptInScope,
  recallInScope,
} from './attempts.ts';
import { kubectlCommandKind, kubectlIsIdempotent, tofuCommandKind } from './command-kind.ts';
import type { CommandLineOptions } from './command-line.ts';
import { checkNoteValue, readNotes } from './notes.ts';
import type { Risk } from './risk.ts';
import {
  type CommandKind,
  type CommandOptions,
  type CommandResult,
  formatCommand,
  runCommand,
  templateArgv,
} from './shell.ts';
import { type WaitCheck, type WaitOptions, waitFor } from './wait.ts';

/** Per-call options; dry-run, audit and interruption come from the run. */
export type StepCommandOptions = Omit<CommandOptions, 'kind' | 'dryRun' | 'audit' | 'signal'> & {
  kind?: CommandKind;
};

export interface StepLogger {
  info(message: string): void;
  warn(message: string): void;
}

/** Values one step leaves for a later one in the same process; use notes to outlive it. */
export type RunState = Record<string, unknown>;

/** kubectl/tofu: `` cmd`verb ${arg}` ``, cmd(argv, options), or cmd(options)`…` */
export interface CommandTag {
  (strings: TemplateStringsArray, ...values: unknown[]): Promise<CommandResult>;
  (args: readonly string[], options?: StepCommandOptions): Promise<CommandResult>;
  (options: StepCommandOptions): CommandTag;
}

export interface StepContext {
  readonly cfg: Config;
  readonly dryRun: boolean;
  readonly runId: string;
  readonly runbook: string;
  /** the step list being run: 'default', or a mode such as 'rollback' */
  readonly mode: string;
  /** the step being run; null while gates and completed() are checked */
  readonly step: { id: string; risk: Risk } | null;
  /** the runbook's own flags (see RunbookDefinition.flags) */
  readonly flags: Readonly<Record<string, string | boolean | undefined>>;
  readonly state: RunState;
  readonly log: StepLogger;
  /** aborted when the run is interrupted (SIGINT/SIGTERM) */
  readonly signal: AbortSignal;
  /** the run's audit log, with run and step filled in */
  readonly audit: AuditLog;
  /** cluster reads (client-node, loaded on first use); reads run in a dry run too */
  readonly kube: Kube;
  /** names the report this run wrote, so the summary (and --json) can say where it is */
  setReport(path: string): void;
  /**
   * A live line beside the spinner for the rest of the run, on a terminal (e.g. the window's
   * downtime and the app's health); `render` gets the step running now; undefined clears it.
   */
  setStatus(render: ((step: string | undefined) => string | undefined) | undefined): void;
  /** any command; `kind` is required because nothing can be inferred about an arbitrary program */
  run(
    argv: readonly string[],
    options: StepCommandOptions & { kind: CommandKind },
  ): Promise<CommandResult>;
  /** kubectl pinned to the configured context; read or mutation inferred from the verb */
  kubectl: CommandTag;
  /** the tofu binary in the configured working directory; kind inferred from the subcommand */
  tofu: CommandTag;
  /**
   * Waits until `check` gives a truthy value (returned): progress with the elapsed time,
   * WAIT_TIMEOUT unless timeoutMs, stopped by an interrupt, audited. In a dry run that has not
   * sent a mutation, a wait that does not hold at once prints "would wait for …" and gives
   * undefined.
   */
  waitFor<T>(what: string, check: WaitCheck<T>, options?: WaitOptions<T>): Promise<T | undefined>;
  /**
   * This runbook's command line with this run's settings and flags (--env-file, the environment's
   * settings, the runbook's own flags), to print for an operator: `{ mode: 'rollback' }` is the
   * rollback, `{ from: 'T039' }` a resume. Pasted as printed, it acts on the same cluster and log.
   */
  commandLine(options?: CommandLineOptions): string;
  /** kubectl pinned to this run's context and kubeconfig, as a line to print for an operator */
  kubectlLine(args: readonly string[]): string;
  /** records a small JSON value as an audit event, for this and later runs of this runbook */
  note(key: string, value: unknown): Promise<void>;
  /**
   * the latest value noted under `key` by this run, else by this runbook's real runs: those of
   * the attempt in scope (see `attempt`) when there is one, else those outside every attempt
   */
  recall<T = unknown>(key: string): Promise<T | undefined>;
  /** the runbook's attempt (lib/engine/attempts.ts): notes and records belong to one */
  readonly attempt: AttemptControl;
  /** evidence for a report: the note `evidence.<id>` with `line` and `data`, and `line` printed */
  evidence(id: EvidenceId, line: string, data?: Record<string, unknown>): Promise<void>;
}

export interface AttemptControl {
  /**
   * The attempt this run's notes are read from and written to: the open one, or for a rollback
   * with none open, the completed one it undoes. Undefined: none.
   */
  current(): Promise<Attempt | undefined>;
  /** opens an attempt unless one is open already (a resume continues it); gives the open one */
  open(): Promise<Attempt>;
  /** closes the attempt in scope, if any */
  close(outcome: AttemptOutcome): Promise<void>;
}

/** What the run shares between the contexts of its steps. */
export interface RunShared {
  /** notes this run wrote, dry or not, by key */
  notes: Map<string, unknown>;
  /** mutations a dry run printed instead of sending */
  unsentMutations: number;
  kube?: Kube;
  /** why the run's lock was lost, once it is (then no mutation may be sent) */
  lockLost?: () => string | undefined;
  /** the attempt in scope, once read (null: none) */
  attempt?: Attempt | null;
}

export interface StepContextInput {
  cfg: Config;
  dryRun: boolean;
  runId: string;
  runbook: string;
  /** 'default' unless given */
  mode?: string;
  step: { id: string; risk: Risk } | null;
  flags: Readonly<Record<string, string | boolean | undefined>>;
  state: RunState;
  /** what the run's steps share; a fresh one for a context on its own */
  shared?: RunShared;
  signal: AbortSignal;
  audit: AuditLog;
  print: (line: string) => void;
  showWaiting?: (what: string, started: number, detail: string | undefined) => void;
  endWaiting?: () => void;
  setReport: (path: string) => void;
  setStatus?: (render: ((step: string | undefined) => string | undefined) | undefined) => void;
  /** ctx.commandLine; the bare runbook name when not given (a context on its own) */
  commandLine?: (options: CommandLineOptions) => string;
  /** how ctx.kube is made; lib/cluster/kube.ts createKube, imported on first use, by default */
  loadKube?: (cfg: Config, signal: AbortSignal) => Promise<Kube>;
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

function isTemplate(value: unknown): value is TemplateStringsArray {
  return Array.isArray(value) && Object.hasOwn(value, 'raw');
}

/** One function for the three call forms of ctx.kubectl and ctx.tofu. */
function commandTag(
  send: (args: readonly string[], options: StepCommandOptions) => Promise<CommandResult>,
  preset: StepCommandOptions = {},
): CommandTag {
  function tag(first: unknown, ...rest: unknown[]): unknown {
    if (isTemplate(first)) return send(templateArgv(first, rest), preset);
    if (Array.isArray(first)) {
      return send(first as readonly string[], { ...preset, ...(rest[0] as StepCommandOptions) });
    }
    return commandTag(send, { ...preset, ...(first as StepCommandOptions) });
  }
  return tag as CommandTag;
}

/** A Kube whose methods load lib/cluster/kube.ts (and client-node) the first time one is called. */
function lazyKube(load: () => Promise<Kube>): Kube {
  return new Proxy({} as Kube, {
    get(_target, name) {
      if (name === 'then') return undefined; // not a thenable: `await ctx.kube` gives it back
      return async (...args: unknown[]) => {
        const kube = (await load()) as unknown as Record<PropertyKey, (...a: unknown[]) => unknown>;
        const method = kube[name];
        if (typeof method !== 'function') throw new Error(`ctx.kube has no ${String(name)}()`);
        return method.apply(kube, args);
      };
    },
  });
}

async function defaultLoadKube(cfg: Config, signal: AbortSignal): Promise<Kube> {
  const { createKube } = await import('../cluster/kube.ts');
  return createKube(cfg, { signal });
}

export function createStepContext(input: StepContextInput): StepContext {
  const { cfg } = input;
  const shared: RunShared = input.shared ?? { notes: new Map(), unsentMutations: 0 };
  const audit = input.step
    ? input.audit.with({ step: input.step.id, risk: input.step.risk })
    : input.audit;
  const run = async (
    argv: readonly string[],
    options: StepCommandOptions & { kind: CommandKind },
  ): Promise<CommandResult> => {
    if (options.kind === 'mutation' && input.step?.risk === 'read') {
      throw new Error(
        `step ${input.step.id} is declared risk 'read' but sends a mutation: ${formatCommand(argv)}. Nothing was sent. Declare the step 'change' (or 'high' or 'irreversible', whichever fits) so it is confirmed before it runs`,
      );
    }
    const lost = options.kind === 'mutation' && !input.dryRun ? shared.lockLost?.() : undefined;
    if (lost) {
      throw new LockLostError(
        `this run lost its lock (${lost}), so ${formatCommand(argv)} was not sent: another run may be changing the cluster. Find out who holds it (./runbooks/audit.mts list --cluster), then resume`,
      );
    }
    const result = await runCommand(argv, {
      timeoutMs: cfg.timeouts.commandMs,
      print: input.print,
      ...options,
      dryRun: input.dryRun,
      audit,
      signal: input.signal,
    });
    if (result.dryRun) shared.unsentMutations += 1;
    return result;
  };
  let kube: Kube | undefined;
  const loadKube = async () => {
    shared.kube ??= await (input.loadKube ?? defaultLoadKube)(cfg, input.signal);
    return shared.kube;
  };
  const mode = input.mode ?? 'default';
  const realNotes = () => readNotes(cfg.auditLog, { runbook: input.runbook });
  const currentAttempt = async (): Promise<Attempt | undefined> => {
    if (shared.attempt === undefined) {
      shared.attempt = attemptInScope(await realNotes(), input.runbook, mode) ?? null;
    }
    return shared.attempt ?? undefined;
  };
  const append = async (key: string, value: unknown, attempt: Attempt | undefined) => {
    checkNoteValue(key, value);
    shared.notes.set(key, value);
    await audit.append({
      event: 'note',
      detail: { key, value, ...(attempt ? { attempt: attempt.id } : {}) },
    });
  };
  const note = async (key: string, value: unknown) => append(key, value, await currentAttempt());
  const attempt: AttemptControl = {
    current: currentAttempt,
    open: async () => {
      const open = await currentAttempt();
      if (open && !open.closedAt) return open;
      const at = new Date().toISOString();
      const opened: Attempt = {
        id: input.runId,
        runbook: input.runbook,
        openedBy: input.runId,
        openedAt: at,
        openedAtStep: input.step?.id ?? null,
        runs: [input.runId],
      };
      await append(ATTEMPT_OPEN_NOTE, { attempt: opened.id }, undefined);
      // A dry run's notes are not read back: it opens nothing for a later run.
      shared.attempt = opened;
      return opened;
    },
    close: async (outcome) => {
      const current = await currentAttempt();
      if (!current) return;
      await append(ATTEMPT_CLOSE_NOTE, { attempt: current.id, outcome }, current);
      shared.attempt = null;
    },
  };
  return {
    cfg,
    dryRun: input.dryRun,
    runId: input.runId,
    runbook: input.runbook,
    mode,
    step: input.step,
    flags: input.flags,
    state: input.state,
    signal: input.signal,
    audit,
    get kube() {
      kube ??= lazyKube(loadKube);
      return kube;
    },
    setReport: input.setReport,
    setStatus: input.setStatus ?? (() => undefined),
    commandLine: (options = {}) =>
      input.commandLine?.(options) ??
      [
        `./runbooks/${input.runbook}.mts`,
        ...(options.mode && options.mode !== 'default' ? [`--${options.mode}`] : []),
      ].join(' '),
    kubectlLine: (args) => formatCommand(['kubectl', ...kubectlPinArgs(cfg), ...args]),
    log: {
      info: (message) => input.print(message),
      warn: (message) => input.print(`warning: ${message}`),
    },
    run,
    kubectl: commandTag((args, options) => {
      const argv = ['kubectl', ...kubectlPinArgs(cfg), ...args];
      const kind = kindFor(argv, kubectlCommandKind(args), options.kind);
      return run(argv, { idempotent: kubectlIsIdempotent(args), ...options, kind });
    }),
    tofu: commandTag((args, options) => {
      const argv = [cfg.tofu.bin, ...args];
      const kind = kindFor(argv, tofuCommandKind(args), options.kind);
      return run(argv, { cwd: cfg.tofu.dir, ...options, kind });
    }),
    waitFor: (what, check, options = {}) =>
      waitFor(what, check, options, {
        defaultTimeoutMs: cfg.timeouts.waitMs,
        dryRun: input.dryRun,
        unsentMutations: () => shared.unsentMutations > 0,
        signal: input.signal,
        audit,
        print: input.print,
        ...(input.showWaiting ? { showWaiting: input.showWaiting } : {}),
        ...(input.endWaiting ? { endWaiting: input.endWaiting } : {}),
      }),
    note,
    attempt,
    recall: async <T>(key: string) => {
      if (shared.notes.has(key)) return shared.notes.get(key) as T;
      return recallInScope(await realNotes(), input.runbook, mode, key) as T | undefined;
    },
    evidence: async (id, line, data = {}) => {
      await note(`evidence.${id}`, { line, ...data });
      input.print(`evidence ${id}: ${line}`);
    },
  };
}
