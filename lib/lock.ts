// One run at a time. The engine sees only RunLock, so the coordination.k8s.io Lease (DESIGN.md
// §3) can replace the local lock file without the engine changing.
import { randomUUID } from 'node:crypto';
import { mkdir, readFile, rename, stat, unlink, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { dirname } from 'node:path';
import { formatDuration } from './duration.ts';

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
  private renewTimer: NodeJS.Timeout | undefined;
  private renewing: Promise<void> | undefined;
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
      const staleBecause = this.staleReason(current.holder);
      if (!staleBecause) return { acquired: false, holder: current.holder };

      // Move the stale file aside (rename is atomic: of two runs taking over, one moves it),
      // then check that what moved is the stale lock we read and not a fresh one written since.
      const aside = `${this.location}.stale-${randomUUID()}`;
      try {
        await rename(this.location, aside);
      } catch {
        continue;
      }
      const moved = await readFile(aside, 'utf8').catch(() => '');
      await unlink(aside).catch(() => undefined);
      if (moved !== current.raw) {
        await writeFile(this.location, moved, { flag: 'wx' }).catch(() => undefined);
        continue;
      }
      if (await this.createExclusive(holder)) {
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
    if (this.renewTimer) clearInterval(this.renewTimer);
    this.renewTimer = undefined;
    // A renewal in flight would otherwise write the file back after we removed it.
    await this.renewing;
    const held = this.held;
    this.held = undefined;
    if (!held) return;
    const current = await this.read();
    // Never remove a lock someone else took over after ours expired.
    if (current?.holder.runId === held.runId) await unlink(this.location).catch(() => undefined);
  }

  async keepFor(pids: readonly number[]): Promise<void> {
    if (this.renewTimer) clearInterval(this.renewTimer);
    this.renewTimer = undefined;
    await this.renewing;
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
    // Write beside and rename, so a reader never sees a half-written file.
    const temp = `${this.location}.renew-${randomUUID()}`;
    await writeFile(temp, JSON.stringify(holder));
    await rename(temp, this.location).catch(() => unlink(temp).catch(() => undefined));
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
    this.renewTimer = setInterval(() => {
      this.renewing ??= this.renew()
        .catch(() => undefined)
        .finally(() => {
          this.renewing = undefined;
        });
    }, every);
    this.renewTimer.unref();
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

  private staleReason(holder: LockHolder): string | undefined {
    const expires = Date.parse(holder.expiresAt);
    if (!Number.isFinite(expires)) return 'the lock file is unreadable';
    if (expires <= this.now()) {
      const unreadable = (holder as { unreadable?: string }).unreadable;
      return unreadable ?? `it expired at ${holder.expiresAt}`;
    }
    if (holder.host === hostname() && !processIsAlive(holder.pid)) {
      return `its process ${holder.pid} on ${holder.host} no longer exists`;
    }
    return undefined;
  }

  private async createExclusive(holder: LockHolder): Promise<boolean> {
    try {
      await writeFile(this.location, JSON.stringify(holder), { flag: 'wx' });
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw err;
    }
  }

  private async read(): Promise<{ raw: string; holder: LockHolder } | undefined> {
    let raw: string;
    let mtimeMs: number;
    try {
      raw = await readFile(this.location, 'utf8');
      mtimeMs = (await stat(this.location)).mtimeMs;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return undefined;
      throw new Error(
        `the run lock ${this.location} cannot be read (${code ?? String(err)}); it must be a file this user can read and delete`,
      );
    }
    const holder = parseHolder(raw);
    if (holder) return { raw, holder };
    // Empty, half-written (another run is creating it right now) or damaged: judged by its age
    // like any lock, as if written by a holder that never renewed it.
    const what = raw.trim() === '' ? 'it is empty' : `it holds ${JSON.stringify(raw.slice(0, 40))}`;
    const unknown = 'unknown';
    return {
      raw,
      holder: {
        runId: `unknown (${this.location} is unreadable: ${what})`,
        runbook: unknown,
        operator: unknown,
        host: unknown,
        pid: 0,
        acquiredAt: new Date(mtimeMs).toISOString(),
        expiresAt: new Date(mtimeMs + this.options.ttlMs).toISOString(),
        unreadable: `${this.location} is unreadable (${what}) and was last written more than ${formatDuration(this.options.ttlMs)} ago`,
      } as LockHolder,
    };
  }
}

function parseHolder(raw: string): LockHolder | undefined {
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    return undefined;
  }
  if (!value || typeof value !== 'object' || Array.isArray(value)) return undefined;
  const holder = value as Partial<LockHolder>;
  const text = (v: unknown) => typeof v === 'string';
  const complete =
    text(holder.runId) &&
    text(holder.runbook) &&
    text(holder.operator) &&
    text(holder.host) &&
    Number.isInteger(holder.pid) &&
    text(holder.acquiredAt) &&
    text(holder.expiresAt);
  return complete ? (holder as LockHolder) : undefined;
}
