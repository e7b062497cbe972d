import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import {
  appendFileSync,
  existsSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import {
  type AuditEntry,
  AuditLog,
  GENESIS_HASH,
  gitRevision,
  readAuditEntries,
  readAuditLog,
  settledRead,
  verifyAuditLog,
} from '../../lib/audit/audit.ts';
import { filterEntries, formatAuditTable, parseSince } from '../../lib/audit/audit-view.ts';
import { REPO_ROOT, TS_LOADER } from '../../lib/config.ts';
import { clearSecretsForTests, registerSecret } from '../../lib/mask.ts';
import { withoutCoverage } from '../helpers/run-cli.ts';
import { waitUntil } from '../helpers/wait.ts';

const AUDIT_CLI = join(REPO_ROOT, 'runbooks/audit.mts');

// Every log, lock and fake repository of this file lives under one directory, removed at the end.
const root = mkdtempSync(join(tmpdir(), 'audit-test-'));
t.teardown(() => rmSync(root, { recursive: true, force: true }));

function tempLog(): string {
  return join(mkdtempSync(join(root, 'log-')), 'audit.jsonl');
}

async function logWith(n: number): Promise<string> {
  const path = tempLog();
  const log = new AuditLog(path, {
    run_id: 'run-1',
    runbook: '05-migrate',
    kube_context: 'sandbox',
  });
  for (let i = 1; i <= n; i++) {
    await log.append({ event: 'step-ok', step: `T0${30 + i}`, outcome: 'ok', duration_ms: i * 10 });
  }
  return path;
}

function lines(path: string): string[] {
  return readFileSync(path, 'utf8').split('\n').filter(Boolean);
}

function writeLines(path: string, rows: string[], trailingNewline = true): void {
  writeFileSync(path, rows.join('\n') + (trailingNewline ? '\n' : ''));
}

t.test('entries chain: seq counts from 1, each prev is the previous hash', async (t) => {
  const path = await logWith(3);
  const entries = await readAuditEntries(path);
  t.same(
    entries.map((e) => e.seq),
    [1, 2, 3],
  );
  t.equal(entries[0]?.prev, GENESIS_HASH);
  t.equal(entries[1]?.prev, entries[0]?.hash);
  t.equal(entries[2]?.prev, entries[1]?.hash);
  t.match(entries[0], {
    run_id: 'run-1',
    runbook: '05-migrate',
    kube_context: 'sandbox',
    event: 'step-ok',
    dry_run: false,
    host: String,
    operator: String,
  });
  t.same(
    Object.keys(entries[0] ?? {}),
    [
      'seq',
      'ts',
      'run_id',
      'runbook',
      'step',
      'event',
      'risk',
      'command',
      'dry_run',
      'operator',
      'host',
      'kube_context',
      'git_rev',
      'outcome',
      'duration_ms',
      'detail',
      'prev',
      'hash',
    ],
    'the fields docs/audit-log.md names, in order',
  );
  t.same(await verifyAuditLog(path), { ok: true, entries: 3 });
});

t.test('an absent log lists nothing; verifying it is an error, not "intact"', async (t) => {
  const path = join(mkdtempSync(join(root, 'none-')), 'audit.jsonl');
  t.same(await readAuditEntries(path), []);
  await t.rejects(verifyAuditLog(path), {
    name: 'AuditLogError',
    message: /no audit log at .*audit\.jsonl/,
  });
});

t.test('tampering is detected and the first bad line is named', async (t) => {
  t.test('an edited line', async (t) => {
    const path = await logWith(4);
    const rows = lines(path);
    rows[1] = (rows[1] as string).replace('"outcome":"ok"', '"outcome":"failed"');
    writeLines(path, rows);
    t.match(await verifyAuditLog(path), { ok: false, line: 2, seq: 2, reason: 'edited' });
  });
  t.test('an edited line whose own hash was recomputed breaks the next link', async (t) => {
    const path = await logWith(4);
    const entries = await readAuditEntries(path);
    const forged = { ...entries[1], outcome: 'forged' } as Record<string, unknown>;
    delete forged.hash;
    const { hashLine } = await import('../../lib/audit/audit.ts');
    const rows = lines(path);
    rows[1] = JSON.stringify({
      ...forged,
      hash: hashLine(String(forged.prev), JSON.stringify(forged)),
    });
    writeLines(path, rows);
    t.match(await verifyAuditLog(path), { ok: false, line: 3, reason: 'chain-broken' });
  });
  t.test('a deleted line', async (t) => {
    const path = await logWith(5);
    const rows = lines(path);
    rows.splice(2, 1);
    writeLines(path, rows);
    t.match(await verifyAuditLog(path), {
      ok: false,
      line: 3,
      seq: 4,
      reason: 'missing',
      message: /seq 3 is missing/,
    });
  });
  t.test('the first line deleted', async (t) => {
    const path = await logWith(3);
    writeLines(path, lines(path).slice(1));
    t.match(await verifyAuditLog(path), { ok: false, line: 1, reason: 'missing' });
  });
  t.test('two lines swapped', async (t) => {
    const path = await logWith(5);
    const rows = lines(path);
    [rows[2], rows[3]] = [rows[3] as string, rows[2] as string];
    writeLines(path, rows);
    t.match(await verifyAuditLog(path), { ok: false, line: 3, seq: 4, reason: 'reordered' });
  });
  t.test('the last line truncated', async (t) => {
    const path = await logWith(3);
    const text = readFileSync(path, 'utf8');
    writeFileSync(path, text.slice(0, text.length - 40));
    t.match(await verifyAuditLog(path), { ok: false, line: 3, reason: 'truncated' });
  });
  t.test(
    'a line read while its writer is appending it is waited for, not called cut short',
    async (t) => {
      const path = await logWith(3);
      const whole = readFileSync(path, 'utf8');
      // what a read sees halfway through an append: part of the line, the writer's lock held
      writeFileSync(path, whole.slice(0, -40));
      writeFileSync(`${path}.lock`, JSON.stringify({ pid: process.pid, host: hostname() }));
      setTimeout(() => {
        appendFileSync(path, whole.slice(-40));
        unlinkSync(`${path}.lock`);
      }, 100);
      const [verdict, contents] = await Promise.all([verifyAuditLog(path), readAuditLog(path)]);
      t.match(verdict, { ok: true });
      t.equal(contents.entries.length, 3);
      t.equal(contents.unreadableLines, 0);
    },
  );
  t.test(
    'a read begun before the writer finished, ending after it let go, is taken again',
    async (t) => {
      // The writer completes its line and releases the lock while a read is under way: that
      // read still holds the partial line. Looked at after the read, the lock was gone and the
      // partial line passed for the settled log.
      const whole = Buffer.from('{"seq":1}\n{"seq":2}\n');
      const partial = whole.subarray(0, whole.length - 4);
      let writing = true;
      let reads = 0;
      const read = async () => {
        reads++;
        if (reads === 2) writing = false;
        return reads <= 2 ? partial : whole;
      };
      t.same(await settledRead(read, () => writing), whole);
      t.equal(reads, 3);
    },
  );
  t.test('a line that is not JSON', async (t) => {
    const path = await logWith(3);
    const rows = lines(path);
    rows.splice(1, 0, 'hello');
    writeLines(path, rows);
    t.match(await verifyAuditLog(path), { ok: false, line: 2, reason: 'not-json' });
  });
  t.end();
});

t.test(
  'a damaged log is not appended to: the runbook stops instead of writing blind',
  async (t) => {
    const path = await logWith(2);
    const text = readFileSync(path, 'utf8');
    writeFileSync(path, text.slice(0, -10));
    await t.rejects(new AuditLog(path).append({ event: 'run-start' }), {
      name: 'AuditLogError',
      message: /partial line.*audit\.mts verify/,
    });
  },
);

t.test('a registered secret never reaches the file', async (t) => {
  t.teardown(clearSecretsForTests);
  registerSecret('pw-Zq8yRkT3mX');
  const path = tempLog();
  await new AuditLog(path, { run_id: 'r' }).append({
    event: 'command',
    command: 'redis-cli -a pw-Zq8yRkT3mX PING',
    detail: {
      env: { REDISCLI_AUTH: 'pw-Zq8yRkT3mX' },
      b64: Buffer.from('pw-Zq8yRkT3mX').toString('base64'),
    },
  });
  const text = readFileSync(path, 'utf8');
  t.notMatch(text, 'pw-Zq8yRkT3mX');
  t.notMatch(text, Buffer.from('pw-Zq8yRkT3mX').toString('base64'));
  t.match(text, 'redis-cli -a *** PING');
  t.same(
    await verifyAuditLog(path),
    { ok: true, entries: 1 },
    'masked before hashing, so it verifies',
  );
});

t.test('2 processes × 500 concurrent appends give 1000 intact, unshuffled lines', async (t) => {
  const path = tempLog();
  const writer = (id: number) =>
    new Promise<number>((resolve, reject) => {
      const child = spawn(
        process.execPath,
        [
          '--import',
          TS_LOADER,
          join(REPO_ROOT, 'test/fixtures/audit-writer.ts'),
          path,
          '500',
          String(id),
        ],
        { stdio: ['ignore', 'inherit', 'inherit'], env: withoutCoverage() },
      );
      child.on('error', reject);
      child.on('exit', (code) => resolve(code ?? -1));
    });
  t.same(await Promise.all([writer(1), writer(2)]), [0, 0]);
  t.same(await verifyAuditLog(path), { ok: true, entries: 1000 });
  const entries = await readAuditEntries(path);
  for (const id of [1, 2]) {
    const own = entries.filter((e) => e.step === `W${id}`).map((e) => e.command);
    t.same(
      own,
      Array.from({ length: 500 }, (_, i) => `echo ${i}`),
      `writer ${id} in its own order`,
    );
  }
});

t.test('3 writers that all find a dead writer’s lock take it over one at a time', async (t) => {
  const path = tempLog();
  const dead = spawnSync('true').pid as number;
  writeFileSync(`${path}.lock`, `${dead}@${hostname()}`);
  const writers = [1, 2, 3].map(
    (id) =>
      new Promise<number>((resolve, reject) => {
        const child = spawn(
          process.execPath,
          [
            '--import',
            TS_LOADER,
            join(REPO_ROOT, 'test/fixtures/audit-writer.ts'),
            path,
            '100',
            String(id),
          ],
          { stdio: ['ignore', 'inherit', 'inherit'], env: withoutCoverage() },
        );
        child.on('error', reject);
        child.on('exit', (code) => resolve(code ?? -1));
      }),
  );
  t.same(await Promise.all(writers), [0, 0, 0]);
  t.same(await verifyAuditLog(path), { ok: true, entries: 300 });
  const { readdirSync } = await import('node:fs');
  const { dirname } = await import('node:path');
  t.same(readdirSync(dirname(path)), ['audit.jsonl'], 'no lock or moved-aside lock is left behind');
});

t.test('list filters by runbook, step, run and since, and renders a table', async (t) => {
  const path = tempLog();
  await new AuditLog(path, { run_id: 'aaaa1111', runbook: '05-migrate' }).append({
    event: 'step-ok',
    step: 'T035',
    command: 'kubectl scale deployment beersystem --replicas=0',
  });
  await new AuditLog(path, { run_id: 'bbbb2222', runbook: '06-decommission' }).append({
    event: 'gate',
    step: 'T044',
    outcome: 'closed',
    dry_run: true,
  });
  const entries = await readAuditEntries(path);
  t.same(
    filterEntries(entries, { runbook: '05' }).map((e) => e.seq),
    [1],
  );
  t.same(
    filterEntries(entries, { step: 't044' }).map((e) => e.seq),
    [2],
  );
  t.same(
    filterEntries(entries, { run: 'bbbb' }).map((e) => e.seq),
    [2],
  );
  t.same(filterEntries(entries, { since: new Date(Date.now() + 60_000) }), []);
  t.equal(filterEntries(entries, { since: parseSince('1h') }).length, 2);
  t.equal(parseSince('yesterday'), undefined);
  t.equal(parseSince('2026-11-22T10:00:00Z')?.toISOString(), '2026-11-22T10:00:00.000Z');
  const table = formatAuditTable(entries, 120);
  t.match(table, /^SEQ\s+TIME \(UTC\)\s+RUN\s+RUNBOOK/);
  t.match(table, /aaaa1111\s+05-migrate\s+T035\s+step-ok/);
  t.match(table, /gate \(dry\)\s+closed/);
  t.equal(formatAuditTable([]), 'No audit entries match.');
});

t.test("the table shows a failed step's error whole, on its own line", async (t) => {
  const error = `tofu apply failed: ${'x'.repeat(150)} the end of the error`;
  const entry = {
    v: 1,
    seq: 1,
    ts: '2026-12-06T02:44:44.000Z',
    run_id: '20261206T024400Z-aaaa11',
    runbook: '05-migrate',
    step: 'T039',
    event: 'step-failed',
    outcome: 'failed',
    detail: { error },
  } as unknown as AuditEntry;
  const table = formatAuditTable([entry], 100);
  t.match(table, /T039\s+step-failed\s+failed/);
  t.match(table, `\n    error: ${error}`, 'not cut at the width of the table');
});

t.test(
  'audit.mts: --help, list --json, verify intact and broken, from another directory',
  async (t) => {
    const path = await logWith(3);
    const run = (args: string[]) =>
      spawnSync(AUDIT_CLI, args, { encoding: 'utf8', cwd: tmpdir(), env: withoutCoverage() });
    const help = run(['--help']);
    t.equal(help.status, 0);
    t.match(help.stdout, /Usage: \.\/runbooks\/audit\.mts/);
    const listed = run(['--log', path, '--step', 'T032', '--json']);
    t.equal(listed.status, 0);
    t.same(
      JSON.parse(listed.stdout).map((e: { seq: number }) => e.seq),
      [2],
    );
    t.match(run(['list', '--log', path]).stdout, /T031/);
    const ok = run(['verify', '--log', path]);
    t.equal(ok.status, 0);
    t.match(ok.stdout, /intact: 3 entries/);
    const rows = lines(path);
    rows[1] = (rows[1] as string).replace('T032', 'T099');
    writeLines(path, rows);
    const broken = run(['verify', '--log', path]);
    t.equal(broken.status, 1);
    t.match(broken.stdout, /line 2 \(seq 2\): edited/);
    const bad = run(['list', '--since', 'soon', '--log', path]);
    t.equal(bad.status, 2);
    t.match(bad.stderr, /--since "soon"/);
  },
);

t.test(
  'audit.mts list warns when lines of the log cannot be read, and lists the rest',
  async (t) => {
    const path = await logWith(3);
    const rows = lines(path);
    writeLines(path, [rows[0] as string, '{not json', rows[1] as string, rows[2] as string]);
    const run = spawnSync(AUDIT_CLI, ['list', '--log', path, '--json'], {
      encoding: 'utf8',
      cwd: tmpdir(),
      env: withoutCoverage(),
    });
    t.equal(run.status, 0);
    t.same(
      JSON.parse(run.stdout).map((e: { seq: number }) => e.seq),
      [1, 2, 3],
    );
    t.match(
      run.stderr,
      /^warning: 1 line\(s\) of .*audit\.jsonl are not readable entries and are not listed; run \.\/runbooks\/audit\.mts verify/,
    );
    const intact = spawnSync(AUDIT_CLI, ['list', '--log', await logWith(1)], {
      encoding: 'utf8',
      cwd: tmpdir(),
      env: withoutCoverage(),
    });
    t.equal(intact.stderr, '', 'no warning for an intact log');
  },
);

t.test(
  'audit.mts list into a pipe that closes early (| head) ends quietly with exit 0',
  async (t) => {
    const path = tempLog();
    // Hash-chained or not does not matter to list; what matters is more output than a pipe holds.
    const row = (seq: number) =>
      JSON.stringify({
        seq,
        ts: '2026-11-22T10:00:00.000Z',
        runbook: '05-migrate',
        event: 'step-ok',
        command: `kubectl get pods ${'x'.repeat(200)}`,
      });
    writeFileSync(path, `${Array.from({ length: 3000 }, (_, i) => row(i + 1)).join('\n')}\n`);
    for (const args of [['list'], ['list', '--json']]) {
      const child = spawn(AUDIT_CLI, [...args, '--log', path], {
        cwd: tmpdir(),
        env: withoutCoverage(),
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stderr = '';
      child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
        stderr += chunk;
      });
      child.stdout.once('data', () => child.stdout.destroy());
      const [code] = (await once(child, 'close')) as [number | null];
      t.equal(code, 0, `${args.join(' ')} exits 0`);
      t.equal(stderr, '', 'no EPIPE stack trace');
    }
  },
);

t.test('a lock left by a dead process is taken over; a live one is waited for', async (t) => {
  const { spawnSync: run } = await import('node:child_process');
  const { hostname } = await import('node:os');
  const path = tempLog();
  const dead = run('true').pid as number;
  writeFileSync(`${path}.lock`, `${dead}@${hostname()}`);
  const entry = await new AuditLog(path).append({ event: 'run-start' });
  t.equal(entry.seq, 1, 'appended after removing the dead writer’s lock');
  t.notOk(existsSync(`${path}.lock`), 'the lock is released after the append');

  writeFileSync(`${path}.lock`, `${process.pid}@${hostname()}`);
  // Every time the waiter finds the lock taken it asks whether the holder (this process) lives:
  // once it has asked three times it has had three chances to append, and must have taken none.
  const kill = process.kill;
  let holderChecks = 0;
  process.kill = ((pid: number, signal?: string | number) => {
    if (pid === process.pid && signal === 0) holderChecks++;
    return kill.call(process, pid, signal);
  }) as typeof process.kill;
  t.teardown(() => {
    process.kill = kill;
  });
  let appended = false;
  const waiting = new AuditLog(path).append({ event: 'run-end' }).then((entry) => {
    appended = true;
    return entry;
  });
  await waitUntil('the waiter to find the live lock three times', () => holderChecks >= 3);
  process.kill = kill;
  t.notOk(appended, 'no append while a live process holds the lock');
  t.equal(readFileSync(path, 'utf8').trim().split('\n').length, 1, 'the log is untouched');
  unlinkSync(`${path}.lock`);
  t.equal((await waiting).seq, 2, 'appended once the live holder let go');
});

t.test('a log whose last line is complete but not an entry is not appended to', async (t) => {
  const path = tempLog();
  writeFileSync(path, '{"hello":"world"}\n');
  await t.rejects(new AuditLog(path).append({ event: 'run-start' }), {
    message: /last line .* is not an audit entry/,
  });
});

t.test('gitRevision reads HEAD through a loose ref, a packed ref or a detached head', async (t) => {
  const { mkdirSync } = await import('node:fs');
  const repo = mkdtempSync(join(root, 'git-'));
  mkdirSync(join(repo, '.git/refs/heads'), { recursive: true });
  const sha = 'abcdef0123456789abcdef0123456789abcdef01';
  writeFileSync(join(repo, '.git/HEAD'), 'ref: refs/heads/main\n');
  writeFileSync(join(repo, '.git/refs/heads/main'), `${sha}\n`);
  t.equal(gitRevision(repo), 'abcdef012345');
  unlinkSync(join(repo, '.git/refs/heads/main'));
  writeFileSync(join(repo, '.git/packed-refs'), `# pack-refs\n${sha} refs/heads/main\n`);
  t.equal(gitRevision(repo), 'abcdef012345');
  writeFileSync(join(repo, '.git/HEAD'), `${sha}\n`);
  t.equal(gitRevision(repo), 'abcdef012345');
  t.equal(gitRevision(join(repo, 'nowhere')), null);
  // a linked worktree: .git is a file naming its git dir, whose commondir holds the refs
  writeFileSync(join(repo, '.git/HEAD'), 'ref: refs/heads/main\n');
  writeFileSync(join(repo, '.git/refs/heads/main'), `${sha}\n`);
  const worktree = mkdtempSync(join(root, 'worktree-'));
  const ownDir = join(repo, '.git/worktrees/wt');
  mkdirSync(ownDir, { recursive: true });
  writeFileSync(join(ownDir, 'HEAD'), 'ref: refs/heads/main\n');
  writeFileSync(join(ownDir, 'commondir'), '../..\n');
  writeFileSync(join(worktree, '.git'), `gitdir: ${ownDir}\n`);
  t.equal(gitRevision(worktree), 'abcdef012345', 'a linked worktree');
  t.equal(gitRevision(REPO_ROOT)?.length, 12, 'this repository');
});

t.test('resolveAuditLogPath: --log wins, else AUDIT_LOG from the settings', async (t) => {
  const { resolveAuditLogPath } = await import('../../lib/audit/audit-cli.ts');
  t.equal(resolveAuditLogPath('/tmp/x/audit.jsonl', undefined), '/tmp/x/audit.jsonl');
  const envPath = join(mkdtempSync(join(root, 'env-')), 'env');
  writeFileSync(envPath, 'AUDIT_LOG=/var/tmp/elsewhere.jsonl\n');
  const saved = process.env.AUDIT_LOG;
  delete process.env.AUDIT_LOG;
  t.teardown(() => {
    if (saved !== undefined) process.env.AUDIT_LOG = saved;
  });
  t.equal(resolveAuditLogPath(undefined, envPath), '/var/tmp/elsewhere.jsonl');
});

function spawnWriter(path: string, count: number, id: number): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [
        '--import',
        TS_LOADER,
        join(REPO_ROOT, 'test/fixtures/audit-writer.ts'),
        path,
        String(count),
        String(id),
      ],
      { stdio: ['ignore', 'inherit', 'inherit'], env: withoutCoverage() },
    );
    child.on('error', reject);
    child.on('exit', (code) => resolve(code ?? -1));
  });
}

t.test(
  'item 2: dead writers’ locks appearing while 8 writers append never fork the chain',
  async (t) => {
    const path = tempLog();
    const lockPath = `${path}.lock`;
    const dead = spawnSync('true').pid as number;
    // A writer that takes the free lock and is killed before releasing it, again and again.
    let running = true;
    let injected = 0;
    const injector = (async () => {
      while (running) {
        try {
          writeFileSync(lockPath, `${dead}@${hostname()}`, { flag: 'wx' });
          injected++;
        } catch {
          // held by a live writer at this moment
        }
        await new Promise((resolve) => setImmediate(resolve));
      }
    })();
    const writers = [1, 2, 3, 4, 5, 6, 7, 8].map((id) => spawnWriter(path, 40, id));
    const codes = await Promise.all(writers);
    running = false;
    await injector;
    t.same(codes, [0, 0, 0, 0, 0, 0, 0, 0], 'every writer finished');
    t.ok(injected > 8, `dead locks were injected during the appends (${injected})`);
    t.same(await verifyAuditLog(path), { ok: true, entries: 320 });
    const entries = await readAuditEntries(path);
    t.same(
      entries.map((e) => e.seq),
      Array.from({ length: 320 }, (_, i) => i + 1),
      'seq is contiguous: no two lines share a sequence number',
    );
    t.equal(new Set(entries.map((e) => e.prev)).size, 320, 'no two lines share a prev (no fork)');
  },
);

t.test(
  'item 2: a writer outlasts the stale time, so a live-but-stuck lock is taken over, not given up on',
  async (t) => {
    const { AUDIT_LOCK_TIMING } = await import('../../lib/audit/audit.ts');
    t.ok(
      AUDIT_LOCK_TIMING.giveUpMs > AUDIT_LOCK_TIMING.staleMs,
      `give-up ${AUDIT_LOCK_TIMING.giveUpMs} ms > stale ${AUDIT_LOCK_TIMING.staleMs} ms`,
    );
    const path = tempLog();
    const lockPath = `${path}.lock`;
    // A live process holds the lock and stopped making progress: stale once older than staleMs.
    const holder = spawn('sleep', ['60'], { stdio: 'ignore' });
    t.teardown(() => holder.kill('SIGKILL'));
    writeFileSync(lockPath, `${holder.pid}@${hostname()}`);
    const { utimesSync } = await import('node:fs');
    const old = (Date.now() - AUDIT_LOCK_TIMING.staleMs - 1_000) / 1000;
    utimesSync(lockPath, old, old);
    const entry = await new AuditLog(path).append({ event: 'run-start' });
    t.equal(entry.seq, 1);
    t.notOk(existsSync(lockPath), 'released');
  },
);

t.test('item 2: release removes only the writer’s own lock', async (t) => {
  const path = tempLog();
  const lockPath = `${path}.lock`;
  const log = new AuditLog(path);
  // A writer whose lock was taken over (it was stuck for longer than the stale time) must not
  // delete the new holder's lock when it finally lets go.
  const other = `${process.pid}@${hostname()}`;
  // detail.toJSON runs while the entry is serialised, inside the writer's critical section.
  const appended = log.append({
    event: 'run-start',
    detail: {
      toJSON() {
        writeFileSync(lockPath, other);
        return 'replaced';
      },
    },
  });
  await t.rejects(appended, { name: 'AuditLogError', message: /lost the lock/ });
  t.equal(readFileSync(lockPath, 'utf8'), other, 'the other holder’s lock is still there');
  t.equal(existsSync(path) ? readFileSync(path, 'utf8') : '', '', 'nothing was written');
});

t.test(
  'item 6: an empty, half-written, null, [] or "x" lock is judged by its age, then taken over',
  async (t) => {
    const { AUDIT_LOCK_TIMING } = await import('../../lib/audit/audit.ts');
    const { utimesSync } = await import('node:fs');
    for (const content of ['', '{"pid":12', 'null', '[]', '"x"']) {
      const path = tempLog();
      const lockPath = `${path}.lock`;
      writeFileSync(lockPath, content);
      // It turns stale in 300 ms: a writer that took it over at once would not have waited.
      const almost = (Date.now() - AUDIT_LOCK_TIMING.staleMs + 300) / 1000;
      utimesSync(lockPath, almost, almost);
      const started = Date.now();
      const entry = await new AuditLog(path).append({ event: 'run-start' });
      t.ok(Date.now() - started >= 250, `${JSON.stringify(content)}: waited until it was stale`);
      t.equal(entry.seq, 1, `${JSON.stringify(content)}: then appended`);
      t.notOk(existsSync(lockPath), `${JSON.stringify(content)}: and released`);
    }
  },
);

t.test(
  'item 6: a lock path that is not a file stops the writer with a sentence naming it',
  async (t) => {
    const { mkdirSync } = await import('node:fs');
    const path = tempLog();
    mkdirSync(`${path}.lock`);
    await t.rejects(new AuditLog(path).append({ event: 'run-start' }), {
      name: 'AuditLogError',
      message: /audit log lock .*audit\.jsonl\.lock cannot be used \(EISDIR\).*remove it/,
    });
  },
);

const runAudit = (args: string[]) =>
  spawnSync(AUDIT_CLI, args, { encoding: 'utf8', cwd: tmpdir(), env: withoutCoverage() });

t.test('item 7: verify on a missing log or a directory exits 2 with a sentence', async (t) => {
  const dir = mkdtempSync(join(root, 'verify-'));
  const missing = runAudit(['verify', '--log', join(dir, 'audit.jsonl')]);
  t.equal(missing.status, 2, 'missing log: exit 2');
  t.match(missing.stderr, /^audit: there is no audit log at .*audit\.jsonl/);
  t.notMatch(missing.stdout, /intact/);
  const directory = runAudit(['verify', '--log', dir]);
  t.equal(directory.status, 2, 'a directory: exit 2');
  t.match(directory.stderr, /^audit: the audit log .* cannot be read \(EISDIR\)/);
  t.notMatch(directory.stderr, /\n\s+at /, 'no stack trace');
  const listed = runAudit(['list', '--log', dir]);
  t.equal(listed.status, 2, 'list of a directory: exit 2');
  t.notMatch(listed.stderr, /\n\s+at /, 'no stack trace');
});

t.test(
  'item 7: a repeated key is caught, with or without the hash recomputed over the line',
  async (t) => {
    const path = await logWith(3);
    const rows = lines(path);
    const operator = (JSON.parse(rows[1] as string) as { operator: string }).operator;
    // JSON.parse keeps the last "operator", grep finds the first: readers disagree on who acted.
    rows[1] = (rows[1] as string).replace(
      `"operator":${JSON.stringify(operator)}`,
      `"operator":"mallory","operator":${JSON.stringify(operator)}`,
    );
    writeLines(path, rows);
    t.match(await verifyAuditLog(path), { ok: false, line: 2, seq: 2, reason: 'edited' });

    const { hashLine } = await import('../../lib/audit/audit.ts');
    const raw = rows[1] as string;
    const withoutHash = raw.replace(/,"hash":"[0-9a-f]{64}"\}$/, '}');
    const prev = (JSON.parse(raw) as { prev: string }).prev;
    rows[1] = withoutHash.replace(/\}$/, `,"hash":"${hashLine(prev, withoutHash)}"}`);
    writeLines(path, rows);
    t.match(
      await verifyAuditLog(path),
      { ok: false, line: 2, reason: 'edited', message: /not written the way entries are written/ },
      'a hash recomputed over the raw line still fails: the line is not in canonical form',
    );
  },
);

t.test('item 7: every bad line is reported, the first one in full', async (t) => {
  const path = await logWith(6);
  const rows = lines(path);
  rows[1] = (rows[1] as string).replace('"outcome":"ok"', '"outcome":"failed"');
  rows[3] = (rows[3] as string).replace('"outcome":"ok"', '"outcome":"skipped"');
  rows.splice(5, 0, 'not json at all');
  writeLines(path, rows);
  const result = await verifyAuditLog(path);
  t.match(result, { ok: false, line: 2, reason: 'edited' });
  t.same(result.ok ? [] : result.problems.map((p) => [p.line, p.reason]), [
    [2, 'edited'],
    [4, 'edited'],
    [6, 'not-json'],
  ]);
  const first = runAudit(['verify', '--log', path]);
  t.equal(first.status, 1);
  t.match(first.stdout, /line 2 \(seq 2\): edited/);
  t.match(first.stdout, /and 2 more bad lines \(4, 6\); --all lists them/);
  const all = runAudit(['verify', '--all', '--log', path]);
  t.equal(all.status, 1);
  t.match(
    all.stdout,
    /line 2 \(seq 2\): edited[\s\S]*line 4 \(seq 4\): edited[\s\S]*line 6: not-json/,
  );
});

async function twoRunsOneDay(): Promise<string> {
  const path = tempLog();
  const first = new AuditLog(path, { run_id: '20261130T140118Z-042ddb', runbook: '05-migrate' });
  const second = new AuditLog(path, { run_id: '20261130T151502Z-9c1e7a', runbook: '05-migrate' });
  await first.append({ event: 'run-start' });
  await first.append({ event: 'step-ok', step: 'T035', outcome: 'ok', duration_ms: 7 });
  await second.append({ event: 'run-start' });
  await second.append({ event: 'step-ok', step: 'T035', outcome: 'ok', duration_ms: 9 });
  return path;
}

t.test('issue 15: two runs on the same day show different RUN values', async (t) => {
  const entries = await readAuditEntries(await twoRunsOneDay());
  const table = formatAuditTable(entries, 160);
  const runColumn = table
    .split('\n')
    .slice(1)
    .map((row) => row.split(/\s{2,}/)[2]);
  t.same(runColumn, ['140118-042ddb', '140118-042ddb', '151502-9c1e7a', '151502-9c1e7a']);
});

t.test('issue 15: --run accepts the short form shown in the table, or the suffix', async (t) => {
  const path = await twoRunsOneDay();
  const entries = await readAuditEntries(path);
  for (const run of ['151502-9c1e7a', '9c1e7a', '20261130T151502Z-9c1e7a', '20261130T15']) {
    t.same(
      filterEntries(entries, { run }).map((e) => e.seq),
      [3, 4],
      run,
    );
  }
  t.same(
    filterEntries(entries, { run: '042' }),
    [],
    'a bare fragment of the suffix is not a match',
  );
  const cli = runAudit([
    '--log',
    path,
    '--run',
    '042ddb',
    '--format',
    'tsv',
    '--columns',
    'seq,run,step,event',
  ]);
  t.equal(cli.status, 0, cli.stderr);
  t.equal(
    cli.stdout,
    [
      'SEQ\tRUN\tSTEP\tEVENT',
      '1\t20261130T140118Z-042ddb\t\trun-start',
      '2\t20261130T140118Z-042ddb\tT035\tstep-ok',
      '',
    ].join('\n'),
    'tsv: a header, tab-separated, the full run id',
  );
});

t.test('issue 15: --columns picks the table columns; --json stays the full entries', async (t) => {
  const path = await twoRunsOneDay();
  const table = runAudit(['--log', path, '--columns', 'run,step,took']);
  t.equal(table.status, 0, table.stderr);
  t.match(table.stdout, /^RUN\s+STEP\s+TOOK\n151502-9c1e7a|^RUN\s+STEP\s+TOOK\n140118-042ddb/);
  t.notMatch(table.stdout, /SEQ|EVENT/);
  const json = runAudit(['--log', path, '--run', '9c1e7a', '--json']);
  const entries = JSON.parse(json.stdout) as Array<Record<string, unknown>>;
  t.same(
    entries.map((e) => e.run_id),
    ['20261130T151502Z-9c1e7a', '20261130T151502Z-9c1e7a'],
  );
  t.same(Object.keys(entries[0] ?? {}).length, 18, 'every field of the entry');
  t.same(JSON.parse(runAudit(['--log', path, '--format', 'json']).stdout).length, 4);
  const bad = runAudit(['--log', path, '--columns', 'seq,colour']);
  t.equal(bad.status, 2);
  t.match(
    bad.stderr,
    /unknown column "colour".*seq, time, run, runbook, step, event, outcome, took, detail/,
  );
  const badFormat = runAudit(['--log', path, '--format', 'xml']);
  t.equal(badFormat.status, 2);
  t.match(badFormat.stderr, /--format "xml".*table, tsv or json/);
});

t.test('issue 15: columns parse by name; tsv keeps whole values on one line each', async (t) => {
  const { formatAuditTsv, parseColumns, shortRunId } = await import(
    '../../lib/audit/audit-view.ts'
  );
  t.same(parseColumns(' SEQ, run ,step'), { columns: ['seq', 'run', 'step'] });
  t.same(parseColumns('seq,colour'), { unknown: 'colour' });
  t.same(parseColumns(','), { unknown: ',' });
  t.equal(shortRunId('writer-1'), 'writer-1', 'an id of another shape is shown whole');
  const path = await twoRunsOneDay();
  await new AuditLog(path, { run_id: '20261130T151502Z-9c1e7a' }).append({
    event: 'command',
    command: 'sh -c "a\tb\nc"',
    duration_ms: 1234,
  });
  const tsv = formatAuditTsv(await readAuditEntries(path), ['run', 'took', 'detail']);
  t.equal(tsv.split('\n').at(-1), '20261130T151502Z-9c1e7a\t1234\tsh -c "a b c"');
  t.equal(tsv.split('\n').length, 6, 'a header and one line per entry');
});
