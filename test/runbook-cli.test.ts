// The engine as an operator meets it: a runbook file run as a real child process, with real
// kubectl reading the context, real exit codes and real signals.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { readAuditEntries } from '../lib/audit.ts';
import type { RunSummary } from '../lib/runbook.ts';
import { LOADER, REPO, runCli, startCli, withoutCoverage } from './helpers/run-cli.ts';
import { makeRunbookEnv } from './helpers/runbook-env.ts';

const SCRIPT = join(REPO, 'test/fixtures/runbooks/markers.ts');
const PROGRAM = './test/fixtures/runbooks/markers.ts';
const ALL = ['--yes', '--confirm', 'old-redis'];

t.test('--help loads neither client-node, ioredis, zx nor the settings', async (t) => {
  const sandbox = makeRunbookEnv(t);
  const trace = join(sandbox.dir, 'imports.txt');
  writeFileSync(trace, '');
  const { spawnSync } = await import('node:child_process');
  const result = spawnSync(
    process.execPath,
    [
      '--import',
      LOADER,
      '--import',
      join(REPO, 'test/fixtures/trace-imports.mjs'),
      SCRIPT,
      '--help',
    ],
    {
      cwd: REPO,
      env: withoutCoverage({ ...sandbox.env, TRACE_IMPORTS: trace, REDIS_PORT: 'abc' }),
      encoding: 'utf8',
    },
  );
  t.equal(result.status, 0, result.stderr);
  t.match(result.stdout, /^99-markers: Markers \(test fixture\)/);
  const loaded = readFileSync(trace, 'utf8');
  t.match(loaded, /lib\/runbook\.ts/, 'the trace saw the engine load');
  for (const heavy of [
    '@kubernetes/client-node',
    'ioredis',
    '/zx/',
    'dotenv',
    'lib/config.ts',
    'lib/shell.ts',
    'lib/run-session.ts',
    '@inquirer',
  ]) {
    t.notOk(loaded.includes(heavy), `${heavy} is not loaded by --help`);
  }
});

t.test('an unknown flag exits 2 with a usage line', async (t) => {
  const sandbox = makeRunbookEnv(t);
  const out = await runCli(SCRIPT, ['--dryrun'], { env: sandbox.env });
  t.equal(out.code, 2);
  t.equal(out.stdout, '');
  t.match(out.stderr, /Unknown option '--dryrun'/);
  t.match(out.stderr, /usage: \.\/test\/fixtures\/runbooks\/markers\.ts \[--help\]/);
  t.notMatch(out.stderr, /\n\s+at /, 'no stack trace');
});

t.test('a context mismatch exits 2 before any step runs', async (t) => {
  const sandbox = makeRunbookEnv(t, 'other-ctx');
  const out = await runCli(SCRIPT, ALL, { env: sandbox.env });
  t.equal(out.code, 2);
  t.match(out.stderr, /current kube context is "other-ctx" but KUBE_CONTEXT pins "test-ctx"/);
  t.notOk(existsSync(join(sandbox.dir, 'one')));
  const entries = await readAuditEntries(sandbox.auditLog);
  t.notOk(
    entries.some((e) => e.step !== null),
    'no step was started',
  );
});

t.test('a failing step exits 1 with its undo hint and a resume command that works', async (t) => {
  const sandbox = makeRunbookEnv(t);
  const failed = await runCli(SCRIPT, ALL, { env: { ...sandbox.env, FIXTURE_FAIL: 'T002' } });
  t.equal(failed.code, 1);
  t.match(failed.stderr, /T002 broke on purpose/);
  t.match(failed.stderr, /undo: rm marker two/);
  const resume = /resume: (\S+) --from (T002)\n/.exec(failed.stderr);
  t.ok(resume, 'the resume command is printed');
  t.equal(resume?.[1], PROGRAM);

  const resumed = await runCli(SCRIPT, [...ALL, '--from', 'T002', '--json'], { env: sandbox.env });
  t.equal(resumed.code, 0, resumed.stderr);
  const summary = JSON.parse(resumed.stdout) as RunSummary;
  t.same(
    summary.steps.map((s) => s.status),
    ['skipped', 'skipped', 'ok', 'ok'],
  );
});

t.test('--json prints one summary object on stdout and progress on stderr', async (t) => {
  const sandbox = makeRunbookEnv(t);
  const out = await runCli(SCRIPT, [...ALL, '--json', '--shout'], { env: sandbox.env });
  t.equal(out.code, 0, out.stderr);
  const summary = JSON.parse(out.stdout) as RunSummary;
  t.match(summary, {
    runbook: '99-markers',
    dry_run: false,
    outcome: 'ok',
    audit_log: sandbox.auditLog,
    steps: [
      { id: 'P01', title: 'Check prerequisites', status: 'ok' },
      { id: 'T001', status: 'ok' },
      { id: 'T002', status: 'ok' },
      { id: 'T003', status: 'ok' },
    ],
  });
  t.match(out.stderr, /SHOUTING/);
  t.match(out.stderr, /✔ T003 {2}Create marker three {2}ok/);
});

t.test('a closed gate exits 3; --override-gate runs and is audited', async (t) => {
  const sandbox = makeRunbookEnv(t);
  const env = { ...sandbox.env, FIXTURE_GATE: 'closed' };
  const closed = await runCli(SCRIPT, ALL, { env });
  t.equal(closed.code, 3);
  t.match(closed.stderr, /gate window is closed: the validation window has 3h left/);
  t.notOk(existsSync(join(sandbox.dir, 'one')));

  const overridden = await runCli(
    SCRIPT,
    [...ALL, '--override-gate', 'checked the metrics by hand'],
    { env },
  );
  t.equal(overridden.code, 0, overridden.stderr);
  t.ok(existsSync(join(sandbox.dir, 'three')));
  const entries = await readAuditEntries(sandbox.auditLog);
  t.match(
    entries.find((e) => e.outcome === 'overridden'),
    {
      event: 'gate',
      detail: { gate: 'window', override_reason: 'checked the metrics by hand' },
    },
  );
});

t.test('a lock held by a live run exits 4', async (t) => {
  const sandbox = makeRunbookEnv(t);
  mkdirSync(join(sandbox.dir, 'logs'), { recursive: true });
  const now = Date.now();
  writeFileSync(
    join(sandbox.dir, 'logs', 'run.lock'),
    JSON.stringify({
      runId: 'busy-run',
      runbook: '02-deploy',
      operator: 'carol',
      host: hostname(),
      pid: process.pid,
      acquiredAt: new Date(now).toISOString(),
      expiresAt: new Date(now + 600_000).toISOString(),
    }),
  );
  const out = await runCli(SCRIPT, ALL, { env: sandbox.env });
  t.equal(out.code, 4);
  t.match(out.stderr, /locked: run busy-run of 02-deploy by carol@/);
  t.notOk(existsSync(join(sandbox.dir, 'one')));
});

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  t.test(
    `${signal} during a step: exit 130, run-end interrupted, and a re-run resumes`,
    async (t) => {
      const sandbox = makeRunbookEnv(t);
      const running = startCli(SCRIPT, ALL, { env: { ...sandbox.env, FIXTURE_BLOCK: 'T002' } });
      t.teardown(() => {
        if (running.child.exitCode === null) running.child.kill('SIGKILL');
      });
      await running.waitForStderr(/T002 waiting/);
      running.child.kill(signal);
      const out = await running.result;
      t.equal(out.code, 130, out.stderr);
      t.match(out.stderr, /resume: \S+ --from T002/);
      const entries = await readAuditEntries(sandbox.auditLog);
      t.match(entries.at(-1), { event: 'run-end', outcome: 'interrupted' });
      t.match(
        entries.find((e) => e.event === 'step-failed'),
        { step: 'T002', outcome: 'interrupted' },
      );
      t.ok(existsSync(join(sandbox.dir, 'one')));
      t.notOk(existsSync(join(sandbox.dir, 'two')));
      t.notOk(existsSync(join(sandbox.dir, 'logs', 'run.lock')), 'the lock was released');

      const again = await runCli(SCRIPT, [...ALL, '--json'], { env: sandbox.env });
      t.equal(again.code, 0, again.stderr);
      t.same(
        (JSON.parse(again.stdout) as RunSummary).steps.map((s) => s.status),
        ['ok', 'verified-done', 'ok', 'ok'],
      );
    },
  );
}
