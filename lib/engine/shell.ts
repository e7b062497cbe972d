// The one way runbooks run a command: an argv array (never a glued string), classified as a read
// or a mutation. Mutations are what a dry run must not send, so they are printed as the exact
// command instead; everything printed, audited or thrown passes through the secret mask first.
import { readdirSync, readFileSync } from 'node:fs';
import { setTimeout as delay } from 'node:timers/promises';
import type { AuditEvent } from '../audit/audit.ts';
import { maskSecrets, registerSecret } from '../mask.ts';
import { forgetGroup, watchGroup } from './command-watchdog.ts';

// Callers who run commands should not have to know that masking lives in another module.
export { registerSecret };

/** `read` runs in a dry run too; `mutation` is printed as `would run: …` instead. */
export type CommandKind = 'read' | 'mutation';

/** The part of the audit log the runner writes to (lib/audit/audit.ts AuditLog fits it). */
export interface CommandAudit {
  append(input: {
    event: AuditEvent;
    command?: string | null;
    dry_run?: boolean;
    outcome?: string | null;
    duration_ms?: number | null;
    detail?: unknown;
  }): Promise<unknown>;
}

export interface BackoffPolicy {
  /** delay before the first retry; doubles on each further retry */
  baseMs: number;
  /** no single delay grows beyond this */
  maxMs: number;
}

export interface CommandOptions {
  kind: CommandKind;
  dryRun?: boolean;
  /** mutations (run or not) are written here as `command` events; reads only when auditReads */
  audit?: CommandAudit;
  auditReads?: boolean;
  timeoutMs?: number;
  /** after a timeout or an interruption, how long SIGTERM has to work before SIGKILL follows */
  killGraceMs?: number;
  /**
   * how many times a transient failure is tried again (so at most retries + 1 attempts); a
   * mutation is tried once unless it is declared idempotent
   */
  retries?: number;
  /** a mutation that may safely be sent twice (kubectl scale, annotate --overwrite…) */
  idempotent?: boolean;
  backoff?: BackoffPolicy;
  /** added to the process environment: the way to hand a command a secret */
  env?: Record<string, string | undefined>;
  /** written to the command's stdin: the other way to hand it a secret */
  input?: string;
  cwd?: string;
  /** aborting kills the running command (used when the run is interrupted) */
  signal?: AbortSignal;
  /** where `would run:` and `run:` lines go; stderr by default */
  print?: (line: string) => void;
  /** print `run: <command>` before a mutation that really runs (default true) */
  echo?: boolean;
}

/**
 * What a command gave back. stdout/stderr are NOT masked: a step that reads a secret needs its
 * value. Masking applies to what leaves the process (printed, audited, thrown).
 */
export interface CommandResult {
  /** the command as shown to people: shell-quoted and masked */
  command: string;
  stdout: string;
  stderr: string;
  exitCode: number;
  attempts: number;
  durationMs: number;
  /** true when a dry run did not execute this mutation */
  skipped: boolean;
  /** the same as skipped: true means the command was not sent */
  dryRun: boolean;
}

export const DEFAULT_TIMEOUT_MS = 60_000;
export const DEFAULT_KILL_GRACE_MS = 10_000;
/** after SIGKILL, how long the processes have to disappear before they count as unkillable */
const KILL_CONFIRM_MS = 5_000;
export const DEFAULT_RETRIES = 4;
export const DEFAULT_BACKOFF: BackoffPolicy = { baseMs: 500, maxMs: 8_000 };
const ERROR_TAIL_CHARS = 2_000;

export class CommandError extends Error {
  override readonly name = 'CommandError';
  constructor(
    message: string,
    readonly command: string,
    readonly exitCode: number | null,
    readonly stdout: string,
    readonly stderr: string,
    readonly attempts: number,
    readonly timedOut: boolean,
    readonly transient: boolean,
    /** processes of the command still alive after SIGKILL */
    readonly survivors: readonly number[] = [],
  ) {
    super(message);
  }
}

/** Thrown before anything runs when a registered secret sits in argv (visible in `ps`). */
export class SecretInArgvError extends Error {
  override readonly name = 'SecretInArgvError';
}

// Failures that go away when tried again: the API server or a proxy restarting, a 5xx, and the
// optimistic-concurrency conflict kubectl reports when an object changed under it.
const TRANSIENT_PATTERNS: readonly RegExp[] = [
  /connection refused/i,
  /connection reset/i,
  /ECONNREFUSED|ECONNRESET|EPIPE/,
  /\b(?:HTTP\/\d(?:\.\d)?|status(?: code)?:?|returned error:?)\s*5\d\d\b/i,
  /\b5\d\d (?:Internal Server Error|Bad Gateway|Service Unavailable|Gateway Timeout)\b/i,
  /Error from server \((?:InternalError|ServiceUnavailable|Conflict)\)/,
  /the object has been modified/i,
  /\b409 Conflict\b/i,
];

export function isTransientFailure(output: string): boolean {
  return TRANSIENT_PATTERNS.some((pattern) => pattern.test(output));
}

const SAFE_WORD = /^[A-Za-z0-9_@%+=:,./-]+$/;

/** POSIX shell quoting, so a printed command can be pasted back into a shell as it is. */
export function shellQuote(arg: string): string {
  if (arg !== '' && SAFE_WORD.test(arg)) return arg;
  return `'${arg.replaceAll("'", `'\\''`)}'`;
}

/**
 * The command as people see it: every registered secret masked, then quoted. Quoting first would
 * change a secret containing `'` into a form the mask no longer recognises.
 */
export function formatCommand(argv: readonly string[]): string {
  return maskSecrets(argv.map((arg) => shellQuote(maskSecrets(arg))).join(' '));
}

function templateValue(value: unknown, index: number, strings: readonly string[]): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'bigint' || typeof value === 'boolean') {
    return String(value);
  }
  if (
    value &&
    typeof value === 'object' &&
    typeof (value as { stdout?: unknown }).stdout === 'string'
  ) {
    return (value as { stdout: string }).stdout.trim();
  }
  const sketch = strings.join('$' + '{…}').trim();
  throw new Error(
    `interpolation ${index + 1} in \`${sketch}\` is ${value === null ? 'null' : typeof value}: pass a string, a number or an array of them`,
  );
}

/**
 * argv from a tagged template, the way zx's `$` reads one: the literal text splits on
 * whitespace, each interpolation is one argument whatever it contains (no shell ever parses it),
 * an array gives one argument per element, and text written against an interpolation
 * (`--replicas=${n}`) stays in the same argument.
 */
export function templateArgv(strings: readonly string[], values: readonly unknown[]): string[] {
  const argv: string[] = [];
  let word: string | undefined;
  const flush = () => {
    if (word !== undefined) argv.push(word);
    word = undefined;
  };
  for (const [index, literal] of strings.entries()) {
    for (const part of literal.split(/(\s+)/)) {
      if (/^\s+$/.test(part)) flush();
      else if (part !== '') word = (word ?? '') + part;
    }
    if (index >= values.length) continue;
    const value = values[index];
    if (Array.isArray(value)) {
      for (const [i, element] of value.entries()) {
        if (i > 0) flush();
        word = (word ?? '') + templateValue(element, index, strings);
      }
    } else {
      word = (word ?? '') + templateValue(value, index, strings);
    }
  }
  flush();
  return argv;
}

export function backoffDelay(retry: number, policy: BackoffPolicy): number {
  return Math.min(policy.maxMs, policy.baseMs * 2 ** retry);
}

function tail(text: string): string {
  const trimmed = text.trim();
  return trimmed.length > ERROR_TAIL_CHARS ? `…${trimmed.slice(-ERROR_TAIL_CHARS)}` : trimmed;
}

interface Attempt {
  stdout: string;
  stderr: string;
  exitCode: number | null;
  timedOut: boolean;
  aborted: boolean;
  /** processes still alive after SIGKILL */
  survivors: number[];
}

interface ProcInfo {
  pid: number;
  ppid: number;
  pgrp: number;
  zombie: boolean;
}

function processTable(): ProcInfo[] {
  const table: ProcInfo[] = [];
  let names: string[];
  try {
    names = readdirSync('/proc');
  } catch {
    return table;
  }
  for (const name of names) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      // the command name is in parentheses and may itself contain spaces or parentheses
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      table.push({
        pid: Number(name),
        ppid: Number(fields[1]),
        pgrp: Number(fields[2]),
        zombie: fields[0] === 'Z' || fields[0] === 'X',
      });
    } catch {
      // it exited while the table was read
    }
  }
  return table;
}

/** The live processes of a command started in its own process group `root`. */
export function commandProcesses(root: number, known: ReadonlySet<number> = new Set()): number[] {
  const table = processTable();
  const members = new Set<number>();
  for (const p of table) if (p.pgrp === root || p.pid === root) members.add(p.pid);
  // descendants that moved to another group are still found through their parents
  let grew = true;
  while (grew) {
    grew = false;
    for (const p of table) {
      if (!members.has(p.pid) && members.has(p.ppid)) {
        members.add(p.pid);
        grew = true;
      }
    }
  }
  const alive = new Set(table.filter((p) => !p.zombie).map((p) => p.pid));
  return [...new Set([...members, ...known])].filter((pid) => alive.has(pid));
}

function signalAll(root: number, pids: readonly number[], name: NodeJS.Signals): void {
  try {
    process.kill(-root, name);
  } catch {
    // the group is gone already
  }
  for (const pid of pids) {
    try {
      process.kill(pid, name);
    } catch {
      // gone already
    }
  }
}

async function goneWithin(root: number, known: Set<number>, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (commandProcesses(root, known).length === 0) return true;
    if (Date.now() >= deadline) return false;
    await delay(20);
  }
}

/**
 * Stops a command and every process it started: SIGTERM, then SIGKILL after the grace period,
 * and resolves once they are all gone, or to the pids that are still alive after SIGKILL.
 */
export async function stopProcessTree(root: number, graceMs: number): Promise<number[]> {
  const known = new Set(commandProcesses(root));
  signalAll(root, [...known], 'SIGTERM');
  if (await goneWithin(root, known, graceMs)) return [];
  for (const pid of commandProcesses(root, known)) known.add(pid);
  signalAll(root, [...known], 'SIGKILL');
  if (await goneWithin(root, known, KILL_CONFIRM_MS)) return [];
  return commandProcesses(root, known);
}

interface RunningCommand {
  /** stops the command (if not already stopping) and resolves to the pids that would not die */
  stop(): Promise<number[]>;
  /** SIGKILL to the command and everything it started, at once (the process is exiting) */
  killNow(): void;
}

const running = new Set<RunningCommand>();

// Commands run in process groups of their own, so a terminal's Ctrl-C no longer reaches them by
// itself: a process that exits without the orderly stop (a second Ctrl-C, an uncaught error)
// takes them with it.
process.on('exit', () => killRunningCommandsNow());

/** SIGKILL to every command still running and what it started, at once (the process leaves). */
export function killRunningCommandsNow(): void {
  for (const command of running) command.killNow();
}

/**
 * Stops every command still running in this process and waits until their processes are gone;
 * resolves to the pids that survived SIGKILL. The engine calls it after an interrupt, before
 * the run's end is audited and its lock released.
 */
export async function stopRunningCommands(): Promise<number[]> {
  const survivors = await Promise.all([...running].map((command) => command.stop()));
  return survivors.flat();
}

// zx is loaded by the first command, not at import: a runbook's --help runs none.
let zx: Promise<typeof import('zx')> | undefined;
const loadZx = () => {
  zx ??= import('zx');
  return zx;
};

async function attemptOnce(argv: readonly string[], options: CommandOptions): Promise<Attempt> {
  const { $ } = await loadZx();
  if (options.signal?.aborted) {
    return {
      stdout: '',
      stderr: '',
      exitCode: null,
      timedOut: false,
      aborted: true,
      survivors: [],
    };
  }
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const env = options.env ? { ...process.env, ...options.env } : process.env;
  const shell = $({
    quiet: true,
    nothrow: true,
    env,
    // its own process group, so the command and everything it starts can be stopped together
    detached: true,
    ...(options.cwd ? { cwd: options.cwd } : {}),
    ...(options.input !== undefined ? { input: options.input } : {}),
  });
  // zx quotes each element of an interpolated array as its own argument.
  const child = shell`${argv}`;
  let timedOut = false;
  let aborted = false;
  let stopping: Promise<number[]> | undefined;
  let reportSurvivors: (survivors: number[]) => void = () => undefined;
  const unkillable = new Promise<number[]>((resolve) => {
    reportSurvivors = resolve;
  });
  const stop = (): Promise<number[]> => {
    stopping ??= (async () => {
      const pid = child.pid;
      if (pid === undefined) return [];
      const survivors = await stopProcessTree(pid, options.killGraceMs ?? DEFAULT_KILL_GRACE_MS);
      if (survivors.length > 0) reportSurvivors(survivors);
      return survivors;
    })();
    return stopping;
  };
  const entry: RunningCommand = {
    stop,
    killNow: () => {
      const pid = child.pid;
      if (pid !== undefined) signalAll(pid, commandProcesses(pid), 'SIGKILL');
    },
  };
  running.add(entry);
  const group = child.pid;
  if (group !== undefined) watchGroup(group);
  const timer = setTimeout(() => {
    timedOut = true;
    void stop();
  }, timeoutMs);
  const onAbort = () => {
    aborted = true;
    void stop();
  };
  options.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    const ended = await Promise.race([
      (async () => ({ out: await child, survivors: [] as number[] }))(),
      unkillable.then((survivors) => ({ out: undefined, survivors })),
    ]);
    // A command that exited by itself may have left children behind in its group.
    if (ended.out && stopping === undefined && child.pid !== undefined) {
      if (commandProcesses(child.pid).length > 0) await stop();
    }
    const survivors = ended.survivors.length > 0 ? ended.survivors : await (stopping ?? []);
    return {
      stdout: ended.out?.stdout ?? '',
      stderr: ended.out?.stderr ?? '',
      exitCode: ended.out?.exitCode ?? null,
      timedOut,
      aborted,
      survivors,
    };
  } finally {
    if (group !== undefined) forgetGroup(group);
    running.delete(entry);
    clearTimeout(timer);
    options.signal?.removeEventListener('abort', onAbort);
  }
}

function printer(options: CommandOptions): (line: string) => void {
  return options.print ?? ((line) => process.stderr.write(`${line}\n`));
}

/**
 * Runs argv[0] with the rest as its arguments. Resolves on exit code 0; otherwise throws a
 * CommandError whose message and fields are masked. Transient failures are tried again with
 * exponential backoff; a timeout or any other failure is not.
 */
export async function runCommand(
  argv: readonly string[],
  options: CommandOptions,
): Promise<CommandResult> {
  if (argv.length === 0) throw new Error('runCommand needs at least the program name');
  const command = formatCommand(argv);
  if (argv.some((arg) => maskSecrets(arg) !== arg)) {
    throw new SecretInArgvError(
      `refusing to run ${command}: a secret is in its arguments, where any process can read it; pass it through env or input instead`,
    );
  }
  const print = printer(options);
  const isMutation = options.kind === 'mutation';
  const audited = options.audit && (isMutation || options.auditReads);

  if (isMutation && options.dryRun) {
    print(`would run: ${command}`);
    await options.audit?.append({
      event: 'command',
      command,
      dry_run: true,
      outcome: 'not-run',
      detail: { kind: options.kind },
    });
    return {
      command,
      stdout: '',
      stderr: '',
      exitCode: 0,
      attempts: 0,
      durationMs: 0,
      skipped: true,
      dryRun: true,
    };
  }

  if (isMutation && options.echo !== false) print(`run: ${command}`);
  // Sending a mutation twice can do harm (a second `tofu apply`, a second delete): only a call
  // declared idempotent is tried again.
  const retries = options.retries ?? (isMutation && !options.idempotent ? 0 : DEFAULT_RETRIES);
  const backoff = options.backoff ?? DEFAULT_BACKOFF;
  const started = Date.now();
  let attempts = 0;
  for (;;) {
    attempts += 1;
    const result = await attemptOnce(argv, options);
    const durationMs = Date.now() - started;
    if (result.exitCode === 0 && !result.timedOut && !result.aborted) {
      if (audited) {
        await options.audit?.append({
          event: 'command',
          command,
          dry_run: false,
          outcome: 'ok',
          duration_ms: durationMs,
          detail: { kind: options.kind, attempts },
        });
      }
      return {
        command,
        stdout: result.stdout,
        stderr: result.stderr,
        exitCode: 0,
        attempts,
        durationMs,
        skipped: false,
        dryRun: false,
      };
    }
    const output = `${result.stderr}\n${result.stdout}`;
    const transient =
      !result.timedOut &&
      !result.aborted &&
      result.survivors.length === 0 &&
      isTransientFailure(output);
    if (transient && attempts <= retries && !options.signal?.aborted) {
      await delay(backoffDelay(attempts - 1, backoff));
      continue;
    }
    const why = result.timedOut
      ? `timed out after ${options.timeoutMs ?? DEFAULT_TIMEOUT_MS} ms`
      : result.aborted
        ? 'stopped because the run was interrupted'
        : `exit code ${result.exitCode}`;
    const tries = attempts > 1 ? ` after ${attempts} attempts` : '';
    const unkillable =
      result.survivors.length > 0
        ? `; process${result.survivors.length > 1 ? 'es' : ''} ${result.survivors.join(', ')} would not die even after SIGKILL`
        : '';
    // Masked before it is cut: a cut through a secret would leave a tail the mask cannot match.
    const detail = tail(maskSecrets(result.stderr)) || tail(maskSecrets(result.stdout));
    const message = maskSecrets(
      `command failed (${why}${unkillable})${tries}: ${command}${detail ? `\n${detail}` : ''}`,
    );
    if (audited) {
      await options.audit?.append({
        event: 'command',
        command,
        dry_run: false,
        outcome: result.timedOut ? 'timeout' : 'failed',
        duration_ms: durationMs,
        detail: {
          kind: options.kind,
          attempts,
          exit_code: result.exitCode,
          error: message,
          ...(result.survivors.length > 0 ? { survivors: result.survivors } : {}),
        },
      });
    }
    throw new CommandError(
      message,
      command,
      result.exitCode,
      maskSecrets(result.stdout),
      maskSecrets(result.stderr),
      attempts,
      result.timedOut,
      transient,
      result.survivors,
    );
  }
}
