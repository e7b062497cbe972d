// beersystem as its users see it during the window: its health endpoint asked every 250 ms by a
// prober of its own, independent of the steps. What the runbook measures (T035 → Ready) is what
// the cluster saw; this is when beersystem stopped answering and when it answered again, and on
// which Redis. Its transitions are printed as they happen and go into the report's timeline.
import { formatDuration } from '../duration.ts';

export interface HealthAnswer {
  ok: boolean;
  /** the Redis beersystem says it uses, when it answered */
  redis: string | undefined;
  /** why it did not answer healthy: `HTTP 503: no endpoints available`, a connection error */
  error: string | undefined;
}

export interface HealthTransition {
  at: string;
  ok: boolean;
  redis?: string;
  error?: string;
}

/** What the report keeps: counts and the moments beersystem changed state. */
export interface HealthRecord {
  intervalMs: number;
  startedAt: string;
  stoppedAt: string;
  ok: number;
  failed: number;
  transitions: HealthTransition[];
  /** from the first failed answer to the next healthy one: what users went without */
  outageMs: number | undefined;
}

export const HEALTH_PROBE_INTERVAL_MS = 250;
// A window of a few minutes at 4 answers a second changes state a handful of times; a flapping
// app is cut here, its counts kept whole.
const MAX_TRANSITIONS = 200;

export class HealthProber {
  private okCount = 0;
  private failedCount = 0;
  private lastError: string | undefined;
  private current: boolean | undefined;
  private readonly transitions: HealthTransition[] = [];
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private inFlight: Promise<void> | undefined;
  private startedAt = '';
  private stoppedAt = '';

  constructor(
    private readonly probe: () => Promise<HealthAnswer>,
    private readonly options: {
      intervalMs?: number;
      /** each change of state, as a line for the operator */
      onChange?: (line: string) => void;
      now?: () => number;
    } = {},
  ) {}

  private now(): number {
    return this.options.now?.() ?? Date.now();
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.startedAt = new Date(this.now()).toISOString();
    const tick = async () => {
      if (!this.running) return;
      this.inFlight = this.once();
      await this.inFlight;
      if (this.running) {
        this.timer = setTimeout(tick, this.options.intervalMs ?? HEALTH_PROBE_INTERVAL_MS);
        this.timer.unref();
      }
    };
    void tick();
  }

  /** Asks once and records the answer; a throwing probe counts as a failed answer. */
  async once(): Promise<void> {
    const answer = await this.probe().catch(
      (err: unknown): HealthAnswer => ({
        ok: false,
        redis: undefined,
        error: String((err as Error)?.message ?? err).split('\n')[0],
      }),
    );
    if (answer.ok) this.okCount++;
    else {
      this.failedCount++;
      this.lastError = answer.error;
    }
    if (answer.ok === this.current) return;
    const at = new Date(this.now()).toISOString();
    const first = this.current === undefined;
    this.current = answer.ok;
    if (this.transitions.length < MAX_TRANSITIONS) {
      this.transitions.push({
        at,
        ok: answer.ok,
        ...(answer.redis ? { redis: answer.redis } : {}),
        ...(answer.error ? { error: answer.error } : {}),
      });
    }
    if (first && answer.ok) return;
    this.options.onChange?.(
      answer.ok
        ? `beersystem answers again at ${clock(at)}, on ${answer.redis ?? 'an unknown Redis'}${this.outageMs() !== undefined ? `: its users went ${formatDuration(this.outageMs() as number)} without it` : ''}`
        : `beersystem stopped answering at ${clock(at)} (${answer.error ?? 'not healthy'})`,
    );
  }

  /**
   * Stops asking. When the last answer was a failure, it asks once more first: a stop right after
   * the runbook saw beersystem healthy must not record an outage that never ended.
   */
  async stop(): Promise<HealthRecord> {
    this.running = false;
    clearTimeout(this.timer);
    await this.inFlight;
    if (this.current === false) await this.once();
    this.stoppedAt = new Date(this.now()).toISOString();
    return this.record();
  }

  /** `12 ok, 48 failed, last: HTTP 503` — for the live line. */
  summary(): string {
    const state = this.current === undefined ? 'not asked yet' : this.current ? 'up' : 'DOWN';
    const last = this.lastError && this.current === false ? `, last: ${this.lastError}` : '';
    return `beersystem ${state} (${this.okCount} ok, ${this.failedCount} failed${last})`;
  }

  outageMs(): number | undefined {
    const downAt = this.transitions.findIndex((t) => !t.ok);
    const down = this.transitions[downAt];
    if (!down) return undefined;
    const up = this.transitions.slice(downAt + 1).find((t) => t.ok);
    return up ? Date.parse(up.at) - Date.parse(down.at) : undefined;
  }

  record(): HealthRecord {
    return {
      intervalMs: this.options.intervalMs ?? HEALTH_PROBE_INTERVAL_MS,
      startedAt: this.startedAt,
      stoppedAt: this.stoppedAt || new Date(this.now()).toISOString(),
      ok: this.okCount,
      failed: this.failedCount,
      transitions: [...this.transitions],
      outageMs: this.outageMs(),
    };
  }
}

function clock(iso: string): string {
  return `${iso.slice(11, 19)} UTC`;
}
