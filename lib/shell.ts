// The one way runbooks run a command: an argv array (never a glued string), classified as a read
// or a mutation. Mutations are what a dry run must not send, so they are printed as the exact
// command instead; everything printed, audited or thrown passes through the secret mask first.
import { setTimeout as delay } from 'node:timers/promises';
import { $ } from 'zx';
import type { AuditEvent } from './audit.ts';
import { maskSecrets, registerSecret } from './mask.ts';

// Callers who run commands should not have to know that masking lives in another module.
export { registerSecret };

/** `read` runs in a dry run too; `mutation` is printed as `would run: …` instead. */
export type CommandKind = 'read' | 'mutation';

/** The part of the audit log the runner writes to (lib/audit.ts AuditLog fits it). */
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
  /** how many times a transient failure is tried again (so at most retries + 1 attempts) */
  retries?: number;
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
}

export const DEFAULT_TIMEOUT_MS = 60_000;
export const DEFAULT_KILL_GRACE_MS = 10_000;
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
}

async function attemptOnce(argv: readonly string[], options: CommandOptions): Promise<Attempt> {
  if (options.signal?.aborted) {
    return { stdout: '', stderr: '', exitCode: null, timedOut: false, aborted: true };
  }
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const env = options.env ? { ...process.env, ...options.env } : process.env;
  const shell = $({
    quiet: true,
    nothrow: true,
    env,
    ...(options.cwd ? { cwd: options.cwd } : {}),
    ...(options.input !== undefined ? { input: options.input } : {}),
  });
  // zx quotes each element of an interpolated array as its own argument.
  const child = shell`${argv}`;
  let timedOut = false;
  let aborted = false;
  let settled = false;
  let forceKill: NodeJS.Timeout | undefined;
  const signal = (name: 'SIGTERM' | 'SIGKILL') => {
    if (settled) return;
    try {
      // zx signals the whole process tree, so a command's own children stop too.
      child.kill(name).catch(() => undefined);
    } catch {
      // it exited between the check and the kill
    }
  };
  const kill = () => {
    if (forceKill) return;
    signal('SIGTERM');
    // A command that ignores SIGTERM, or takes too long over it, would make the timeout a hang.
    forceKill = setTimeout(() => signal('SIGKILL'), options.killGraceMs ?? DEFAULT_KILL_GRACE_MS);
  };
  const timer = setTimeout(() => {
    timedOut = true;
    kill();
  }, timeoutMs);
  const onAbort = () => {
    aborted = true;
    kill();
  };
  options.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    const out = await child;
    return { stdout: out.stdout, stderr: out.stderr, exitCode: out.exitCode, timedOut, aborted };
  } finally {
    settled = true;
    clearTimeout(timer);
    clearTimeout(forceKill);
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
    };
  }

  if (isMutation && options.echo !== false) print(`run: ${command}`);
  const retries = options.retries ?? DEFAULT_RETRIES;
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
      };
    }
    const output = `${result.stderr}\n${result.stdout}`;
    const transient = !result.timedOut && !result.aborted && isTransientFailure(output);
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
    // Masked before it is cut: a cut through a secret would leave a tail the mask cannot match.
    const detail = tail(maskSecrets(result.stderr)) || tail(maskSecrets(result.stdout));
    const message = maskSecrets(
      `command failed (${why})${tries}: ${command}${detail ? `\n${detail}` : ''}`,
    );
    if (audited) {
      await options.audit?.append({
        event: 'command',
        command,
        dry_run: false,
        outcome: result.timedOut ? 'timeout' : 'failed',
        duration_ms: durationMs,
        detail: { kind: options.kind, attempts, exit_code: result.exitCode, error: message },
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
    );
  }
}
