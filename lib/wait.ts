// The one way a step waits for the cluster (pods gone, a rollout Ready, a LoadBalancer IP): a
// check asked until it gives a value, with the elapsed time on show, WAIT_TIMEOUT by default,
// stopped by an interrupt, and audited with how long it took. In a dry run, a wait for what an
// unsent mutation would have caused cannot succeed, so it says what it would wait for instead.
import { setTimeout as delay } from 'node:timers/promises';
import { formatDuration } from './duration.ts';
import { maskSecrets } from './mask.ts';
import type { CommandAudit } from './shell.ts';

export const DEFAULT_WAIT_INTERVAL_MS = 2_000;
/** without a terminal, how often a wait still in progress prints a line */
const REPORT_EVERY_MS = 30_000;

export interface WaitOptions<T> {
  /** WAIT_TIMEOUT by default */
  timeoutMs?: number;
  /** the pause between two checks; 2 s by default */
  intervalMs?: number;
  /** what to show while waiting, from the last check's value (e.g. "1/2 pods Ready") */
  progress?: (last: T | undefined | false) => string | undefined;
}

/** Gives a truthy value when the wait is over; `signal` aborts when the wait ends either way. */
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
  now?: () => number;
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
  // Aborted when the wait ends: a check that holds a watch open closes it.
  const ending = new AbortController();
  const onInterrupt = () => ending.abort();
  env.signal.addEventListener('abort', onInterrupt, { once: true });
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
  try {
    for (let attempt = 0; ; attempt++) {
      if (env.signal.aborted) throw new WaitInterrupted(`interrupted while waiting for ${what}`);
      last = await check(ending.signal);
      if (last) {
        await record('ok');
        return last;
      }
      if (attempt === 0 && env.dryRun && env.unsentMutations()) {
        env.print(`would wait for ${what}`);
        await record('not-run', { reason: 'dry run: it waits for a mutation that was not sent' });
        return undefined;
      }
      const shown = options.progress?.(last);
      const elapsed = now() - started;
      if (attempt === 0) env.print(`waiting for ${what} (up to ${formatDuration(timeoutMs)})`);
      else if (now() - lastReport >= REPORT_EVERY_MS) {
        lastReport = now();
        env.print(
          `still waiting for ${what}: ${formatDuration(elapsed)}${shown ? `, ${shown}` : ''}`,
        );
      }
      env.showWaiting?.(what, started, shown);
      if (now() >= deadline) {
        const message = maskSecrets(
          `timed out after ${formatDuration(timeoutMs)} waiting for ${what}${shown ? ` (last seen: ${shown})` : ''}. Check the objects involved, then resume; raise WAIT_TIMEOUT if it only needs longer`,
        );
        await record('timeout', { ...(shown ? { last: shown } : {}) });
        throw new WaitTimeout(message);
      }
      try {
        await delay(Math.min(intervalMs, Math.max(0, deadline - now())), undefined, {
          signal: env.signal,
        });
      } catch {
        // the interrupt: the loop's first line says so
      }
    }
  } catch (err) {
    if (env.signal.aborted && !(err instanceof WaitTimeout)) {
      await record('interrupted').catch(() => undefined);
      throw new WaitInterrupted(`interrupted while waiting for ${what}`);
    }
    if (!(err instanceof WaitTimeout))
      await record('failed', { error: maskSecrets(String((err as Error)?.message ?? err)) }).catch(
        () => undefined,
      );
    throw err;
  } finally {
    ending.abort();
    env.signal.removeEventListener('abort', onInterrupt);
  }
}
