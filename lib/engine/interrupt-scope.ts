// A run's interrupt: the work raced against it, and what was still in flight when it came, so
// that a step can write its last audit lines before the run-end.

export class Interrupted extends Error {
  override readonly name = 'Interrupted';
}

export class InterruptScope {
  private readonly controller = new AbortController();
  private readonly inFlight = new Set<Promise<unknown>>();

  /** `external` (the caller's own signal) interrupts the run too. */
  constructor(external?: AbortSignal) {
    if (!external) return;
    if (external.aborted) this.controller.abort();
    else external.addEventListener('abort', () => this.controller.abort(), { once: true });
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  get interrupted(): boolean {
    return this.controller.signal.aborted;
  }

  /** Rejects with Interrupted as soon as the run is interrupted, whatever `work` is doing. */
  until<T>(work: T | Promise<T>): Promise<T> {
    const signal = this.signal;
    const settled: Promise<unknown> = Promise.resolve(work).then(
      () => this.inFlight.delete(settled),
      () => this.inFlight.delete(settled),
    );
    this.inFlight.add(settled);
    if (signal.aborted) return Promise.reject(new Interrupted('interrupted'));
    return new Promise<T>((resolvePromise, reject) => {
      const onAbort = () => reject(new Interrupted('interrupted'));
      signal.addEventListener('abort', onAbort, { once: true });
      Promise.resolve(work).then(
        (value) => {
          signal.removeEventListener('abort', onAbort);
          resolvePromise(value);
        },
        (err: unknown) => {
          signal.removeEventListener('abort', onAbort);
          reject(err);
        },
      );
    });
  }

  /** Waits until the work in flight has settled, or `ms` have passed. */
  async windDown(ms: number): Promise<void> {
    await Promise.race([
      Promise.all(this.inFlight),
      new Promise((done) => setTimeout(done, ms).unref()),
    ]);
  }
}

/** What `read` gives within `ms`, else `fallback`: a read for the last screen never holds it up. */
export function readWithin<T, F>(
  read: () => T | Promise<T>,
  ms: number,
  fallback: F,
): Promise<T | F> {
  return Promise.race([
    Promise.resolve().then(read),
    new Promise<F>((done) => setTimeout(() => done(fallback), ms).unref()),
  ]);
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
