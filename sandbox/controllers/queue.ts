// Controllers react to store changes through a de-duplicating queue drained on the next turn of
// the event loop, so a burst of events costs one reconcile and no reconcile runs inside another.

export class WorkQueue {
  private readonly pending = new Set<string>();
  private scheduled = false;
  private stopped = false;

  constructor(
    private readonly name: string,
    private readonly reconcile: (key: string) => void,
  ) {}

  add(key: string): void {
    if (this.stopped) return;
    this.pending.add(key);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.drain());
    }
  }

  stop(): void {
    this.stopped = true;
    this.pending.clear();
  }

  private drain(): void {
    this.scheduled = false;
    const keys = [...this.pending];
    this.pending.clear();
    for (const key of keys) {
      if (this.stopped) return;
      try {
        this.reconcile(key);
      } catch (err) {
        // A namespace being deleted refuses new objects: expected while it empties.
        if ((err as { reason?: string }).reason === 'Forbidden') continue;
        console.error(
          `sandbox: ${this.name} controller failed on ${key}: ${(err as Error).message}`,
        );
      }
    }
  }
}

/** `namespace/name` of an object, the key every controller queues. */
export const objectKey = (ns: string | undefined, name: string) => `${ns ?? ''}/${name}`;

export function splitKey(key: string): [string, string] {
  const slash = key.indexOf('/');
  return [key.slice(0, slash), key.slice(slash + 1)];
}
