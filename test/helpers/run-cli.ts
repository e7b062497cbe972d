// Runs a runbook file as a real child process, so exit codes, signals, stdout and stderr are the
// ones an operator would see.
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const LOADER = join(REPO, 'lib/ts-loader/register.mjs');

/**
 * The environment of a runbook child process, with coverage collection switched off: V8
 * coverage of code compiled in a child process maps back as if every line of lib/ had run, and
 * merged with the test processes' own coverage it garbles the line mapping, either way making
 * the coverage of lib/ meaningless. The engine's coverage comes from its in-process tests
 * (test/engine/run-session.test.ts and its neighbours); the child processes prove what only a
 * real process can show.
 */
export function withoutCoverage(extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, ...extra };
  // tap's process tracker wraps spawn and starts coverage in every child unless told not to.
  env._TAPJS_PROCESSINFO_COVERAGE_ = '0';
  delete env.NODE_V8_COVERAGE;
  return env;
}

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface RunningCli {
  child: ChildProcess;
  /** resolves once stderr has matched the pattern (rejects if the process ends first) */
  waitForStderr(pattern: RegExp): Promise<void>;
  result: Promise<CliResult>;
}

export interface CliOptions {
  env?: Record<string, string | undefined>;
  cwd?: string;
  /** text for stdin; stdin is closed after it (or at once when absent) */
  input?: string;
}

export function startCli(
  script: string,
  args: readonly string[],
  options: CliOptions = {},
): RunningCli {
  const child = spawn(process.execPath, ['--import', LOADER, script, ...args], {
    cwd: options.cwd ?? REPO,
    env: withoutCoverage(options.env),
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  const waiters: Array<{ pattern: RegExp; resolve: () => void }> = [];
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk;
  });
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
    for (const waiter of [...waiters]) {
      if (waiter.pattern.test(stderr)) {
        waiters.splice(waiters.indexOf(waiter), 1);
        waiter.resolve();
      }
    }
  });
  child.stdin?.end(options.input ?? '');
  const result = once(child, 'close').then(([code, signal]) => ({
    code: code as number | null,
    signal: signal as NodeJS.Signals | null,
    stdout,
    stderr,
  }));
  return {
    child,
    result,
    waitForStderr(pattern) {
      if (pattern.test(stderr)) return Promise.resolve();
      return new Promise<void>((resolvePromise, reject) => {
        waiters.push({ pattern, resolve: resolvePromise });
        result.then(() =>
          reject(new Error(`process ended before stderr matched ${pattern}:\n${stderr}`)),
        );
      });
    },
  };
}

export function runCli(script: string, args: readonly string[], options: CliOptions = {}) {
  return startCli(script, args, options).result;
}
