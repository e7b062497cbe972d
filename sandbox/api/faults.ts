// API faults the operator injects with `npm run sandbox -- fault …`:
// - `api-error <count> <code>`: the next N mutating requests fail with that code, as a Status;
// - `read-error <count> <code>`: the next N reads (GET, not watches) fail the same way;
// - `throttle <count> <seconds>`: the next N requests of any kind answer 429 TooManyRequests with
//   `Retry-After: <seconds>`, as kube-apiserver's max-in-flight and priority-and-fairness filters
//   do (k8s.io/apiserver/pkg/server/filters/maxinflight.go, tooManyRequests; the Status carries
//   details.retryAfterSeconds);
// - `drop-watches` (in server.ts): every open watch ends now, as when the API server restarts;
//   a client must list and watch again.
import { ApiError, reasonForCode } from './status.ts';

interface Armed {
  remaining: number;
  code: number;
}

export class ApiFaults {
  private readonly mutations: Armed = { remaining: 0, code: 500 };
  private readonly reads: Armed = { remaining: 0, code: 500 };
  private throttled = 0;
  private retryAfterSeconds = 1;

  failNext(count: number, code: number): void {
    this.mutations.remaining = count;
    this.mutations.code = code;
  }

  failReads(count: number, code: number): void {
    this.reads.remaining = count;
    this.reads.code = code;
  }

  throttle(count: number, retryAfterSeconds: number): void {
    this.throttled = count;
    this.retryAfterSeconds = retryAfterSeconds;
  }

  heal(): void {
    this.mutations.remaining = 0;
    this.reads.remaining = 0;
    this.throttled = 0;
  }

  get pending(): number {
    return this.mutations.remaining;
  }

  /** The error the next mutating request must fail with, if a fault is armed. */
  take(): ApiError | undefined {
    return this.takeFrom(this.mutations, 'request');
  }

  /** The error the next read (GET, not a watch) must fail with, if a fault is armed. */
  takeRead(): ApiError | undefined {
    return this.takeFrom(this.reads, 'read');
  }

  /** 429 and the seconds to wait, for the next request of any kind, if throttling is armed. */
  takeThrottle(): { error: ApiError; retryAfterSeconds: number } | undefined {
    if (this.throttled <= 0) return undefined;
    this.throttled--;
    const seconds = this.retryAfterSeconds;
    return {
      retryAfterSeconds: seconds,
      error: new ApiError(
        429,
        'TooManyRequests',
        `sandbox fault: too many requests, please try again later (${this.throttled} more to throttle)`,
        { retryAfterSeconds: seconds },
      ),
    };
  }

  private takeFrom(armed: Armed, what: string): ApiError | undefined {
    if (armed.remaining <= 0) return undefined;
    armed.remaining--;
    return new ApiError(
      armed.code,
      reasonForCode(armed.code),
      `sandbox fault: this ${what} was failed on purpose with ${armed.code} (${armed.remaining} more to fail)`,
    );
  }
}
