// API faults the operator injects with `npm run sandbox -- fault api-error <count> <code>`: the
// next N mutating requests fail with that code, as a Status.
import { ApiError, reasonForCode } from './status.ts';

export class ApiFaults {
  private remaining = 0;
  private code = 500;

  failNext(count: number, code: number): void {
    this.remaining = count;
    this.code = code;
  }

  heal(): void {
    this.remaining = 0;
  }

  get pending(): number {
    return this.remaining;
  }

  /** The error the next mutating request must fail with, if a fault is armed. */
  take(): ApiError | undefined {
    if (this.remaining <= 0) return undefined;
    this.remaining--;
    return new ApiError(
      this.code,
      reasonForCode(this.code),
      `sandbox fault: this request was failed on purpose with ${this.code} (${this.remaining} more to fail)`,
    );
  }
}
