// The audit log (docs/audit-log.md): one JSON object per line, append-only, each line hash-chained to
// the one before it, so editing, deleting, reordering or truncating lines is detectable.
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { mkdir, open, readFile, rename, stat, unlink, writeFile } from 'node:fs/promises';
import { hostname, userInfo } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import type { Risk } from '../engine/risk.ts';
import { parseJsonObject } from '../json-object.ts';
import { processIsAlive } from '../lock/lock.ts';
import { maskDeep } from '../mask.ts';
import { hmacMatches, lineHmac } from './audit-hmac.ts';

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
  /** with AUDIT_HMAC_KEY_FILE: the line's HMAC (lib/audit/audit-hmac.ts) */
  hmac?: string;
  hash: string;
}

export type AuditInput = Partial<Omit<AuditEntry, 'seq' | 'ts' | 'prev' | 'hmac' | 'hash'>> & {
  event: AuditEvent;
};

export const GENESIS_HASH = '0'.repeat(64);
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

export interface AuditLogOptions {
  /** AUDIT_HMAC_KEY_FILE's bytes: every line appended carries an HMAC made with it */
  hmacKey?: Buffer;
}

export class AuditLog {
  readonly path: string;
  private readonly defaults: Partial<AuditInput>;
  private readonly options: AuditLogOptions;

  /** `defaults` (run_id, runbook, kube_context, git_rev, dry_run…) fill every entry appended. */
  constructor(path: string, defaults: Partial<AuditInput> = {}, options: AuditLogOptions = {}) {
    this.path = path;
    this.defaults = defaults;
    this.options = options;
  }

  /** The same log with more defaults (e.g. a run's id once it is known). */
  with(defaults: Partial<AuditInput>): AuditLog {
    return new AuditLog(this.path, { ...this.defaults, ...defaults }, this.options);
  }

  /** Appends one entry under the log's lock and fsyncs it; secrets are masked before hashing. */
  async append(input: AuditInput): Promise<AuditEntry> {
    await mkdir(dirname(this.path), { recursive: true });
    const lock = await acquireLock(lockPathOf(this.path));
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
        const key = this.options.hmacKey;
        const signed = key
          ? { ...body, hmac: lineHmac(key, body.prev, JSON.stringify(body)) }
          : body;
        const text = JSON.stringify(signed);
        const entry: AuditEntry = { ...signed, hash: hashLine(body.prev, text) };
        await lock.assertHeld();
        await handle.write(`${JSON.stringify(entry)}\n`);
        await handle.sync();
        return entry;
      } finally {
        await handle.close();
      }
    } finally {
      await lock.release();
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

/** The lock file every writer of the log at `path` takes. */
const lockPathOf = (path: string) => `${path}.lock`;

// A writer holds the lock for milliseconds. One that holds it longer than STALE_LOCK_MS is stuck
// (stopped, swapped out) and its lock is taken over; a waiting writer gives up only after
// GIVE_UP_MS, longer than that, so it outlasts any lock that can become stale.
const STALE_LOCK_MS = 30_000;
const GIVE_UP_MS = 45_000;
// A takeover marker lives for microseconds; one this old was left by a writer that died mid-way.
const STALE_MARKER_MS = 10_000;

export const AUDIT_LOCK_TIMING = { staleMs: STALE_LOCK_MS, giveUpMs: GIVE_UP_MS } as const;

interface LockOwner {
  pid: number;
  host: string;
  /** unique to one acquisition; absent in the older `<pid>@<host>` form */
  token?: string;
}

interface LockFileState {
  raw: string;
  ino: number;
  mtimeMs: number;
  /** undefined when the file does not name a writer (empty, half-written, null, [] …) */
  owner: LockOwner | undefined;
}

/** Takes the lock and returns its release, which removes the lock only while it is still ours. */
async function acquireLock(lockPath: string): Promise<{
  release: () => Promise<void>;
  assertHeld: () => Promise<void>;
}> {
  const token = randomBytes(12).toString('hex');
  const content = JSON.stringify({
    pid: process.pid,
    host: hostname(),
    token,
    since: new Date().toISOString(),
  });
  const held = {
    release: async () => {
      const current = await readLockFile(lockPath).catch(() => undefined);
      if (current?.owner?.token === token) await unlink(lockPath).catch(() => undefined);
    },
    assertHeld: async () => {
      const current = await readLockFile(lockPath);
      if (current?.owner?.token !== token) {
        throw new AuditLogError(
          `The audit log lock ${lockPath} was taken over while this writer held it (it was stuck for over ${STALE_LOCK_MS / 1000}s), so it lost the lock and wrote nothing. Run ./runbooks/audit.mts verify, then re-run.`,
        );
      }
    },
  };
  const deadline = Date.now() + GIVE_UP_MS;
  for (let attempt = 0; ; attempt++) {
    if (await createExclusive(lockPath, content)) return held;
    const current = await readLockFile(lockPath);
    if (!current) continue;
    if (staleReason(current) && (await takeOver(lockPath, current, content, token))) return held;
    if (Date.now() > deadline) throw new AuditLogError(giveUpMessage(lockPath, current));
    await new Promise((r) => setTimeout(r, Math.min(50, 1 + attempt) * Math.random() + 1));
  }
}

async function createExclusive(lockPath: string, content: string): Promise<boolean> {
  let handle: Awaited<ReturnType<typeof open>>;
  try {
    handle = await open(lockPath, 'wx');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw lockError(lockPath, err);
  }
  // Until this write lands the file is empty: readers judge such a file by its age, so a fresh
  // one is waited for.
  try {
    await handle.write(content);
  } finally {
    await handle.close();
  }
  return true;
}

async function readLockFile(lockPath: string): Promise<LockFileState | undefined> {
  let handle: Awaited<ReturnType<typeof open>>;
  try {
    handle = await open(lockPath, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw lockError(lockPath, err);
  }
  try {
    const raw = await handle.readFile('utf8');
    const { ino, mtimeMs } = await handle.stat();
    return { raw, ino, mtimeMs, owner: parseLockOwner(raw) };
  } catch (err) {
    throw lockError(lockPath, err);
  } finally {
    await handle.close();
  }
}

function lockError(lockPath: string, err: unknown): AuditLogError {
  const code = (err as NodeJS.ErrnoException).code ?? String(err);
  return new AuditLogError(
    `The audit log lock ${lockPath} cannot be used (${code}). It must be a regular file this user can create and delete; if no runbook is running, remove it and try again.`,
  );
}

function parseLockOwner(raw: string): LockOwner | undefined {
  const text = raw.trim();
  const legacy = /^(\d+)@(\S+)$/.exec(text);
  if (legacy) return { pid: Number(legacy[1]), host: legacy[2] as string };
  const value = parseJsonObject(text);
  if (!value) return undefined;
  const { pid, host, token } = value;
  if (!Number.isInteger(pid) || (pid as number) <= 0 || typeof host !== 'string') return undefined;
  return { pid: pid as number, host, ...(typeof token === 'string' ? { token } : {}) };
}

function describeLockFile(lock: LockFileState): string {
  const age = `${Math.round((Date.now() - lock.mtimeMs) / 1000)}s old`;
  if (lock.owner) return `held by pid ${lock.owner.pid} on ${lock.owner.host}, ${age}`;
  const what =
    lock.raw.trim() === '' ? 'empty' : `holding ${JSON.stringify(lock.raw.slice(0, 60))}`;
  return `unreadable (${what}: not a writer's pid and host), ${age}`;
}

/** Why the lock may be taken over, or undefined while it must be waited for. */
function staleReason(lock: LockFileState): string | undefined {
  const owner = lock.owner;
  if (owner && owner.host === hostname() && !processIsAlive(owner.pid)) {
    return `its writer, pid ${owner.pid}, no longer exists`;
  }
  // A file that names no writer may be one being written right now: it is judged by age too.
  if (Date.now() - lock.mtimeMs > STALE_LOCK_MS) return describeLockFile(lock);
  return undefined;
}

/**
 * Replaces a stale lock with ours without a moment where the path is free: rename() swaps the
 * file atomically. Only one writer may act on a given stale file (the marker named after it is
 * created exclusively), and that writer checks the file is still the stale one before swapping,
 * so a lock taken in the meantime is never replaced. Then the lock is read back.
 */
async function takeOver(
  lockPath: string,
  stale: LockFileState,
  content: string,
  token: string,
): Promise<boolean> {
  const fingerprint = createHash('sha256')
    .update(`${stale.ino}:${stale.mtimeMs}:${stale.raw}`)
    .digest('hex')
    .slice(0, 16);
  const marker = `${lockPath}.takeover-${fingerprint}`;
  try {
    await writeFile(marker, content, { flag: 'wx' });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw lockError(marker, err);
    const left = await stat(marker).catch(() => undefined);
    if (left && Date.now() - left.mtimeMs > STALE_MARKER_MS) await unlink(marker).catch(() => 0);
    return false;
  }
  try {
    const now = await readLockFile(lockPath);
    if (!now || now.ino !== stale.ino || now.mtimeMs !== stale.mtimeMs || now.raw !== stale.raw) {
      return false;
    }
    await rename(marker, lockPath);
  } finally {
    await unlink(marker).catch(() => undefined);
  }
  return (await readLockFile(lockPath))?.owner?.token === token;
}

function giveUpMessage(lockPath: string, lock: LockFileState): string {
  return `The audit log lock ${lockPath} is ${describeLockFile(lock)}; gave up waiting after ${GIVE_UP_MS / 1000}s. If no runbook is running, remove that file and try again.`;
}

export type AuditProblemReason =
  | 'not-json'
  | 'truncated'
  | 'edited'
  | 'missing'
  | 'reordered'
  | 'chain-broken'
  /** with the key: an HMAC that does not match, or a line without one after signed lines */
  | 'forged';

export interface AuditProblem {
  line: number;
  seq: number | null;
  reason: AuditProblemReason;
  message: string;
}

export type VerifyResult =
  | {
      ok: true;
      entries: number;
      /** with the key: the lines that carry a checked HMAC, from the first signed line on */
      signed?: { from: number; to: number };
    }
  | ({ ok: false; problems: AuditProblem[] } & AuditProblem);

export interface AuditLogContents {
  entries: AuditEntry[];
  /** lines that are not JSON: left out here, named by verify */
  unreadableLines: number;
}

function unreadableLog(path: string, err: unknown): AuditLogError {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') {
    return new AuditLogError(
      `there is no audit log at ${path}; check AUDIT_LOG (or --log): a runbook creates the log on its first run`,
    );
  }
  return new AuditLogError(
    `the audit log ${path} cannot be read (${code ?? String(err)}); it must be a file this user can read; check AUDIT_LOG (or --log)`,
  );
}

// A writer appends a line with one write, but a read at that moment can see its first part only.
// A read that ends mid-line is taken again while the log is still changing or its writer still
// holds the lock (milliseconds); a partial line that stays that long is the log's own. The lock
// is looked at before the read: a writer gone by then had finished its line, so the read sees it
// (looked at after, a read begun before the writer finished could pass for the settled log).
const SETTLE_MS = 1_000;
const SETTLE_STEP_MS = 20;

function readSettled(path: string): Promise<Buffer> {
  return settledRead(
    () => readFile(path),
    () => existsSync(lockPathOf(path)),
  );
}

/** readSettled's wait, on any read and writer's lock (exported for its test). */
export async function settledRead(
  read: () => Promise<Buffer>,
  writerThere: () => boolean,
): Promise<Buffer> {
  let bytes = await read();
  for (let waited = 0; waited < SETTLE_MS; waited += SETTLE_STEP_MS) {
    if (bytes.length === 0 || bytes[bytes.length - 1] === 0x0a) break;
    await delay(SETTLE_STEP_MS);
    const writerWasThere = writerThere();
    const again = await read();
    const changed = !again.equals(bytes);
    bytes = again;
    if (!changed && !writerWasThere) break;
  }
  return bytes;
}

/** Reads every entry that parses and counts the lines that don't. An absent log is empty. */
export async function readAuditLog(path: string): Promise<AuditLogContents> {
  let text: string;
  try {
    text = (await readSettled(path)).toString('utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT')
      return { entries: [], unreadableLines: 0 };
    throw unreadableLog(path, err);
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

const HASH_SUFFIX = /,"hash":"([0-9a-f]{64})"\}$/;
const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/** The file's lines as written (bytes), and whether the last one ended with a newline. */
function rawLines(bytes: Buffer): { lines: Buffer[]; endsWithNewline: boolean } {
  const lines: Buffer[] = [];
  let start = 0;
  for (let nl = bytes.indexOf(10); nl >= 0; nl = bytes.indexOf(10, start)) {
    lines.push(bytes.subarray(start, nl));
    start = nl + 1;
  }
  if (start < bytes.length) lines.push(bytes.subarray(start));
  return { lines, endsWithNewline: start === bytes.length };
}

type ParsedLine = { text: string; entry: Record<string, unknown> | undefined } | undefined;

function parseLine(bytes: Buffer): ParsedLine {
  let text: string;
  try {
    text = strictUtf8.decode(bytes);
  } catch {
    return undefined;
  }
  try {
    const value = JSON.parse(text);
    const isObject = value && typeof value === 'object' && !Array.isArray(value);
    return { text, entry: isObject ? value : undefined };
  } catch {
    return { text, entry: undefined };
  }
}

/**
 * Walks the chain from the first line and reports every line that breaks it, each judged against
 * the line before it. The hash is checked over the bytes as written, and a line must be exactly
 * what the writer produces for its content, so a repeated key or re-spaced line (which readers
 * may interpret differently) is caught even when its hash was recomputed. Throws AuditLogError
 * when the log is missing or cannot be read.
 */
export async function verifyAuditLog(
  path: string,
  options: { hmacKey?: Buffer } = {},
): Promise<VerifyResult> {
  const key = options.hmacKey;
  let firstSigned: number | undefined;
  let bytes: Buffer;
  try {
    bytes = await readSettled(path);
  } catch (err) {
    throw unreadableLog(path, err);
  }
  const { lines, endsWithNewline } = rawLines(bytes);
  const parsed = lines.map(parseLine);
  const problems: AuditProblem[] = [];
  let prevHash = GENESIS_HASH;
  let prevSeq = 0;
  for (let i = 0; i < lines.length; i++) {
    const lineNo = i + 1;
    const isLast = i === lines.length - 1;
    const line = parsed[i];
    const entry = line?.entry;
    const seq = typeof entry?.seq === 'number' ? entry.seq : null;
    const problem = (reason: AuditProblemReason, why: string) =>
      problems.push(problemAt(lineNo, seq, reason, why));

    if (!line) {
      problem('edited', 'it is not valid UTF-8: bytes were changed');
    } else if (!entry) {
      if (isLast && !endsWithNewline) {
        problem('truncated', 'the last line is cut short (partial JSON, no newline)');
      } else {
        problem('not-json', 'it is not a JSON object');
      }
      continue;
    } else if (typeof entry.hash !== 'string' || typeof entry.prev !== 'string' || seq === null) {
      problem('edited', 'it lacks seq, prev or hash');
    } else if (line.text !== JSON.stringify(entry)) {
      problem(
        'edited',
        'it is not written the way entries are written (a repeated key, changed spacing or escaping): readers may disagree on what it says',
      );
    } else if (!checkHash(line.text, entry.prev, entry.hash)) {
      problem('edited', 'its content does not match its hash: the line was changed');
    } else if (seq !== prevSeq + 1) {
      const expected = prevSeq + 1;
      const later = parsed.slice(i + 1).some((p) => p?.entry?.seq === expected);
      if (seq < expected || later) {
        problem('reordered', `seq ${seq} stands where seq ${expected} belongs: lines were moved`);
      } else {
        const gap = seq - 1 === expected ? `seq ${expected} is` : `seq ${expected}–${seq - 1} are`;
        problem('missing', `${gap} missing before it: lines were deleted`);
      }
    } else if (entry.prev !== prevHash) {
      problem(
        'chain-broken',
        `its prev does not match the hash of line ${lineNo - 1}: that line was replaced`,
      );
    } else if (isLast && !endsWithNewline) {
      problem('truncated', 'the last line has no newline: the write was cut short');
    }
    const intact = problems.at(-1)?.line !== lineNo;
    if (key && entry && intact) {
      if (typeof entry.hmac === 'string') {
        firstSigned ??= lineNo;
        if (!hmacMatches(key, String(entry.prev), bodyText(entry), entry.hmac)) {
          problem('forged', 'its HMAC does not match: it was written without the key');
        }
      } else if (firstSigned !== undefined) {
        problem(
          'forged',
          `it carries no HMAC though line ${firstSigned} does: it was written without the key`,
        );
      }
    }
    // The next line is judged against this one, so one bad line is reported once, not again
    // for every line after it.
    if (typeof entry?.hash === 'string') prevHash = entry.hash;
    if (seq !== null) prevSeq = seq;
  }
  if (key && firstSigned === undefined && lines.length > 0 && problems.length === 0) {
    problems.push(
      problemAt(
        lines.length,
        null,
        'forged',
        'no line carries an HMAC though AUDIT_HMAC_KEY_FILE is set: if the key was set after the last run, any run (a --dry-run too) signs the log from then on; otherwise the log was rewritten without the key',
      ),
    );
  }
  const first = problems[0];
  if (first) return { ok: false, ...first, problems };
  return {
    ok: true,
    entries: lines.length,
    ...(key && firstSigned !== undefined
      ? { signed: { from: firstSigned, to: lines.length } }
      : {}),
  };
}

/** A line as it was before its HMAC and hash were added: what the HMAC covers. */
function bodyText(entry: Record<string, unknown>): string {
  const { hmac: _hmac, hash: _hash, ...body } = entry;
  return JSON.stringify(body);
}

/** The hash is the line's last field; it covers the line as written up to it. */
function checkHash(text: string, prev: string, hash: string): boolean {
  const match = HASH_SUFFIX.exec(text);
  if (!match || match[1] !== hash) return false;
  return hashLine(prev, `${text.slice(0, match.index)}}`) === hash;
}

function problemAt(
  line: number,
  seq: number | null,
  reason: AuditProblemReason,
  why: string,
): AuditProblem {
  const at = seq === null ? `line ${line}` : `line ${line} (seq ${seq})`;
  return { line, seq, reason, message: `${at}: ${reason}: ${why}` };
}

/** The checked-out commit, read from .git without spawning git (cheap enough for every run). */
export function gitRevision(repoDir: string): string | null {
  try {
    let gitDir = join(repoDir, '.git');
    // A linked worktree's .git is a file naming its own git dir; refs live in the common one.
    if (statSync(gitDir).isFile()) {
      const pointer = /^gitdir: (.+)$/m.exec(readFileSync(gitDir, 'utf8'));
      if (!pointer) return null;
      gitDir = resolve(repoDir, (pointer[1] as string).trim());
    }
    const commonFile = join(gitDir, 'commondir');
    const commonDir = existsSync(commonFile)
      ? resolve(gitDir, readFileSync(commonFile, 'utf8').trim())
      : gitDir;
    const head = readFileSync(join(gitDir, 'HEAD'), 'utf8').trim();
    if (!head.startsWith('ref: ')) return head.slice(0, 12);
    const ref = head.slice(5);
    for (const dir of [gitDir, commonDir]) {
      const loose = join(dir, ref);
      if (existsSync(loose)) return readFileSync(loose, 'utf8').trim().slice(0, 12);
    }
    const packed = readFileSync(join(commonDir, 'packed-refs'), 'utf8');
    const line = packed.split('\n').find((l) => l.endsWith(` ${ref}`));
    return line ? line.slice(0, 12) : null;
  } catch {
    return null;
  }
}
