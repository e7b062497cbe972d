// AUDIT_HMAC_KEY_FILE: lines written with the key carry an HMAC, and verify with the key catches
// the rewrite the hash chain alone calls intact (every hash recomputed by someone without it).
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { type AuditEntry, AuditLog, hashLine, verifyAuditLog } from '../../lib/audit/audit.ts';
import { AuditKeyError, loadAuditKey, MIN_KEY_BYTES } from '../../lib/audit/audit-hmac.ts';
import { execute, markerRunbook } from '../helpers/marker-runbook.ts';
import { REPO, runCli } from '../helpers/run-cli.ts';
import { makeRunbookEnv } from '../helpers/runbook-env.ts';

const AUDIT = join(REPO, 'runbooks', 'audit.mts');

function dir(t: Test): string {
  const d = mkdtempSync(join(tmpdir(), 'audit-hmac-'));
  t.teardown(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

function keyFile(d: string, bytes = randomBytes(MIN_KEY_BYTES), mode = 0o600): string {
  const path = join(d, 'audit.key');
  writeFileSync(path, bytes);
  chmodSync(path, mode);
  return path;
}

async function writeLog(path: string, n: number, hmacKey?: Buffer): Promise<void> {
  const log = new AuditLog(
    path,
    { run_id: 'r1', runbook: '05-migrate' },
    hmacKey ? { hmacKey } : {},
  );
  for (let i = 0; i < n; i++) await log.append({ event: 'note', detail: { i } });
}

function entries(path: string): AuditEntry[] {
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as AuditEntry);
}

/** What someone who knows the format but not the key writes: every hash recomputed. */
function rechain(rows: AuditEntry[], keepHmac: boolean): string {
  let prev = '0'.repeat(64);
  return rows
    .map((entry) => {
      const { hash: _hash, hmac, ...rest } = { ...entry, prev };
      const body = keepHmac && hmac !== undefined ? { ...rest, hmac } : rest;
      const hash = hashLine(prev, JSON.stringify(body));
      prev = hash;
      return `${JSON.stringify({ ...body, hash })}\n`;
    })
    .join('');
}

t.test('the key file is refused when missing, readable by others, or short', async (t) => {
  const d = dir(t);
  await t.rejects(loadAuditKey(join(d, 'none')), {
    name: 'AuditKeyError',
    message: /cannot be read \(ENOENT\); create one with: \(umask 077; head -c 32 \/dev\/urandom >/,
  });
  await t.rejects(loadAuditKey(keyFile(d, randomBytes(32), 0o644)), {
    message: /can be read by other users \(mode 644\), so it proves nothing: chmod 600/,
  });
  await t.rejects(loadAuditKey(keyFile(d, randomBytes(31))), {
    message: /holds 31 bytes; at least 32 are needed/,
  });
  await t.rejects(loadAuditKey(d), AuditKeyError);
  const bytes = randomBytes(40);
  t.same(await loadAuditKey(keyFile(d, bytes)), bytes, 'a 0600 file of 40 bytes is the key');
});

t.test(
  'lines written with the key carry an HMAC, and verify with the key checks each',
  async (t) => {
    const d = dir(t);
    const key = randomBytes(32);
    const log = join(d, 'audit.jsonl');
    await writeLog(log, 4, key);
    const rows = entries(log);
    t.ok(
      rows.every((e) => /^[0-9a-f]{64}$/.test(e.hmac ?? '')),
      'every line has an hmac',
    );
    t.same(
      Object.keys(rows[0] ?? {}).slice(-3),
      ['prev', 'hmac', 'hash'],
      'the hash is still the last field and covers the hmac',
    );
    t.same(await verifyAuditLog(log, { hmacKey: key }), {
      ok: true,
      entries: 4,
      signed: { from: 1, to: 4 },
    });
    t.same(await verifyAuditLog(log), { ok: true, entries: 4 }, 'without the key: the chain only');
    t.match(await verifyAuditLog(log, { hmacKey: randomBytes(32) }), {
      ok: false,
      reason: 'forged',
      line: 1,
      message: /line 1 \(seq 1\): forged: its HMAC does not match: it was written without the key/,
    });
  },
);

t.test(
  'a rewrite with every hash recomputed passes the chain, and fails with the key',
  async (t) => {
    const d = dir(t);
    const key = randomBytes(32);
    const log = join(d, 'audit.jsonl');
    await writeLog(log, 5, key);
    const rows = entries(log);
    rows[2] = { ...(rows[2] as AuditEntry), outcome: 'ok', detail: { hidden: true } };
    writeFileSync(log, rechain(rows, true));
    t.same(await verifyAuditLog(log), { ok: true, entries: 5 }, 'the chain alone is fooled');
    const result = await verifyAuditLog(log, { hmacKey: key });
    t.match(result, { ok: false, reason: 'forged', line: 3 });
    t.same(
      result.ok ? [] : result.problems.map((p) => p.line),
      [3, 4, 5],
      'from the changed line on (each HMAC covers its prev); the lines before it hold',
    );

    // Dropping every HMAC does not help: a key is set and nothing is signed.
    writeFileSync(log, rechain(entries(log), false));
    t.match(await verifyAuditLog(log, { hmacKey: key }), {
      ok: false,
      reason: 'forged',
      message: /no line carries an HMAC though AUDIT_HMAC_KEY_FILE is set/,
    });
  },
);

t.test(
  'lines from before the key are covered through the chain; an unsigned line after signed ones is not',
  async (t) => {
    const d = dir(t);
    const key = randomBytes(32);
    const log = join(d, 'audit.jsonl');
    await writeLog(log, 2);
    await writeLog(log, 2, key);
    t.same(await verifyAuditLog(log, { hmacKey: key }), {
      ok: true,
      entries: 4,
      signed: { from: 3, to: 4 },
    });
    // The unsigned prefix rewritten and rechained: the first signed line's prev changes.
    const rows = entries(log);
    rows[0] = { ...(rows[0] as AuditEntry), operator: 'someone-else' };
    const forged = join(d, 'forged.jsonl');
    writeFileSync(forged, rechain(rows, true));
    t.match(await verifyAuditLog(forged, { hmacKey: key }), {
      ok: false,
      line: 3,
      reason: 'forged',
    });

    // A machine without the key appends: its line is named.
    await writeLog(log, 1);
    t.match(await verifyAuditLog(log, { hmacKey: key }), {
      ok: false,
      line: 5,
      reason: 'forged',
      message: /it carries no HMAC though line 3 does: it was written without the key/,
    });
  },
);

t.test('audit.mts verify reads AUDIT_HMAC_KEY_FILE and says what it checked', async (t) => {
  const d = dir(t);
  const bytes = randomBytes(32);
  const file = keyFile(d, bytes);
  const log = join(d, 'audit.jsonl');
  await writeLog(log, 1);
  await writeLog(log, 3, bytes);
  const env = { AUDIT_HMAC_KEY_FILE: file, PATH: process.env.PATH ?? '' };
  const ok = await runCli(AUDIT, ['verify', '--log', log, '--no-anchor'], { env, cwd: d });
  t.equal(ok.code, 0, ok.stderr);
  t.match(
    ok.stdout,
    /hmac: lines 2–4 carry an HMAC made with AUDIT_HMAC_KEY_FILE; lines 1–1, written before the key was set, are covered through the chain/,
  );
  const rows = entries(log);
  rows[3] = { ...(rows[3] as AuditEntry), outcome: 'rewritten' };
  writeFileSync(log, rechain(rows, true));
  const forged = await runCli(AUDIT, ['verify', '--log', log, '--no-anchor'], { env, cwd: d });
  t.equal(forged.code, 1);
  t.match(forged.stdout, /broken: .* line 4 \(seq 4\): forged: its HMAC does not match/);
  // The key named in the env file still counts when another setting there is invalid.
  const envFile = join(d, 'broken.env');
  writeFileSync(envFile, `AUDIT_HMAC_KEY_FILE=${file}\nVALIDATION_WINDOW=1h\n`);
  const viaFile = await runCli(
    AUDIT,
    ['verify', '--log', log, '--no-anchor', '--env-file', envFile],
    { env: { PATH: process.env.PATH ?? '' }, cwd: d },
  );
  t.equal(viaFile.code, 1, 'the key from a file with an invalid setting is still used');
  t.match(viaFile.stdout, /forged: its HMAC does not match/);
  chmodSync(file, 0o640);
  const loose = await runCli(AUDIT, ['verify', '--log', log, '--no-anchor'], { env, cwd: d });
  t.equal(loose.code, 2, 'a key others can read is refused, not ignored');
  t.match(loose.stderr, /can be read by other users \(mode 640\)/);
});

t.test('a run with AUDIT_HMAC_KEY_FILE signs every line and never writes the key', async (t) => {
  const sandbox = makeRunbookEnv(t);
  const bytes = randomBytes(32);
  const file = keyFile(sandbox.dir, bytes);
  const out = await execute(markerRunbook(sandbox), sandbox, ['--dry-run'], {
    env: { AUDIT_HMAC_KEY_FILE: file },
  });
  t.equal(out.code, 0, out.stderr);
  t.ok(out.entries.length > 3);
  t.ok(
    out.entries.every((e) => typeof e.hmac === 'string'),
    'every line is signed',
  );
  const text = readFileSync(sandbox.auditLog);
  for (const rendering of [bytes.toString('hex'), bytes.toString('base64')]) {
    t.notOk(text.includes(rendering), 'the key is not in the log');
  }
  t.match(await verifyAuditLog(sandbox.auditLog, { hmacKey: bytes }), { ok: true });

  chmodSync(file, 0o644);
  const refused = await execute(markerRunbook(sandbox), sandbox, [], {
    env: { AUDIT_HMAC_KEY_FILE: file },
  });
  t.equal(refused.code, 2);
  t.match(refused.stderr, /AUDIT_HMAC_KEY_FILE .* can be read by other users .* Nothing was run/);
});
