// The one way a step waits for the cluster (pods gone, a rollout Ready, a LoadBalancer IP): a
// check asked until it gives a value, with the elapsed time on show, WAIT_TIMEOUT by default,
// stopped by an interrupt, and audited with how long it took. In a dry run, a wait for what an
// unsent mutation would have caused cannot succeed, so it says what it would wait for instead.
import { setTimeout as delay } from 'node:timers/promises';
import { KubeError } from '../cluster/kube-api.ts';
import { formatDuration } from '../duration.ts';
import { maskSecrets } from '../mask.ts';
import { type CommandAudit, CommandError } from './shell.ts';

export const DEFAULT_WAIT_INTERVAL_MS = 2_000;
/** without a terminal, how often a wait still in progress prints a line */
const REPORT_EVERY_MS = 30_000;
/** a check that blocks this long (a watch) is announced as a wait */
const ANNOUNCE_AFTER_MS = 2_000;
/** in a dry run that did not send a mutation, how long a blocking check may look */
const DRY_RUN_PEEK_MS = 3_000;

export interface WaitOptions<T> {
  /** WAIT_TIMEOUT by default */
  timeoutMs?: number;
  /** the pause between two checks; 2 s by default */
  intervalMs?: number;
  /** what to show while waiting, from the last check's value (e.g. "1/2 pods Ready") */
  progress?: (last: T | undefined | false) => string | undefined;
}

/**
 * Gives a truthy value when the wait is over. It may also block until then (a watch), as long
 * as it stops when `signal` aborts: at the timeout, on an interrupt, or when a dry run has seen
 * enough.
 */
export type WaitCheck<T> = (
  signal: AbortSignal,
) => T | undefined | false | Promise<T | undefined | false>;

export interface WaitEnvironment {
  defaultTimeoutMs: number;
  dryRun: boolean;
  /** true when this run has a mutation that a dry run did not send */
  unsentMutations: () => boolean;
  signal: AbortSignal;
  audit: CommandAudit;
  print: (line: string) => void;
  /** shows the wait on a terminal (a spinner with the elapsed time) */
  showWaiting?: (what: string, started: number, detail: string | undefined) => void;
  /** the wait is over, whichever way: the step's own progress again */
  endWaiting?: () => void;
  now?: () => number;
}

/**
 * A check that failed the way a busy or restarting API server fails (unreachable, 429, 5xx, a
 * transient kubectl error): the wait goes on and shows it, as a poll of client-go's wait package
 * goes on when its condition says "not yet"; the timeout still bounds it.
 */
export function isPassingFailure(err: unknown): boolean {
  if (err instanceof KubeError) return err.status === 0 || err.status === 429 || err.status >= 500;
  if (err instanceof CommandError) return err.transient && !err.timedOut;
  return false;
}

export class WaitTimeout extends Error {
  override readonly name = 'WaitTimeout';
}

export class WaitInterrupted extends Error {
  override readonly name = 'WaitInterrupted';
}

/** Resolves to the check's first truthy value, or undefined for a dry-run wait not waited. */
export async function waitFor<T>(
  what: string,
  check: WaitCheck<T>,
  options: WaitOptions<T>,
  env: WaitEnvironment,
): Promise<T | undefined> {
  const now = env.now ?? Date.now;
  const started = now();
  const timeoutMs = options.timeoutMs ?? env.defaultTimeoutMs;
  const intervalMs = options.intervalMs ?? DEFAULT_WAIT_INTERVAL_MS;
  const deadline = started + timeoutMs;
  // Aborted when the wait ends (done, timed out or interrupted): a check that holds a watch
  // open until its condition holds (ctx.kube.watchUntil) closes it.
  const ending = new AbortController();
  const onInterrupt = () => ending.abort();
  env.signal.addEventListener('abort', onInterrupt, { once: true });
  const deadlineTimer = setTimeout(() => ending.abort(), timeoutMs);
  // A dry run that has not sent a mutation cannot expect its effect: one look, then move on.
  const peekOnly = env.dryRun && env.unsentMutations();
  const peek = new AbortController();
  const peekTimer = peekOnly ? setTimeout(() => peek.abort(), DRY_RUN_PEEK_MS) : undefined;
  const checkSignal = peekOnly ? AbortSignal.any([ending.signal, peek.signal]) : ending.signal;
  // a check that blocks (a watch) still tells the operator what is awaited
  const announce = setTimeout(() => announceOnce(), ANNOUNCE_AFTER_MS);
  let announced = false;
  const announceOnce = () => {
    if (announced || peekOnly) return;
    announced = true;
    env.print(`waiting for ${what} (up to ${formatDuration(timeoutMs)})`);
  };
  const record = (outcome: string, detail: Record<string, unknown> = {}) =>
    env.audit.append({
      event: 'wait',
      command: null,
      outcome,
      duration_ms: now() - started,
      detail: { what, timeout_ms: timeoutMs, ...detail },
    });
  let last: T | undefined | false;
  let lastReport = started;
  let lastFailure: string | undefined;
  let failures = 0;
  const progress = (value: T | undefined | false): string | undefined => {
    const shown = options.progress?.(value);
    if (!lastFailure) return shown;
    return `${shown ? `${shown}; ` : ''}the last check failed: ${lastFailure}`;
  };
  const timedOut = async (): Promise<never> => {
    const shown = progress(last);
    const message = maskSecrets(
      `timed out after ${formatDuration(timeoutMs)} waiting for ${what}${shown ? ` (last seen: ${shown})` : ''}. Check the objects involved, then resume; raise WAIT_TIMEOUT if it only needs longer`,
    );
    await record('timeout', { ...(shown ? { last: shown } : {}) });
    throw new WaitTimeout(message);
  };
  try {
    for (;;) {
      if (env.signal.aborted) throw new WaitInterrupted(`interrupted while waiting for ${what}`);
      env.showWaiting?.(what, started, progress(last));
      try {
        last = await check(checkSignal);
        lastFailure = undefined;
      } catch (err) {
        if (env.signal.aborted) throw new WaitInterrupted(`interrupted while waiting for ${what}`);
        if (peekOnly && peek.signal.aborted) last = undefined;
        else if (ending.signal.aborted || now() >= deadline) return await timedOut();
        else if (isPassingFailure(err)) {
          last = undefined;
          lastFailure = maskSecrets(String((err as Error).message).split('\n')[0] ?? '');
          failures++;
        } else throw err;
      }
      if (last) {
        await record('ok', failures ? { failed_checks: failures } : {});
        return last;
      }
      if (peekOnly) {
        env.print(`would wait for ${what}`);
        await record('not-run', { reason: 'dry run: it waits for a mutation that was not sent' });
        return undefined;
      }
      const shown = progress(last);
      const elapsed = now() - started;
      if (!announced) announceOnce();
      else if (now() - lastReport >= REPORT_EVERY_MS) {
        lastReport = now();
        env.print(
          `still waiting for ${what}: ${formatDuration(elapsed)}${shown ? `, ${shown}` : ''}`,
        );
      }
      if (now() >= deadline) return await timedOut();
      try {
        await delay(Math.min(intervalMs, Math.max(0, deadline - now())), undefined, {
          signal: env.signal,
        });
      } catch {
        // the interrupt: the loop's first line says so
      }
    }
  } catch (err) {
    if (err instanceof WaitTimeout) throw err;
    if (env.signal.aborted) {
      await record('interrupted').catch(() => undefined);
      throw new WaitInterrupted(`interrupted while waiting for ${what}`);
    }
    await record('failed', { error: maskSecrets(String((err as Error)?.message ?? err)) }).catch(
      () => undefined,
    );
    throw err;
  } finally {
    clearTimeout(deadlineTimer);
    clearTimeout(peekTimer);
    clearTimeout(announce);
    ending.abort();
    env.signal.removeEventListener('abort', onInterrupt);
    env.endWaiting?.();
  }
}
