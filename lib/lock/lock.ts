// One run at a time. The engine sees only RunLock, so the coordination.k8s.io Lease
// (docs/shared-state.md) can replace the local lock file without the engine changing.
import { mkdir } from 'node:fs/promises';
import { hostname } from 'node:os';
import { dirname } from 'node:path';
import { formatDuration } from '../duration.ts';
import { parseJsonObject } from '../json-object.ts';
import {
  createLockFile,
  readLockFile,
  removeOwnLockFile,
  replaceLockFile,
  takeOverLockFile,
} from './lock-file.ts';
import { RenewLoop } from './renew-loop.ts';

const MAX_PASSES = 5;

export interface LockOwner {
  runId: string;
  runbook: string;
  operator: string;
  host: string;
  pid: number;
}

export interface LockHolder extends LockOwner {
  acquiredAt: string;
  expiresAt: string;
}

export type LockResult =
  | { acquired: true; holder: LockHolder; takenOverFrom?: LockHolder; takeoverReason?: string }
  | { acquired: false; holder: LockHolder };

export interface RunLock {
  /** where the lock lives, for messages ("locked by … (logs/run.lock)") */
  readonly location: string;
  acquire(owner: LockOwner): Promise<LockResult>;
  release(): Promise<void>;
  /**
   * Instead of releasing: the run ends, but processes it started would not die, so the lock
   * stays held in their name until they are gone (or it expires).
   */
  keepFor?(pids: readonly number[]): Promise<void>;
  /** a lock that can be lost while held (a Lease whose renewal failed): why, once it is */
  lostReason?(): string | undefined;
  /** the live holder, without taking the lock: a dry run says who holds it */
  peek?(): Promise<LockHolder | undefined>;
}

/** Thrown instead of sending a mutation once the run's lock is lost: exit 4, nothing sent. */
export class LockLostError extends Error {
  override readonly name = 'LockLostError';
}

export interface FileRunLockOptions {
  ttlMs: number;
  /** how often a held lock's expiry is pushed forward; a third of the TTL by default */
  renewEveryMs?: number;
  now?: () => number;
}

/** Whether a process of this host exists; the test both lock files use for a dead holder. */
export function processIsAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists but belongs to someone else.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * A lock file created with O_EXCL. It expires after ttlMs unless renewed (the holder renews it
 * while it runs), and a lock left by a process on this host that no longer exists is stale at
 * once, so a killed run does not block the next one for a whole TTL.
 */
export class FileRunLock implements RunLock {
  private held: LockHolder | undefined;
  private readonly renewal = new RenewLoop();
  private readonly now: () => number;

  constructor(
    readonly location: string,
    private readonly options: FileRunLockOptions,
  ) {
    this.now = options.now ?? Date.now;
  }

  async acquire(owner: LockOwner): Promise<LockResult> {
    await mkdir(dirname(this.location), { recursive: true });
    const holder = this.holderFor(owner);
    // Each pass either decides or saw the file change under it (another run releasing or taking
    // over at the same moment); a few passes settle any such race.
    for (let pass = 0; pass < MAX_PASSES; pass++) {
      if (await this.createExclusive(holder)) return this.granted(holder);
      const current = await this.read();
      if (!current) continue;
      const staleBecause = this.staleReason(current);
      if (!staleBecause) return { acquired: false, holder: current.holder };
      if (await takeOverLockFile(this.location, current.raw, JSON.stringify(holder))) {
        return {
          ...this.granted(holder),
          takenOverFrom: current.holder,
          takeoverReason: staleBecause,
        };
      }
    }
    const winner = await this.read();
    if (winner) return { acquired: false, holder: winner.holder };
    throw new Error(`cannot create lock file ${this.location}`);
  }

  async release(): Promise<void> {
    await this.renewal.stop();
    const held = this.held;
    this.held = undefined;
    if (!held) return;
    // Never remove a lock someone else took over after ours expired.
    await removeOwnLockFile(this.location, (text) => parseHolder(text)?.runId === held.runId).catch(
      () => undefined,
    );
  }

  async keepFor(pids: readonly number[]): Promise<void> {
    await this.renewal.stop();
    const held = this.held;
    this.held = undefined;
    const pid = pids[0];
    if (!held || pid === undefined) return;
    const current = await this.read();
    if (current?.holder.runId !== held.runId) return;
    // The lock names a process that is still alive, so it is not stale when this one exits.
    await this.replace({ ...held, pid, survivors: [...pids] });
  }

  private async replace(holder: LockHolder & { survivors?: number[] }): Promise<void> {
    await replaceLockFile(this.location, JSON.stringify(holder)).catch(() => undefined);
  }

  private holderFor(owner: LockOwner): LockHolder {
    const now = this.now();
    return {
      ...owner,
      acquiredAt: new Date(now).toISOString(),
      expiresAt: new Date(now + this.options.ttlMs).toISOString(),
    };
  }

  private granted(holder: LockHolder): { acquired: true; holder: LockHolder } {
    this.held = holder;
    const every = this.options.renewEveryMs ?? Math.max(1_000, Math.floor(this.options.ttlMs / 3));
    this.renewal.start(every, () => this.renew());
    return { acquired: true, holder };
  }

  private async renew(): Promise<void> {
    const held = this.held;
    if (!held) return;
    const current = await this.read();
    if (current?.holder.runId !== held.runId) return;
    const renewed = {
      ...held,
      expiresAt: new Date(this.now() + this.options.ttlMs).toISOString(),
    };
    this.held = renewed;
    await this.replace(renewed);
  }

  private staleReason(current: ReadLock): string | undefined {
    if (current.unreadable) {
      // Perhaps being written this very moment, or by a holder that never renewed it: judged by
      // its age like any lock.
      return current.ageMs > this.options.ttlMs
        ? `${this.location} is unreadable (${current.unreadable}) and was last written more than ${formatDuration(this.options.ttlMs)} ago`
        : undefined;
    }
    const holder = current.holder;
    const expires = Date.parse(holder.expiresAt);
    if (!Number.isFinite(expires)) return `the lock file ${this.location} names no valid expiry`;
    if (expires <= this.now()) return `it expired at ${holder.expiresAt}`;
    if (holder.host === hostname() && !processIsAlive(holder.pid)) {
      return `its process ${holder.pid} on ${holder.host} no longer exists`;
    }
    return undefined;
  }

  private async createExclusive(holder: LockHolder): Promise<boolean> {
    return createLockFile(this.location, JSON.stringify(holder));
  }

  private async read(): Promise<ReadLock | undefined> {
    let file: Awaited<ReturnType<typeof readLockFile>>;
    try {
      file = await readLockFile(this.location, this.now);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      throw new Error(
        `the run lock ${this.location} cannot be read (${code ?? String(err)}); it must be a file this user can read and delete`,
      );
    }
    if (!file) return undefined;
    const holder = parseHolder(file.text);
    if (holder) return { raw: file.text, holder, ageMs: file.ageMs };
    // Empty, half-written or damaged: as if written by a holder that never renewed it.
    const what =
      file.text.trim() === ''
        ? 'it is empty'
        : `it holds ${JSON.stringify(file.text.slice(0, 40))}`;
    const written = this.now() - file.ageMs;
    const unknown = 'unknown';
    return {
      raw: file.text,
      ageMs: file.ageMs,
      unreadable: what,
      holder: {
        runId: `unknown (${this.location} is unreadable: ${what})`,
        runbook: unknown,
        operator: unknown,
        host: unknown,
        pid: 0,
        acquiredAt: new Date(written).toISOString(),
        expiresAt: new Date(written + this.options.ttlMs).toISOString(),
      },
    };
  }
}

interface ReadLock {
  raw: string;
  holder: LockHolder;
  ageMs: number;
  /** why the file could not be read as a holder (torn, hand-edited, `null`…) */
  unreadable?: string;
}

/** A holder, or undefined for anything else a lock file may hold (`null`, `[]`, `"x"`, torn). */
function parseHolder(text: string): LockHolder | undefined {
  const h = parseJsonObject(text);
  if (!h) return undefined;
  const strings = ['runId', 'runbook', 'operator', 'host', 'acquiredAt', 'expiresAt'];
  if (!strings.every((key) => typeof h[key] === 'string')) return undefined;
  if (!Number.isInteger(h.pid)) return undefined;
  return h as unknown as LockHolder;
}
