// Keyed audit lines (AUDIT_HMAC_KEY_FILE, optional). The hash chain shows a changed line unless
// everything after it was recomputed, which anyone can do; an HMAC made with a key the rewriter
// does not have cannot be recomputed. A line's `hmac` covers its content and its `prev` (and so,
// through the chain, every line before it); its `hash` then covers the hmac as well.
import { createHmac, timingSafeEqual } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';

export const MIN_KEY_BYTES = 32;

const CREATE = (path: string) =>
  `create one with: (umask 077; head -c ${MIN_KEY_BYTES} /dev/urandom > ${path}), and give every machine that runs the runbooks the same file`;

export class AuditKeyError extends Error {
  override readonly name = 'AuditKeyError';
}

/** The key's bytes; refused when unreadable, readable by others, or shorter than 32 bytes. */
export async function loadAuditKey(path: string): Promise<Buffer> {
  let mode: number;
  try {
    const info = await stat(path);
    if (!info.isFile()) throw new AuditKeyError(`AUDIT_HMAC_KEY_FILE ${path} is not a file`);
    mode = info.mode & 0o777;
  } catch (err) {
    if (err instanceof AuditKeyError) throw err;
    const code = (err as NodeJS.ErrnoException).code ?? String(err);
    throw new AuditKeyError(
      `AUDIT_HMAC_KEY_FILE ${path} cannot be read (${code}); ${CREATE(path)}`,
    );
  }
  if (mode & 0o077) {
    throw new AuditKeyError(
      `AUDIT_HMAC_KEY_FILE ${path} can be read by other users (mode ${mode.toString(8)}), so it proves nothing: chmod 600 ${path}`,
    );
  }
  const key = await readFile(path);
  if (key.length < MIN_KEY_BYTES) {
    throw new AuditKeyError(
      `AUDIT_HMAC_KEY_FILE ${path} holds ${key.length} bytes; at least ${MIN_KEY_BYTES} are needed: ${CREATE(path)}`,
    );
  }
  return key;
}

/** The HMAC of a line written as `bodyText` (every field up to and including prev). */
export function lineHmac(key: Buffer, prev: string, bodyText: string): string {
  return createHmac('sha256', key).update(prev).update(bodyText).digest('hex');
}

export function hmacMatches(key: Buffer, prev: string, bodyText: string, hmac: string): boolean {
  const expected = Buffer.from(lineHmac(key, prev, bodyText), 'hex');
  const given = Buffer.from(hmac, 'hex');
  return given.length === expected.length && timingSafeEqual(given, expected);
}
