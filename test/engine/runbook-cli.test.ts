// The engine as an operator meets it: a runbook file run as a real child process, with real
// kubectl reading the context, real exit codes and real signals.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { readAuditEntries } from '../../lib/audit/audit.ts';
import { SETTINGS } from '../../lib/config.ts';
import type { RunSummary } from '../../lib/engine/runbook.ts';
import { LOADER, REPO, runCli, startCli, withoutCoverage } from '../helpers/run-cli.ts';
import { makeRunbookEnv } from '../helpers/runbook-env.ts';

const SCRIPT = join(REPO, 'examples/example-runbook.ts');
// A real run tries the cluster's Lease first (lib/lock/lease-lock.ts), loading client-node (its
// bundle) in every child process: a dozen child runs on two shared cores need more than 120 s.
t.setTimeout(600_000);

async function until(condition: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** Alive and not a zombie (an orphan's zombie may wait long for a reaper in a container). */
function liveProcess(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/^[ZX]/.test(stat.slice(stat.lastIndexOf(')') + 2));
  } catch {
    return false;
  }
}
const PROGRAM = './examples/example-runbook.ts';
const ALL = ['--yes', '--confirm', 'old-redis'];

t.test('--help loads neither client-node, ioredis, zx nor the settings', async (t) => {
  const sandbox = makeRunbookEnv(t);
  const trace = join(sandbox.dir, 'imports.txt');
  writeFileSync(trace, '');
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
  t.match(loaded, /lib\/engine\/runbook\.ts/, 'the trace saw the engine load');
  for (const heavy of [
    '@kubernetes/client-node',
    '.cache/redis-shared-runbooks/client-node-',
    'ioredis',
    '/zx/',
    'dotenv',
    'lib/config.ts',
    'lib/engine/shell.ts',
    'lib/engine/run-session.ts',
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
  t.match(out.stderr, /usage: \.\/examples\/example-runbook\.ts \[--help\]/);
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

/**
 * A printed line run as an operator pastes it: by a shell, from the repository, in an
 * environment that has none of the settings (only the fixture's own FIXTURE_DIR), with the
 * answers the line leaves to the operator added at its end.
 */
function paste(line: string, dir: string, answers: readonly string[] = ALL) {
  return spawnSync('sh', ['-c', `${line} ${answers.join(' ')}`], {
    cwd: REPO,
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      FIXTURE_DIR: dir,
      _TAPJS_PROCESSINFO_COVERAGE_: '0',
    },
    encoding: 'utf8',
  });
}

/** The lines after `undo:` and `resume:` in a failed run's output. */
function printedLines(stderr: string): { undo: string; resume: string } {
  return {
    undo: /undo: .*or remove every marker: (.*)$/m.exec(stderr)?.[1] ?? '',
    resume: /resume: (.*)$/m.exec(stderr)?.[1] ?? '',
  };
}

t.test(
  'a failing step exits 1; its undo and resume lines, pasted as printed, act on the same cluster and log (settings in --env-file)',
  async (t) => {
    const sandbox = makeRunbookEnv(t);
    const envFile = join(sandbox.dir, 'settings.env');
    writeFileSync(
      envFile,
      `KUBE_CONTEXT=test-ctx\nKUBECONFIG=${sandbox.kubeconfig}\nAUDIT_LOG=${sandbox.auditLog}\n`,
    );
    const failed = await runCli(SCRIPT, [...ALL, '--env-file', envFile], {
      env: { FIXTURE_DIR: sandbox.dir, FIXTURE_FAIL: 'T002' },
    });
    t.equal(failed.code, 1);
    t.match(failed.stderr, /T002 broke on purpose/);
    const { undo, resume } = printedLines(failed.stderr);
    t.equal(resume, `${PROGRAM} --from T002 --env-file ${envFile}`);
    t.equal(undo, `${PROGRAM} --rollback --env-file ${envFile}`);

    const resumed = paste(resume, sandbox.dir);
    t.equal(resumed.status, 0, resumed.stderr);
    t.ok(existsSync(join(sandbox.dir, 'three')), 'the resume finished the markers');
    const undone = paste(undo, sandbox.dir, ['--yes']);
    t.equal(undone.status, 0, undone.stderr);
    t.notOk(existsSync(join(sandbox.dir, 'one')), 'the undo line removed them');
    const runs = (await readAuditEntries(sandbox.auditLog)).filter((e) => e.event === 'run-end');
    t.same(
      runs.map((e) => `${e.outcome} ${(e.detail as { mode: string }).mode}`),
      ['failed default', 'ok default', 'ok rollback'],
      'all three runs wrote to the same audit log',
    );
  },
);

t.test(
  'settings the environment gave go in front of a printed line, so it pastes into a shell without them',
  async (t) => {
    const sandbox = makeRunbookEnv(t);
    // LOCK_TTL given as its default: the environment gave it, but the line needs no copy of it.
    const failed = await runCli(SCRIPT, [...ALL, '--env-file', '/dev/null'], {
      env: { ...sandbox.env, LOCK_TTL: SETTINGS.LOCK_TTL.default, FIXTURE_FAIL: 'T002' },
    });
    t.equal(failed.code, 1);
    const { undo, resume } = printedLines(failed.stderr);
    const settings = `KUBE_CONTEXT=test-ctx KUBECONFIG=${sandbox.kubeconfig} AUDIT_LOG=${sandbox.auditLog}`;
    t.equal(resume, `${settings} ${PROGRAM} --from T002 --env-file /dev/null`);
    t.equal(undo, `${settings} ${PROGRAM} --rollback --env-file /dev/null`);
    t.notMatch(resume, /LOCK_TTL/, 'a setting the file or the default gives anyway is left out');

    const resumed = paste(resume, sandbox.dir);
    t.equal(resumed.status, 0, resumed.stderr);
    const undone = paste(undo, sandbox.dir, ['--yes']);
    t.equal(undone.status, 0, undone.stderr);
    const runs = (await readAuditEntries(sandbox.auditLog)).filter((e) => e.event === 'run-end');
    t.equal(runs.length, 3, 'the pasted runs wrote to the same audit log');
    t.ok(
      runs.every((e) => e.kube_context === 'test-ctx'),
      'and acted on the same context',
    );
  },
);

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
      { id: 'T004', status: 'skipped', reason: 'marker four is made only with --four' },
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
      const pidFile = join(sandbox.dir, 'block.pid');
      await running.waitForStderr(/T002 waiting/);
      await until(() => existsSync(pidFile) && readFileSync(pidFile, 'utf8').endsWith('\n'));
      const sleeper = Number(readFileSync(pidFile, 'utf8'));
      // the runbook's process only, as a CI timeout, systemd or `kill <pid>` would signal it
      running.child.kill(signal);
      const out = await running.result;
      t.notOk(liveProcess(sleeper), 'the command the step was waiting in is gone');
      t.equal(out.code, 130, out.stderr);
      t.match(out.stderr, /resume: .*\S+ --from T002/);
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
        ['ok', 'verified-done', 'ok', 'ok', 'skipped'],
      );
    },
  );
}

t.test('a note written by one run is recalled by the next, started with --from', async (t) => {
  const sandbox = makeRunbookEnv(t);
  const failed = await runCli(SCRIPT, ALL, { env: { ...sandbox.env, FIXTURE_FAIL: 'T002' } });
  t.equal(failed.code, 1, failed.stderr);
  const entries = await readAuditEntries(sandbox.auditLog);
  const note = entries.find(
    (e) => e.event === 'note' && (e.detail as { key: string }).key === 'one.created',
  );
  t.ok(note, 'T001 recorded its note in the audit log');
  const created = (note?.detail as { value?: string } | undefined)?.value;

  const resumed = await runCli(SCRIPT, [...ALL, '--from', 'T002'], { env: sandbox.env });
  t.equal(resumed.code, 0, resumed.stderr);
  t.equal(
    readFileSync(join(sandbox.dir, 'two'), 'utf8'),
    `one created at ${created}\n`,
    'the second process read the value the first one noted',
  );
});

t.test('a plain re-run of a completed runbook does nothing and says so', async (t) => {
  const sandbox = makeRunbookEnv(t);
  t.equal((await runCli(SCRIPT, ALL, { env: sandbox.env })).code, 0);
  const before = (await readAuditEntries(sandbox.auditLog)).length;
  const again = await runCli(SCRIPT, [...ALL, '--json'], { env: sandbox.env });
  t.equal(again.code, 0, again.stderr);
  t.match(again.stderr, /already complete: marker three exists, so the markers were made/);
  const summary = JSON.parse(again.stdout) as RunSummary;
  t.equal(summary.already_complete, 'marker three exists, so the markers were made');
  const entries = (await readAuditEntries(sandbox.auditLog)).slice(before);
  t.notOk(
    entries.some((e) => e.event === 'command' || e.event === 'step-start'),
    'no step started and no command was sent',
  );
  t.match(entries.at(-1), { event: 'run-end', outcome: 'ok', detail: { complete: true } });
});

t.test(
  '--rollback runs the other step list; its resume line keeps --rollback and the flags',
  async (t) => {
    const sandbox = makeRunbookEnv(t);
    const help = await runCli(SCRIPT, ['--help'], { env: sandbox.env });
    t.match(help.stdout, /Steps with --rollback \(Remove the markers\):\n {2}Undoes T001–T004/);
    t.match(help.stdout, /R01 {2}change {2}Remove every marker/);
    t.match(help.stdout, /one confirmation for T001–T002/);

    t.equal((await runCli(SCRIPT, ALL, { env: sandbox.env })).code, 0);
    const failed = await runCli(SCRIPT, ['--rollback', '--yes', '--shout', '--json'], {
      env: { ...sandbox.env, FIXTURE_FAIL: 'R01' },
    });
    t.equal(failed.code, 1, failed.stderr);
    t.match(failed.stderr, /resume: .*\S+ --from R01 --rollback --shout\n/);
    t.match(JSON.parse(failed.stdout), { mode: 'rollback', outcome: 'failed' });

    const rolledBack = await runCli(SCRIPT, ['--from', 'R01', '--rollback', '--shout', '--yes'], {
      env: sandbox.env,
    });
    t.equal(rolledBack.code, 0, rolledBack.stderr);
    t.notOk(existsSync(join(sandbox.dir, 'one')), 'the rollback removed the markers');
    const entries = await readAuditEntries(sandbox.auditLog);
    t.match(entries.at(-1), {
      event: 'run-end',
      outcome: 'ok',
      detail: { mode: 'rollback', complete: false },
    });
  },
);

t.test(
  'without a terminal a wrong --confirm refuses before the first step: nothing changes',
  async (t) => {
    const sandbox = makeRunbookEnv(t);
    const out = await runCli(SCRIPT, ['--yes', '--confirm', 'old-rdis'], { env: sandbox.env });
    t.equal(out.code, 2);
    t.match(
      out.stderr,
      /--confirm old-rdis does not name T003's resource: re-run with --yes --confirm old-redis/,
    );
    t.match(out.stderr, /Nothing was run/);
    for (const name of ['one', 'two', 'three']) t.notOk(existsSync(join(sandbox.dir, name)));
    const entries = await readAuditEntries(sandbox.auditLog);
    t.notOk(entries.some((e) => e.event === 'step-start' || e.event === 'command'));
  },
);

t.test(
  'a dry run waits for nothing that only a mutation would cause, and confirms nothing',
  async (t) => {
    const sandbox = makeRunbookEnv(t);
    const out = await runCli(SCRIPT, ['--dry-run'], { env: sandbox.env });
    t.equal(out.code, 0, out.stderr);
    t.match(out.stderr, /would wait for marker one/);
    t.notOk(existsSync(join(sandbox.dir, 'one')));
    const entries = await readAuditEntries(sandbox.auditLog);
    t.notOk(
      entries.some((e) => e.event === 'confirm' && e.outcome === 'confirmed'),
      'a dry run records no confirmed confirmation',
    );
    t.ok(entries.some((e) => e.event === 'confirm' && e.outcome === 'would-ask'));
    t.match(
      entries.find((e) => e.event === 'wait'),
      { outcome: 'not-run', dry_run: true },
    );
  },
);

t.test('a second signal exits at once, and still takes the running command with it', async (t) => {
  const sandbox = makeRunbookEnv(t);
  const running = startCli(SCRIPT, ALL, { env: { ...sandbox.env, FIXTURE_BLOCK: 'T002' } });
  t.teardown(() => {
    if (running.child.exitCode === null) running.child.kill('SIGKILL');
  });
  const pidFile = join(sandbox.dir, 'block.pid');
  await running.waitForStderr(/T002 waiting/);
  await until(() => existsSync(pidFile) && readFileSync(pidFile, 'utf8').endsWith('\n'));
  const sleeper = Number(readFileSync(pidFile, 'utf8'));
  running.child.kill('SIGINT');
  running.child.kill('SIGINT');
  const out = await running.result;
  t.equal(out.code, 130, out.stderr);
  await until(() => !liveProcess(sleeper));
  t.pass('the command did not outlive the runbook');
});
