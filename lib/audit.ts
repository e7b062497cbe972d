// The audit log (DESIGN.md §4): one JSON object per line, append-only, each line hash-chained to
// the one before it, so editing, deleting, reordering or truncating lines is detectable.
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { link, mkdir, open, readFile, rename, unlink } from 'node:fs/promises';
import { hostname, userInfo } from 'node:os';
import { dirname, join } from 'node:path';
import { processIsAlive } from './lock.ts';
import { maskDeep } from './mask.ts';
import type { Risk } from './risk.ts';

export type AuditEvent =
  | 'run-start'
  | 'step-start'
  | 'step-ok'
  | 'step-failed'
  | 'step-skipped'
  | 'verified-done'
  | 'confirm'
  | 'gate'
  | 'command'
  | 'wait'
  | 'note'
  | 'run-end';

export interface AuditEntry {
  seq: number;
  ts: string;
  run_id: string;
  runbook: string;
  step: string | null;
  event: AuditEvent;
  risk: Risk | null;
  command: string | null;
  dry_run: boolean;
  operator: string;
  host: string;
  kube_context: string | null;
  git_rev: string | null;
  outcome: string | null;
  duration_ms: number | null;
  detail: unknown;
  prev: string;
  hash: string;
}

export type AuditInput = Partial<Omit<AuditEntry, 'seq' | 'ts' | 'prev' | 'hash'>> & {
  event: AuditEvent;
};

export const GENESIS_HASH = '0'.repeat(64);
const LOCK_WAIT_MS = 15_000;
const STALE_LOCK_MS = 30_000;
const TAIL_CHUNK = 64 * 1024;

export class AuditLogError extends Error {
  override name = 'AuditLogError';
}

export function currentOperator(): string {
  return process.env.SUDO_USER || safeUsername();
}

function safeUsername(): string {
  try {
    return userInfo().username;
  } catch {
    return process.env.USER ?? 'unknown';
  }
}

export function hashLine(prev: string, lineWithoutHash: string): string {
  return createHash('sha256').update(prev).update(lineWithoutHash).digest('hex');
}

export class AuditLog {
  readonly path: string;
  private readonly defaults: Partial<AuditInput>;

  /** `defaults` (run_id, runbook, kube_context, git_rev, dry_run…) fill every entry appended. */
  constructor(path: string, defaults: Partial<AuditInput> = {}) {
    this.path = path;
    this.defaults = defaults;
  }

  /** The same log with more defaults (e.g. a run's id once it is known). */
  with(defaults: Partial<AuditInput>): AuditLog {
    return new AuditLog(this.path, { ...this.defaults, ...defaults });
  }

  /** Appends one entry under the log's lock and fsyncs it; secrets are masked before hashing. */
  async append(input: AuditInput): Promise<AuditEntry> {
    await mkdir(dirname(this.path), { recursive: true });
    const release = await acquireLock(`${this.path}.lock`);
    try {
      const handle = await open(this.path, 'a+');
      try {
        const last = await readLastEntry(handle, this.path);
        const merged = { ...this.defaults, ...input };
        const body = maskDeep({
          seq: (last?.seq ?? 0) + 1,
          ts: new Date().toISOString(),
          run_id: merged.run_id ?? 'none',
          runbook: merged.runbook ?? 'unknown',
          step: merged.step ?? null,
          event: merged.event,
          risk: merged.risk ?? null,
          command: merged.command ?? null,
          dry_run: merged.dry_run ?? false,
          operator: merged.operator ?? currentOperator(),
          host: merged.host ?? hostname(),
          kube_context: merged.kube_context ?? null,
          git_rev: merged.git_rev ?? null,
          outcome: merged.outcome ?? null,
          duration_ms: merged.duration_ms ?? null,
          detail: merged.detail ?? null,
          prev: last?.hash ?? GENESIS_HASH,
        });
        const text = JSON.stringify(body);
        const entry: AuditEntry = { ...body, hash: hashLine(body.prev, text) };
        await handle.write(`${JSON.stringify(entry)}\n`);
        await handle.sync();
        return entry;
      } finally {
        await handle.close();
      }
    } finally {
      await release();
    }
  }
}

async function readLastEntry(
  handle: Awaited<ReturnType<typeof open>>,
  path: string,
): Promise<{ seq: number; hash: string } | undefined> {
  const { size } = await handle.stat();
  if (size === 0) return undefined;
  let start = size;
  let tail = '';
  // Read backwards until the tail holds the whole last line (and the newline before it).
  while (start > 0) {
    const length = Math.min(TAIL_CHUNK, start);
    start -= length;
    const buffer = Buffer.alloc(length);
    await handle.read(buffer, 0, length, start);
    tail = buffer.toString('utf8') + tail;
    if (tail.lastIndexOf('\n', tail.length - 2) >= 0) break;
  }
  if (!tail.endsWith('\n')) {
    throw new AuditLogError(
      `The audit log ${path} ends in a partial line, so nothing more is written to it. Run ./runbooks/audit.mts verify to see where it breaks.`,
    );
  }
  const lastLine = tail.slice(tail.lastIndexOf('\n', tail.length - 2) + 1, -1);
  try {
    const parsed = JSON.parse(lastLine) as { seq?: unknown; hash?: unknown };
    if (typeof parsed.seq === 'number' && typeof parsed.hash === 'string') {
      return { seq: parsed.seq, hash: parsed.hash };
    }
  } catch {
    // reported below
  }
  throw new AuditLogError(
    `The last line of the audit log ${path} is not an audit entry, so nothing more is written to it. Run ./runbooks/audit.mts verify to see where it breaks.`,
  );
}

async function acquireLock(lockPath: string): Promise<() => Promise<void>> {
  const deadline = Date.now() + LOCK_WAIT_MS;
  const owner = `${process.pid}@${hostname()}`;
  for (let attempt = 0; ; attempt++) {
    try {
      const handle = await open(lockPath, 'wx');
      await handle.write(owner);
      await handle.close();
      return async () => {
        await unlink(lockPath).catch(() => undefined);
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    if (await removeIfStale(lockPath)) continue;
    if (Date.now() > deadline) {
      throw new AuditLogError(
        `The audit log lock ${lockPath} has been held for over ${LOCK_WAIT_MS / 1000}s. If no runbook is running, remove that file and try again.`,
      );
    }
    await new Promise((r) => setTimeout(r, Math.min(50, 1 + attempt) * Math.random() + 1));
  }
}

/** A lock left by a process that died (same host) or older than any append can take is removed. */
async function removeIfStale(lockPath: string): Promise<boolean> {
  let owner: string;
  let mtimeMs: number;
  try {
    const handle = await open(lockPath, 'r');
    try {
      owner = (await handle.readFile('utf8')).trim();
      mtimeMs = (await handle.stat()).mtimeMs;
    } finally {
      await handle.close();
    }
  } catch {
    return true; // gone already: try again at once
  }
  const [pidText, host] = owner.split('@');
  const pid = Number(pidText);
  const deadOwner = host === hostname() && Number.isInteger(pid) && pid > 0 && !processIsAlive(pid);
  if (!deadOwner && Date.now() - mtimeMs < STALE_LOCK_MS) return false;
  // Two writers may judge the same lock stale; by the time the second acts, the first may have
  // replaced it with its own live lock. Moving the file aside is atomic, so only what was moved
  // is looked at: the stale lock is deleted, a live one put back.
  const aside = `${lockPath}.stale-${process.pid}-${randomBytes(4).toString('hex')}`;
  try {
    await rename(lockPath, aside);
  } catch {
    return true; // someone else moved it first: try again at once
  }
  const moved = await readFile(aside, 'utf8').catch(() => '');
  if (moved.trim() !== owner) await link(aside, lockPath).catch(() => undefined);
  await unlink(aside).catch(() => undefined);
  return true;
}

export type AuditProblemReason =
  | 'not-json'
  | 'truncated'
  | 'edited'
  | 'missing'
  | 'reordered'
  | 'chain-broken';

export interface AuditProblem {
  line: number;
  seq: number | null;
  reason: AuditProblemReason;
  message: string;
}

export type VerifyResult = { ok: true; entries: number } | ({ ok: false } & AuditProblem);

export interface AuditLogContents {
  entries: AuditEntry[];
  /** lines that are not JSON: left out here, named by verify */
  unreadableLines: number;
}

/** Reads every entry that parses and counts the lines that don't. An absent log is empty. */
export async function readAuditLog(path: string): Promise<AuditLogContents> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT')
      return { entries: [], unreadableLines: 0 };
    throw err;
  }
  const entries: AuditEntry[] = [];
  let unreadableLines = 0;
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    try {
      entries.push(JSON.parse(line) as AuditEntry);
    } catch {
      unreadableLines++;
    }
  }
  return { entries, unreadableLines };
}

/** Reads every entry that parses; lines that don't are left out (verify names them). */
export async function readAuditEntries(path: string): Promise<AuditEntry[]> {
  return (await readAuditLog(path)).entries;
}

/** Walks the chain from the first line; the first line that breaks it is reported. */
export async function verifyAuditLog(path: string): Promise<VerifyResult> {
  if (!existsSync(path)) return { ok: true, entries: 0 };
  const text = readFileSync(path, 'utf8');
  if (text === '') return { ok: true, entries: 0 };
  const lines = text.split('\n');
  const endsWithNewline = text.endsWith('\n');
  if (endsWithNewline) lines.pop();

  const parsed: Array<Record<string, unknown> | undefined> = lines.map((line) => {
    try {
      const value = JSON.parse(line);
      return value && typeof value === 'object' && !Array.isArray(value) ? value : undefined;
    } catch {
      return undefined;
    }
  });

  let prevHash = GENESIS_HASH;
  let prevSeq = 0;
  for (let i = 0; i < lines.length; i++) {
    const lineNo = i + 1;
    const entry = parsed[i];
    const isLast = i === lines.length - 1;
    if (!entry) {
      if (isLast && !endsWithNewline) {
        return fail(
          lineNo,
          null,
          'truncated',
          'the last line is cut short (partial JSON, no newline)',
        );
      }
      return fail(lineNo, null, 'not-json', 'it is not a JSON object');
    }
    const seq = typeof entry.seq === 'number' ? entry.seq : null;
    const { hash, ...body } = entry;
    if (typeof hash !== 'string' || typeof entry.prev !== 'string' || seq === null) {
      return fail(lineNo, seq, 'edited', 'it lacks seq, prev or hash');
    }
    if (hashLine(entry.prev, JSON.stringify(body)) !== hash) {
      return fail(
        lineNo,
        seq,
        'edited',
        'its content does not match its hash: the line was changed',
      );
    }
    const expected = prevSeq + 1;
    if (seq !== expected) {
      const later = parsed.slice(i + 1).some((e) => e?.seq === expected);
      if (seq < expected || later) {
        return fail(
          lineNo,
          seq,
          'reordered',
          `seq ${seq} stands where seq ${expected} belongs: lines were moved`,
        );
      }
      const gap = seq - 1 === expected ? `seq ${expected} is` : `seq ${expected}–${seq - 1} are`;
      return fail(lineNo, seq, 'missing', `${gap} missing before it: lines were deleted`);
    }
    if (entry.prev !== prevHash) {
      return fail(
        lineNo,
        seq,
        'chain-broken',
        `its prev does not match the hash of line ${lineNo - 1}: that line was replaced`,
      );
    }
    if (isLast && !endsWithNewline) {
      return fail(
        lineNo,
        seq,
        'truncated',
        'the last line has no newline: the write was cut short',
      );
    }
    prevHash = hash;
    prevSeq = seq;
  }
  return { ok: true, entries: lines.length };
}

function fail(
  line: number,
  seq: number | null,
  reason: AuditProblemReason,
  why: string,
): VerifyResult {
  const at = seq === null ? `line ${line}` : `line ${line} (seq ${seq})`;
  return { ok: false, line, seq, reason, message: `${at}: ${reason}: ${why}` };
}

/** The checked-out commit, read from .git without spawning git (cheap enough for every run). */
export function gitRevision(repoDir: string): string | null {
  try {
    const gitDir = join(repoDir, '.git');
    const head = readFileSync(join(gitDir, 'HEAD'), 'utf8').trim();
    if (!head.startsWith('ref: ')) return head.slice(0, 12);
    const ref = head.slice(5);
    const loose = join(gitDir, ref);
    if (existsSync(loose)) return readFileSync(loose, 'utf8').trim().slice(0, 12);
    const packed = readFileSync(join(gitDir, 'packed-refs'), 'utf8');
    const line = packed.split('\n').find((l) => l.endsWith(` ${ref}`));
    return line ? line.slice(0, 12) : null;
  } catch {
    return null;
  }
}
