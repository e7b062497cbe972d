// A held lock's renewal: every `everyMs`, one renewal at a time (a slow one is never overlapped),
// stopped and awaited before the lock is released or handed over, so no renewal in flight
// writes the lock back after it was given up.
export class RenewLoop {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;

  start(everyMs: number, renew: () => Promise<void>): void {
    this.stopTimer();
    this.timer = setInterval(() => {
      this.running ??= renew()
        .catch(() => undefined)
        .finally(() => {
          this.running = undefined;
        });
    }, everyMs);
    this.timer.unref();
  }

  /** No further renewal; resolves once the one in flight, if any, has ended. */
  async stop(): Promise<void> {
    this.stopTimer();
    await this.running;
  }

  /** No further renewal, without waiting: for a renewal that gives the lock up itself. */
  stopTimer(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}
