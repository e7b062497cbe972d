// The file operations a lock file needs, for every lock file the project keeps (the run lock
// of lib/lock/lock.ts; the audit log's lock can use the same): create only if absent, read with the
// file's age, replace without a reader ever seeing half a file, take over a stale lock only if
// it is still the one that was judged stale, and remove only your own.
import { randomUUID } from 'node:crypto';
import { link, open, readFile, rename, stat, unlink, writeFile } from 'node:fs/promises';

/** A lock mutex older than this belongs to a taker that died mid-takeover. */
const TAKEOVER_STALE_MS = 10_000;

export interface LockFileText {
  text: string;
  /** how long ago the file was last written */
  ageMs: number;
}

/** Creates the lock with `text` if no lock exists; false when one does. */
export async function createLockFile(path: string, text: string): Promise<boolean> {
  // Written beside, then linked into place: the lock never exists empty or half-written.
  const temp = `${path}.new-${randomUUID()}`;
  await writeFile(temp, text, { flag: 'wx' });
  try {
    await link(temp, path);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  } finally {
    await unlink(temp).catch(() => undefined);
  }
}

export async function readLockFile(
  path: string,
  now: () => number = Date.now,
): Promise<LockFileText | undefined> {
  try {
    const [text, info] = await Promise.all([readFile(path, 'utf8'), stat(path)]);
    return { text, ageMs: Math.max(0, now() - info.mtimeMs) };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/** Replaces the lock's content in one step (the holder renewing it). */
export async function replaceLockFile(path: string, text: string): Promise<void> {
  const temp = `${path}.new-${randomUUID()}`;
  await writeFile(temp, text);
  await rename(temp, path).catch(async (err: unknown) => {
    await unlink(temp).catch(() => undefined);
    throw err;
  });
}

/**
 * Replaces a lock judged stale with `text`, but only if it still reads `expected`: takers go
 * one at a time (a `.takeover` file created exclusively), and the check and the replacement
 * happen while holding it, so two takers never both win and a fresh lock is never replaced.
 */
export async function takeOverLockFile(
  path: string,
  expected: string,
  text: string,
): Promise<boolean> {
  const mutex = `${path}.takeover`;
  let handle: Awaited<ReturnType<typeof open>>;
  try {
    handle = await open(mutex, 'wx');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    const age = await stat(mutex).then(
      (info) => Date.now() - info.mtimeMs,
      () => 0,
    );
    if (age > TAKEOVER_STALE_MS) await unlink(mutex).catch(() => undefined);
    return false;
  }
  try {
    const current = await readFile(path, 'utf8').catch(() => undefined);
    if (current !== expected) return false;
    await replaceLockFile(path, text);
    return true;
  } finally {
    await handle.close();
    await unlink(mutex).catch(() => undefined);
  }
}

/** Removes the lock if `isOwn` says its content is ours; someone else's lock stays. */
export async function removeOwnLockFile(
  path: string,
  isOwn: (text: string) => boolean,
): Promise<boolean> {
  const current = await readFile(path, 'utf8').catch(() => undefined);
  if (current === undefined || !isOwn(current)) return false;
  // Move it aside first, so what is removed is exactly what was checked.
  const aside = `${path}.release-${randomUUID()}`;
  try {
    await rename(path, aside);
  } catch {
    return false;
  }
  const moved = await readFile(aside, 'utf8').catch(() => '');
  if (moved !== current) {
    // Replaced between the read and the move: put the other holder's lock back.
    await link(aside, path).catch(() => undefined);
  }
  await unlink(aside).catch(() => undefined);
  return moved === current;
}
