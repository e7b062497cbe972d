// The engine in-process: flags, settings, context pinning, lifecycle, gates, lock, confirmation,
// dry run, interruption. The same behaviours as seen by an operator (real child processes, exit
// codes, signals) are in runbook-cli.test.ts.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { readAuditEntries } from '../../lib/audit/audit.ts';
import type { Prompter } from '../../lib/engine/confirm.ts';
import {
  defineRunbook,
  executeRunbook,
  helpText,
  programPath,
  type Runbook,
  type RunSummary,
  runMain,
  type StepDefinition,
} from '../../lib/engine/runbook.ts';
import { FileRunLock } from '../../lib/lock/lock.ts';
import { Capture, events, execute, markerRunbook } from '../helpers/marker-runbook.ts';
import { unasked } from '../helpers/prompter.ts';
import { makeRunbookEnv, type RunbookEnv } from '../helpers/runbook-env.ts';

/** Polls `condition` until it holds; gives up (failing the test) after `timeoutMs`. */
async function until(condition: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

const ALL = ['--yes', '--confirm', 'old-redis'];

t.test(
  'a full run: every step confirmed by flags runs, is audited and leaves its marker',
  async (t) => {
    const sandbox = makeRunbookEnv(t);
    const out = await execute(markerRunbook(sandbox), sandbox, [...ALL, '--json']);
    t.equal(out.code, 0, out.stderr);
    for (const name of ['one', 'two', 'three']) t.ok(existsSync(join(sandbox.dir, name)));
    t.same(
      events(out.entries).filter((e) => !e.startsWith('command')),
      [
        'run-start',
        'step-start T001',
        'confirm T001 confirmed',
        'step-ok T001 ok',
        'step-start T002',
        'confirm T002 confirmed',
        'step-ok T002 ok',
        'step-start T003',
        'confirm T003 confirmed',
        'step-ok T003 ok',
        'run-end ok',
      ],
    );
    t.match(out.entries.at(-1), { detail: { complete: true, exit_code: 0 }, dry_run: false });
    t.ok(out.entries.every((e) => e.kube_context === 'test-ctx' && e.run_id === out.json?.run_id));
    t.match(out.stderr, /audit log: .*audit\.jsonl \(run /);
    t.match(out.stderr, /step\s+status\s+time\s+title/);
  },
);

t.test('--json prints exactly one summary object with the documented shape', async (t) => {
  const sandbox = makeRunbookEnv(t);
  const out = await execute(markerRunbook(sandbox), sandbox, [...ALL, '--json']);
  t.equal(out.stdout.trim().split('\n').length, 1);
  const summary = out.json as RunSummary;
  t.same(Object.keys(summary).sort(), [
    'audit_log',
    'dry_run',
    'mode',
    'outcome',
    'run_id',
    'runbook',
    'steps',
  ]);
  t.equal(summary.runbook, '98-inline');
  t.match(summary.run_id, /^\d{8}T\d{6}Z-[0-9a-f]{6}$/);
  t.equal(summary.dry_run, false);
  t.equal(summary.outcome, 'ok');
  t.equal(summary.audit_log, sandbox.auditLog);
  t.same(
    summary.steps.map((s) => [s.id, s.title, s.status, typeof s.duration_ms]),
    [
      ['T001', 'Create one', 'ok', 'number'],
      ['T002', 'Create two', 'ok', 'number'],
      ['T003', 'Create three', 'ok', 'number'],
    ],
  );
});

t.test('a second run finds every step done: verified-done, nothing run again', async (t) => {
  const sandbox = makeRunbookEnv(t);
  await execute(markerRunbook(sandbox), sandbox, ALL);
  const before = (await readAuditEntries(sandbox.auditLog)).length;
  const out = await execute(markerRunbook(sandbox), sandbox, [...ALL, '--json']);
  t.equal(out.code, 0);
  const second = out.entries.slice(before);
  t.same(events(second), [
    'run-start',
    'verified-done T001',
    'verified-done T002',
    'verified-done T003',
    'run-end ok',
  ]);
  t.same(
    out.json?.steps.map((s) => s.status),
    ['verified-done', 'verified-done', 'verified-done'],
  );
  t.match(out.stderr, /≡ T001 {2}Create one {2}already done/);
});

t.test('a failing step: exit 1, its undo hint and the exact command to resume', async (t) => {
  const sandbox = makeRunbookEnv(t);
  const out = await execute(
    markerRunbook(sandbox, {}, { fail: 'T002' }),
    sandbox,
    [...ALL, '--json', '--env-file', join(sandbox.dir, 'none.env')],
    { env: {} },
  );
  // --env-file names a file that does not exist: that is a settings error, not a step failure.
  t.equal(out.code, 2);
  t.match(out.stderr, /--env-file="[^"]*none\.env": expected a readable dotenv file/);

  const run = await execute(markerRunbook(sandbox, {}, { fail: 'T002' }), sandbox, [
    ...ALL,
    '--json',
  ]);
  t.equal(run.code, 1);
  t.ok(existsSync(join(sandbox.dir, 'one')));
  t.notOk(existsSync(join(sandbox.dir, 'two')));
  t.notOk(existsSync(join(sandbox.dir, 'three')), 'nothing after the failed step ran');
  t.match(run.stderr, /✖ T002 {2}Create two {2}FAILED/);
  t.match(run.stderr, /error: command failed \(exit code 4\): sh -c .*\n\s+T002 failed on purpose/);
  t.match(run.stderr, /undo: remove two/);
  t.match(run.stderr, /resume: .*\.\/runbooks\/98-inline\.mts --from T002\n/);
  t.match(run.json, {
    outcome: 'failed',
    error: /T002 failed on purpose/,
    steps: [{ status: 'ok' }, { status: 'failed', error: /exit code 4/ }, { status: 'not-run' }],
  });
  const failed = run.entries.find((e) => e.event === 'step-failed');
  t.match(failed, { step: 'T002', outcome: 'failed', detail: { undo: 'remove two' } });
  t.match(run.entries.at(-1), { event: 'run-end', outcome: 'failed', detail: { complete: false } });
});

t.test('--from starts at a step; --only runs just the listed ones', async (t) => {
  const sandbox = makeRunbookEnv(t);
  const from = await execute(markerRunbook(sandbox), sandbox, [...ALL, '--from', 'T002', '--json']);
  t.equal(from.code, 0);
  t.same(
    from.json?.steps.map((s) => s.status),
    ['skipped', 'ok', 'ok'],
  );
  t.notOk(existsSync(join(sandbox.dir, 'one')), 'a step before --from is not run');
  t.match(
    from.entries.find((e) => e.event === 'step-skipped'),
    {
      step: 'T001',
      detail: { reason: 'before --from T002' },
    },
  );
  t.match(from.entries.at(-1), { detail: { complete: false } }, 'a partial run is not complete');

  const sandbox2 = makeRunbookEnv(t);
  const only = await execute(markerRunbook(sandbox2), sandbox2, [
    '--yes',
    '--only',
    'T001',
    '--only',
    'T003,',
    '--confirm',
    'old-redis',
    '--json',
  ]);
  t.equal(only.code, 0);
  t.same(
    only.json?.steps.map((s) => s.status),
    ['ok', 'skipped', 'ok'],
  );
  t.notOk(existsSync(join(sandbox2.dir, 'two')));

  const sandbox3 = makeRunbookEnv(t);
  const failed = await execute(markerRunbook(sandbox3, {}, { fail: 'T001' }), sandbox3, [
    '--yes',
    '--only',
    'T001,T002',
  ]);
  t.equal(failed.code, 1);
  t.match(
    failed.stderr,
    /resume: .*\.\/runbooks\/98-inline\.mts --only T001,T002\n/,
    'the resume of an --only run keeps to the listed steps (not --from, which would reach T003)',
  );
});

t.test('usage errors exit 2 with a usage line and run nothing', async (t) => {
  const sandbox = makeRunbookEnv(t);
  const cases: Array<[string[], RegExp]> = [
    [['--bogus'], /Unknown option '--bogus'/],
    [['stray'], /Unexpected argument 'stray'/],
    [['--from', 'T009'], /--from T009: no such step \(steps: T001, T002, T003\)/],
    [['--only', 'T001,T404'], /--only T404: no such step/],
    [['--from', 'T001', '--only', 'T002'], /--from and --only cannot be combined/],
    [['--override-gate', ' '], /--override-gate needs a reason/],
  ];
  for (const [argv, message] of cases) {
    const out = await execute(markerRunbook(sandbox), sandbox, argv);
    t.equal(out.code, 2, argv.join(' '));
    t.match(out.stderr, message);
    t.match(out.stderr, /\nusage: \.\/runbooks\/98-inline\.mts \[--help\]/);
  }
  t.same(await readAuditEntries(sandbox.auditLog), [], 'a usage error writes no audit entry');
});

t.test(
  '--help prints steps, flags, the confirmation rule and exit codes without reading settings',
  async (t) => {
    const sandbox = makeRunbookEnv(t);
    const runbook = markerRunbook(sandbox, {
      description: 'What it does.',
      requires: ['02-deploy'],
      flags: {
        rollback: { type: 'boolean', description: 'undo the migration' },
        to: { type: 'string', description: 'target' },
      },
      gates: [
        { id: 'window', describe: '24 h since T040', check: () => ({ open: true, reason: '' }) },
      ],
    });
    const out = await execute(runbook, sandbox, ['--help'], { env: { REDIS_PORT: 'abc' } });
    t.equal(out.code, 0, 'an invalid setting does not matter to --help');
    t.match(out.stdout, /98-inline: Inline markers/);
    t.match(out.stdout, /T003 {2}irreversible {2}Create three/);
    t.match(out.stdout, /requires: 02-deploy completed/);
    t.match(out.stdout, /window: 24 h since T040/);
    t.match(out.stdout, /--rollback +undo the migration/);
    t.match(out.stdout, /--to <value> +target/);
    t.match(out.stdout, /\[--rollback\] \[--to <value>\]/);
    t.match(out.stdout, /--yes alone is\nrefused/);
    t.match(out.stdout, /4 locked by another run/);
    t.equal(out.entries.length, 0);
    t.equal(helpText(runbook, 'x').split('\n')[0], '98-inline: Inline markers');
  },
);

t.test('invalid settings: every problem named, exit 2, no stack trace, nothing run', async (t) => {
  const sandbox = makeRunbookEnv(t);
  const out = await execute(markerRunbook(sandbox), sandbox, [...ALL, '--json'], {
    env: { REDIS_PORT: 'abc', REDIS_LB_IP: '192.168.4.300', VALIDATION_WINDOW: '1x' },
  });
  t.equal(out.code, 2);
  t.match(out.stderr, /REDIS_PORT="abc": expected a TCP port/);
  t.match(out.stderr, /REDIS_LB_IP="192\.168\.4\.300": expected an IPv4 address/);
  t.match(out.stderr, /VALIDATION_WINDOW="1x": expected a duration/);
  t.notMatch(out.stderr, /\n\s+at /, 'no stack trace');
  t.match(out.json, { outcome: 'config-error', run_id: null, steps: [], error: /REDIS_PORT/ });
  t.notOk(existsSync(join(sandbox.dir, 'one')));
});

t.test(
  'context pinning: another current context stops the run before any step (exit 2)',
  async (t) => {
    const sandbox = makeRunbookEnv(t, 'other-ctx');
    const out = await execute(markerRunbook(sandbox), sandbox, [...ALL, '--json']);
    t.equal(out.code, 2);
    t.match(
      out.stderr,
      /current kube context is "other-ctx" but KUBE_CONTEXT pins "test-ctx"; nothing was run/,
    );
    t.match(out.stderr, /kubectl config use-context test-ctx/);
    t.same(events(out.entries), ['run-start', 'run-end context-mismatch']);
    t.equal(out.json?.outcome, 'context-mismatch');
    t.notOk(existsSync(join(sandbox.dir, 'one')));

    const unreadable = await execute(markerRunbook(sandbox), sandbox, ALL, {
      readKubeContext: async () => {
        throw new Error('kubeconfig is missing');
      },
    });
    t.equal(unreadable.code, 2);
    t.match(
      unreadable.stderr,
      /cannot read the current kube context: kubeconfig is missing\nNothing was run\. Check that kubectl is installed and that KUBECONFIG \(or ~\/\.kube\/config\) names the test-ctx context, then re-run/,
    );
  },
);

t.test(
  'a closed gate stops the run with exit 3 before any step; --yes does not open it',
  async (t) => {
    const sandbox = makeRunbookEnv(t);
    const closed = {
      id: 'window',
      describe: '24 h passed',
      check: () => ({ open: false, reason: '3h left in the validation window' }),
    };
    const runbook = markerRunbook(sandbox, { gates: [closed] });
    const out = await execute(runbook, sandbox, [...ALL, '--json']);
    t.equal(out.code, 3);
    t.match(
      out.stderr,
      /gate window is closed: 3h left in the validation window\. Nothing was run/,
    );
    t.match(out.stderr, /--override-gate/);
    t.same(events(out.entries), ['run-start', 'gate closed', 'run-end gate-closed']);
    t.equal(out.json?.outcome, 'gate-closed');
    t.notOk(existsSync(join(sandbox.dir, 'one')));
  },
);

t.test('--override-gate goes through a closed gate and audits the reason', async (t) => {
  const sandbox = makeRunbookEnv(t);
  const runbook = markerRunbook(sandbox, {
    gates: [
      { id: 'open-one', describe: 'always', check: async () => ({ open: true, reason: 'fine' }) },
      { id: 'window', describe: '24 h', check: () => ({ open: false, reason: '3h left' }) },
    ],
  });
  const out = await execute(runbook, sandbox, [
    ...ALL,
    '--override-gate',
    'validated by hand with the team',
  ]);
  t.equal(out.code, 0, out.stderr);
  t.ok(existsSync(join(sandbox.dir, 'three')));
  const gates = out.entries.filter((e) => e.event === 'gate');
  t.match(gates, [
    { outcome: 'open', detail: { gate: 'open-one' } },
    {
      outcome: 'overridden',
      detail: {
        gate: 'window',
        reason: '3h left',
        override_reason: 'validated by hand with the team',
      },
    },
  ]);
  t.match(out.stderr, /gate window is closed \(3h left\); overridden: validated by hand/);
});

t.test('a gate that cannot be checked counts as closed', async (t) => {
  const sandbox = makeRunbookEnv(t);
  const runbook = markerRunbook(sandbox, {
    gates: [{ id: 'cluster', describe: 'x', check: () => Promise.reject(new Error('API down')) }],
  });
  const out = await execute(runbook, sandbox, ALL);
  t.equal(out.code, 3);
  t.match(out.stderr, /gate cluster is closed: could not be checked: API down/);
});

t.test('requires: closed until the required runbook has completed in full, for real', async (t) => {
  const sandbox = makeRunbookEnv(t);
  const later = defineRunbook({
    id: '97-later',
    title: 'Later phase',
    requires: ['98-inline'],
    steps: [{ id: 'P01', title: 'noop', risk: 'read', run: () => undefined }],
  });
  const before = await execute(later, sandbox, []);
  t.equal(before.code, 3);
  t.match(
    before.stderr,
    /not yet completed in full: 98-inline \(run \.\/runbooks\/98-inline\.mts first\)/,
  );
  await execute(markerRunbook(sandbox), sandbox, [...ALL, '--dry-run']);
  t.equal((await execute(later, sandbox, [])).code, 3, 'a dry run does not count');
  await execute(markerRunbook(sandbox), sandbox, [...ALL, '--only', 'T001']);
  t.equal((await execute(later, sandbox, [])).code, 3, 'a partial run does not count');
  await execute(markerRunbook(sandbox), sandbox, ALL);
  const after = await execute(later, sandbox, []);
  t.equal(after.code, 0, after.stderr);
});

t.test('a run held by another lock exits 4; a dry run takes no lock', async (t) => {
  const sandbox = makeRunbookEnv(t);
  mkdirSync(join(sandbox.dir, 'logs'), { recursive: true });
  const other = new FileRunLock(join(sandbox.dir, 'logs', 'run.lock'), { ttlMs: 60_000 });
  const held = await other.acquire({
    runId: 'other-run',
    runbook: '05-migrate',
    operator: 'alice',
    host: hostname(),
    pid: process.pid,
  });
  t.ok(held.acquired);
  t.teardown(() => other.release());
  const out = await execute(markerRunbook(sandbox), sandbox, [...ALL, '--json']);
  t.equal(out.code, 4);
  t.match(out.stderr, /locked: run other-run of 05-migrate by alice@/);
  t.same(events(out.entries), ['run-start', 'gate locked', 'run-end locked']);
  t.equal(out.json?.outcome, 'locked');
  t.notOk(existsSync(join(sandbox.dir, 'one')));

  const dry = await execute(markerRunbook(sandbox), sandbox, ['--dry-run']);
  t.equal(dry.code, 0, 'the dry run is not blocked by the lock');
});

t.test(
  'a stale lock is taken over and the takeover is audited; the lock is released at the end',
  async (t) => {
    const sandbox = makeRunbookEnv(t);
    const lockPath = join(sandbox.dir, 'logs', 'run.lock');
    mkdirSync(join(sandbox.dir, 'logs'), { recursive: true });
    writeFileSync(
      lockPath,
      JSON.stringify({
        runId: 'dead-run',
        runbook: '02-deploy',
        operator: 'bob',
        host: 'elsewhere',
        pid: 1,
        acquiredAt: '2020-01-01T00:00:00.000Z',
        expiresAt: '2020-01-01T00:30:00.000Z',
      }),
    );
    const out = await execute(markerRunbook(sandbox), sandbox, ALL);
    t.equal(out.code, 0, out.stderr);
    t.match(
      out.stderr,
      /took over a stale lock of run dead-run \(it expired at 2020-01-01T00:30:00\.000Z\)/,
    );
    t.match(
      out.entries.find((e) => e.outcome === 'lock-taken-over'),
      {
        event: 'gate',
        detail: { gate: 'run-lock', previous: { runId: 'dead-run' } },
      },
    );
    t.notOk(existsSync(lockPath), 'released at the end of the run');
  },
);

t.test('dry run: no mutation, no prompt, every entry marked dry_run', async (t) => {
  const sandbox = makeRunbookEnv(t);
  const out = await execute(markerRunbook(sandbox), sandbox, ['--dry-run', '--json']);
  t.equal(out.code, 0, 'no --yes needed: a dry run asks nothing');
  for (const name of ['one', 'two', 'three']) t.notOk(existsSync(join(sandbox.dir, name)));
  t.ok(out.entries.length > 0);
  t.ok(out.entries.every((e) => e.dry_run === true));
  t.match(out.stderr, /would run: touch .*\/one/);
  t.match(
    out.stderr,
    /T003 \(irreversible risk\) would ask for the name "old-redis" typed before running/,
  );
  t.equal(out.json?.dry_run, true);
  t.match(out.stderr, /dry run: nothing was changed/);
  t.notOk(existsSync(join(sandbox.dir, 'logs', 'run.lock')));
});

t.test('no terminal and no --yes: refused with exit 2 before the step runs', async (t) => {
  const sandbox = makeRunbookEnv(t);
  const out = await execute(markerRunbook(sandbox), sandbox, ['--json']);
  t.equal(out.code, 2);
  t.match(
    out.stderr,
    /T001 \(change risk\) needs confirmation and there is no terminal to ask on: re-run with --yes/,
  );
  t.notOk(existsSync(join(sandbox.dir, 'one')));
  t.match(
    out.entries.find((e) => e.event === 'confirm'),
    { outcome: 'refused', step: 'T001' },
  );
  t.equal(out.json?.outcome, 'refused');
  t.same(
    out.json?.steps.map((s) => s.status),
    ['refused', 'not-run', 'not-run'],
  );
});

t.test('on a terminal the injected prompt answers, and its answers are audited', async (t) => {
  const sandbox = makeRunbookEnv(t);
  const prompter: Prompter = {
    ...unasked,
    yesNo: async () => true,
    typeName: async () => 'old-redis',
  };
  const out = await execute(markerRunbook(sandbox), sandbox, [], {
    prompter,
    isInteractive: () => true,
  });
  t.equal(out.code, 0, out.stderr);
  t.same(
    out.entries
      .filter((e) => e.event === 'confirm')
      .map((e) => (e.detail as { method: string }).method),
    ['prompt', 'prompt', 'prompt'],
  );
  t.match(
    out.entries.find((e) => e.step === 'T003' && e.event === 'confirm'),
    {
      detail: { name: 'old-redis' },
    },
  );
});

t.test('Ctrl-C at a prompt ends the run as interrupted (130)', async (t) => {
  const sandbox = makeRunbookEnv(t);
  const prompter: Prompter = {
    ...unasked,
    yesNo: async () => {
      throw Object.assign(new Error('force closed'), { name: 'ExitPromptError' });
    },
    typeName: async () => '',
  };
  const out = await execute(markerRunbook(sandbox), sandbox, [], {
    prompter,
    isInteractive: () => true,
  });
  t.equal(out.code, 130);
  t.match(out.entries.at(-1), { event: 'run-end', outcome: 'interrupted' });
});

t.test('post-check: a step whose done() is still false after run() fails', async (t) => {
  const sandbox = makeRunbookEnv(t);
  const out = await execute(markerRunbook(sandbox, {}, { neverDone: 'T001' }), sandbox, ALL);
  t.equal(out.code, 1);
  t.match(out.stderr, /post-check failed: done\(\) is still false after the step ran/);

  const verified = defineRunbook({
    id: '96-verify',
    title: 'verify',
    steps: [
      {
        id: 'T001',
        title: 'v',
        risk: 'read',
        run: () => undefined,
        verify: () => false,
        undo: 'none',
      },
    ],
  });
  const out2 = await execute(verified, sandbox, []);
  t.equal(out2.code, 1);
  t.match(out2.stderr, /post-check failed: verify\(\) is still false/);
});

t.test(
  'interrupting a running step: exit 130, run-end interrupted, cleanup runs, resume works',
  async (t) => {
    const sandbox = makeRunbookEnv(t);
    const controller = new AbortController();
    const pidFile = join(sandbox.dir, 'sleep.pid');
    let cleaned = 0;
    const blocking = markerRunbook(sandbox, {
      cleanup: () => {
        cleaned += 1;
      },
      steps: [
        ...markerRunbook(sandbox).steps.slice(0, 1),
        {
          id: 'T002',
          title: 'Wait for something',
          risk: 'read',
          done: () => existsSync(join(sandbox.dir, 'two')),
          run: async (ctx) => {
            const sleeping = ctx.run(
              ['sh', '-c', 'echo $$ > "$1"; exec sleep 600', 'sh', pidFile],
              { kind: 'read' },
            );
            // Interrupt once the command is really running, as an operator's Ctrl-C would.
            await until(() => existsSync(pidFile) && readFileSync(pidFile, 'utf8').endsWith('\n'));
            controller.abort();
            await sleeping;
          },
        },
      ],
    });
    const out = await execute(blocking, sandbox, [...ALL, '--json'], { signal: controller.signal });
    t.equal(out.code, 130);
    const pid = Number(readFileSync(pidFile, 'utf8'));
    await until(() => !processExists(pid));
    t.pass('the interrupted command was stopped');
    t.equal(cleaned, 1);
    t.match(out.entries.at(-1), { event: 'run-end', outcome: 'interrupted' });
    t.match(
      out.entries.find((e) => e.event === 'step-failed'),
      { step: 'T002', outcome: 'interrupted' },
    );
    t.match(out.stderr, /resume: .*\.\/runbooks\/98-inline\.mts --from T002/);
    t.same(
      out.json?.steps.map((s) => s.status),
      ['ok', 'interrupted'],
    );

    writeFileSync(join(sandbox.dir, 'two'), '');
    const again = await execute(blocking, sandbox, [...ALL, '--json']);
    t.equal(again.code, 0);
    t.same(
      again.json?.steps.map((s) => s.status),
      ['verified-done', 'verified-done'],
    );
  },
);

t.test('an interrupt before the first step still ends the run cleanly', async (t) => {
  const sandbox = makeRunbookEnv(t);
  const controller = new AbortController();
  controller.abort();
  const out = await execute(markerRunbook(sandbox), sandbox, ALL, { signal: controller.signal });
  t.equal(out.code, 130);
  t.match(out.entries.at(-1), { event: 'run-end', outcome: 'interrupted' });
});

t.test(
  'the step context: pinned kubectl, tofu in its directory, shared state, runbook flags',
  async (t) => {
    const sandbox = makeRunbookEnv(t);
    const seen: Record<string, unknown> = {};
    const runbook = defineRunbook({
      id: '95-context',
      title: 'context',
      flags: { rollback: { type: 'boolean', description: 'x' } },
      steps: [
        {
          id: 'P01',
          title: 'read the context through kubectl',
          risk: 'read',
          run: async (ctx) => {
            seen.context = (await ctx.kubectl(['config', 'current-context'])).stdout.trim();
            seen.tofu = (await ctx.tofu(['version'])).stdout.trim();
            seen.cwd = (await ctx.tofu(['show'], { kind: 'read' })).stdout;
            ctx.state.replicas = 3;
            seen.rollback = ctx.flags.rollback;
            ctx.log.warn('careful');
            ctx.setReport('/reports/013.md');
          },
        },
        {
          id: 'T001',
          title: 'scale',
          risk: 'change',
          run: async (ctx) => {
            seen.replicas = ctx.state.replicas;
            seen.step = ctx.step;
            await ctx.kubectl(['scale', 'deployment', 'beersystem', '--replicas=0']);
            await ctx.tofu(['apply', 'plan.out']);
          },
        },
      ],
    });
    const tofuDir = join(sandbox.dir, 'tofu');
    mkdirSync(tofuDir);
    const out = await execute(runbook, sandbox, ['--dry-run', '--rollback', '--json'], {
      env: { TOFU_BIN: 'echo', TOFU_DIR: tofuDir },
    });
    t.equal(out.code, 0, out.stderr);
    t.equal(seen.context, 'test-ctx', 'the read ran during the dry run');
    t.equal(seen.tofu, 'version');
    t.equal(seen.replicas, 3);
    t.equal(seen.rollback, true);
    t.same(seen.step, { id: 'T001', risk: 'change' });
    t.match(out.stderr, /warning: careful/);
    t.match(out.stderr, /\nreport: \/reports\/013\.md\n/, 'the summary says where the report is');
    t.equal(out.json?.report, '/reports/013.md');
    t.match(
      out.stderr,
      new RegExp(
        `would run: kubectl --context test-ctx --kubeconfig ${sandbox.kubeconfig} scale deployment beersystem --replicas=0`,
      ),
    );
    t.match(out.stderr, /would run: echo apply plan\.out/);
    t.match(
      out.entries.find((e) => e.event === 'command'),
      { step: 'T001', risk: 'change', dry_run: true },
    );
  },
);

t.test(
  'a kubectl or tofu change cannot be declared a read, so a dry run never sends it',
  async (t) => {
    const sandbox = makeRunbookEnv(t);
    const tofuDir = join(sandbox.dir, 'tofu');
    mkdirSync(tofuDir);
    const runbook = defineRunbook({
      id: '94-kinds',
      title: 'kinds',
      steps: [
        {
          id: 'P01',
          title: 'a change passed off as a read',
          risk: 'read',
          run: async (ctx) => {
            await ctx.tofu(['apply', 'applied'], { kind: 'read' });
          },
        },
      ],
    });
    const out = await execute(runbook, sandbox, ['--dry-run', '--json'], {
      env: { TOFU_BIN: 'touch', TOFU_DIR: tofuDir },
    });
    t.equal(out.code, 1);
    t.notOk(existsSync(join(tofuDir, 'applied')), 'nothing was run');
    t.match(
      out.json?.error,
      /^touch apply applied is classified as a mutation and cannot be run as a read, because a dry run would send it/,
    );

    const stricter = defineRunbook({
      id: '94-kinds',
      title: 'kinds',
      steps: [
        {
          id: 'P01',
          title: 'a read marked as a change',
          risk: 'change',
          run: async (ctx) => {
            await ctx.tofu(['show', 'shown'], { kind: 'mutation' });
          },
        },
      ],
    });
    const dry = await execute(stricter, sandbox, ['--dry-run', '--yes'], {
      env: { TOFU_BIN: 'touch', TOFU_DIR: tofuDir },
    });
    t.equal(dry.code, 0);
    t.match(dry.stderr, /would run: touch show shown/, 'marking a read as a mutation is allowed');
    t.notOk(existsSync(join(tofuDir, 'shown')));
  },
);

t.test('defineRunbook rejects a definition with mistakes, all named at once', async (t) => {
  t.throws(
    () =>
      defineRunbook({
        id: 'bad id',
        title: 'x',
        steps: [
          { id: 'T1', title: 'a', risk: 'read', run: () => undefined },
          { id: 'T1', title: 'b', risk: 'irreversible', run: () => undefined },
          { id: '-x', title: 'c', risk: 'read', run: () => undefined },
        ],
      }),
    /runbook id "bad id" is not valid[\s\S]*T1 is used twice[\s\S]*irreversible step T1 needs confirmName[\s\S]*step id "-x"/,
  );
  t.throws(() => defineRunbook({ id: 'empty', title: 'x', steps: [] }), /at least one step/);
});

t.test('the resume command names the runbook as it can be called from here', async (t: Test) => {
  t.equal(programPath('/repo/runbooks/05-migrate.mts', '/repo'), './runbooks/05-migrate.mts');
  t.equal(programPath('runbooks/05-migrate.mts', '/repo'), './runbooks/05-migrate.mts');
  t.equal(programPath('/repo/runbooks/05-migrate.mts', '/tmp'), '/repo/runbooks/05-migrate.mts');
  t.equal(programPath(undefined), 'runbook');
});

t.test('a step that throws a plain error is reported with its message, masked', async (t) => {
  const sandbox = makeRunbookEnv(t);
  const { registerSecret } = await import('../../lib/engine/shell.ts');
  registerSecret('very-secret-pw');
  const runbook = defineRunbook({
    id: '94-throw',
    title: 'throw',
    steps: [
      {
        id: 'T001',
        title: 'throw',
        risk: 'read',
        run: () => {
          throw new Error('bad password very-secret-pw');
        },
      },
    ],
  });
  const out = await execute(runbook, sandbox, ['--json']);
  t.equal(out.code, 1);
  t.match(out.stderr, /error: bad password \*\*\*/);
  t.match(out.stderr, /undo: nothing recorded for this step/);
  t.notMatch(out.stdout + out.stderr + readFileSync(sandbox.auditLog, 'utf8'), /very-secret-pw/);
});

t.test('runMain leaves a runbook file alone when it is imported rather than run', async (t) => {
  const sandbox = makeRunbookEnv(t);
  await runMain(markerRunbook(sandbox), 'file:///nowhere/imported.mts');
  t.same(await readAuditEntries(sandbox.auditLog), [], 'nothing ran');
});

/** T001 (change) confirms T001–T002 at once; T003 stays on its own. */
function coveringRunbook(sandbox: RunbookEnv): Runbook {
  const base = markerRunbook(sandbox);
  const [one, two, three] = base.steps as [StepDefinition, StepDefinition, StepDefinition];
  return defineRunbook({
    id: '98-inline',
    title: 'Inline markers',
    steps: [
      { ...one, confirmCovers: 'T002', coverText: 'two markers appear together' },
      two,
      three,
    ],
  });
}

t.test(
  'a sequence confirmation: asked once, the covered step runs without asking and is audited as covered',
  async (t) => {
    const sandbox = makeRunbookEnv(t);
    const questions: string[] = [];
    const prompter: Prompter = {
      ...unasked,
      yesNo: async (message) => {
        questions.push(message);
        return true;
      },
      typeName: async () => 'old-redis',
    };
    const out = await execute(coveringRunbook(sandbox), sandbox, [], {
      prompter,
      isInteractive: () => true,
    });
    t.equal(out.code, 0, out.stderr);
    t.equal(questions.length, 1, 'one yes/no question for T001 and T002');
    t.match(
      questions[0],
      /^T001 Create one\. T001–T002 run without further questions; two markers appear together\. Run them\?$/,
    );
    const confirms = out.entries.filter((e) => e.event === 'confirm');
    t.match(confirms, [
      { step: 'T001', outcome: 'confirmed', detail: { method: 'prompt', covers: ['T002'] } },
      {
        step: 'T002',
        outcome: 'confirmed',
        detail: { method: 'covered', covered_by: 'T001', answer: 'prompt' },
      },
      { step: 'T003', outcome: 'confirmed', detail: { method: 'prompt' } },
    ]);
  },
);

t.test('a declined sequence changes nothing', async (t) => {
  const sandbox = makeRunbookEnv(t);
  const prompter: Prompter = { ...unasked, yesNo: async () => false, typeName: async () => '' };
  const out = await execute(coveringRunbook(sandbox), sandbox, [], {
    prompter,
    isInteractive: () => true,
  });
  t.equal(out.code, 2);
  for (const name of ['one', 'two', 'three']) t.notOk(existsSync(join(sandbox.dir, name)));
  t.notOk(out.entries.some((e) => e.event === 'command'));
});

t.test('a resume at the last step of a sequence asks for that step on its own', async (t) => {
  const sandbox = makeRunbookEnv(t);
  const questions: string[] = [];
  const prompter: Prompter = {
    ...unasked,
    yesNo: async (message) => {
      questions.push(message);
      return true;
    },
    typeName: async () => 'old-redis',
  };
  const out = await execute(coveringRunbook(sandbox), sandbox, ['--from', 'T002'], {
    prompter,
    isInteractive: () => true,
  });
  t.equal(out.code, 0, out.stderr);
  t.match(questions, [/^T002 Create two: high risk/]);
});

t.test('the time spent at a prompt is reported apart from the work', async (t) => {
  const sandbox = makeRunbookEnv(t);
  const ANSWER_AFTER_MS = 1_500;
  const prompter: Prompter = {
    ...unasked,
    yesNo: () => new Promise((resolve) => setTimeout(() => resolve(true), ANSWER_AFTER_MS)),
    typeName: async () => 'old-redis',
  };
  const out = await execute(markerRunbook(sandbox), sandbox, ['--only', 'T001', '--json'], {
    prompter,
    isInteractive: () => true,
  });
  t.equal(out.code, 0, out.stderr);
  const step = out.json?.steps[0];
  t.ok((step?.waited_ms ?? 0) >= ANSWER_AFTER_MS, 'the wait is measured');
  t.ok((step?.duration_ms ?? Infinity) < ANSWER_AFTER_MS, 'the work time leaves the wait out');
  t.match(out.stderr, /✔ T001 {2}Create one {2}ok {2}\d+ms \(waited 1\.\ds for you\)/);
  const ok = out.entries.find((e) => e.event === 'step-ok');
  t.equal(ok?.duration_ms, step?.duration_ms);
  t.ok(((ok?.detail as { waited_ms?: number } | undefined)?.waited_ms ?? 0) >= ANSWER_AFTER_MS);
  t.ok(
    ((out.entries.find((e) => e.event === 'confirm')?.detail as { waited_ms?: number } | undefined)
      ?.waited_ms ?? 0) >= ANSWER_AFTER_MS,
  );
});

t.test('skip(): a step that does not apply is recorded skipped with its reason', async (t) => {
  const sandbox = makeRunbookEnv(t);
  const base = markerRunbook(sandbox);
  const runbook = defineRunbook({
    ...base,
    steps: base.steps.map((s) =>
      s.id === 'T002' ? { ...s, skip: () => 'beersystem has no replicas to scale' } : s,
    ),
  });
  const out = await execute(runbook, sandbox, [...ALL, '--json']);
  t.equal(out.code, 0, out.stderr);
  t.notOk(existsSync(join(sandbox.dir, 'two')));
  t.match(out.json?.steps[1], { status: 'skipped', reason: 'beersystem has no replicas to scale' });
  t.match(
    out.entries.find((e) => e.event === 'step-skipped'),
    {
      step: 'T002',
      detail: { reason: 'beersystem has no replicas to scale' },
    },
  );
  t.match(out.stderr, /- T002 {2}Create two {2}skipped: beersystem has no replicas to scale/);
  t.match(
    out.entries.at(-1),
    { detail: { complete: true } },
    'a step that does not apply still completes',
  );
});

t.test('a run in another mode never opens `requires`', async (t) => {
  const sandbox = makeRunbookEnv(t);
  const base = markerRunbook(sandbox);
  const withRollback = defineRunbook({
    ...base,
    modes: {
      rollback: {
        title: 'remove the markers',
        steps: [
          {
            id: 'R01',
            title: 'remove',
            risk: 'change',
            run: (ctx) => ctx.run(['rm', '-f', join(sandbox.dir, 'one')], { kind: 'mutation' }),
          },
        ],
      },
    },
  });
  const later = defineRunbook({
    id: '99-later',
    title: 'later',
    requires: ['98-inline'],
    steps: [{ id: 'P01', title: 'look', risk: 'read', run: () => undefined }],
  });
  const rollback = await execute(withRollback, sandbox, ['--rollback', '--yes', '--json']);
  t.equal(rollback.code, 0, rollback.stderr);
  t.match(rollback.json, { mode: 'rollback', steps: [{ id: 'R01', status: 'ok' }] });
  t.match(rollback.stderr, /^98-inline: rollback complete$/m, 'a mode run is titled by its mode');
  t.match(rollback.entries.at(-1), { detail: { mode: 'rollback', complete: false } });
  const closed = await execute(later, sandbox, []);
  t.equal(closed.code, 3, 'a rollback is not the runbook having completed');

  const forward = await execute(withRollback, sandbox, ALL);
  t.equal(forward.code, 0, forward.stderr);
  const open = await execute(later, sandbox, []);
  t.equal(open.code, 0, open.stderr);
});

t.test('notes: recall sees this run (dry or not) and the real runs before it', async (t) => {
  const sandbox = makeRunbookEnv(t);
  const seen: unknown[] = [];
  const noting = (value: number) =>
    defineRunbook({
      id: '96-notes',
      title: 'notes',
      steps: [
        {
          id: 'T001',
          title: 'note',
          risk: 'change',
          run: async (ctx) => {
            seen.push(await ctx.recall('replicas'));
            await ctx.note('replicas', value);
            seen.push(await ctx.recall('replicas'));
            await ctx.evidence('SC-001', 'p95 0.4 ms: met', { p95Ms: 0.4, met: true });
          },
        },
      ],
    });
  t.equal((await execute(noting(2), sandbox, ['--dry-run'])).code, 0);
  t.same(seen, [undefined, 2], 'a dry run recalls its own note');
  seen.length = 0;
  const real = await execute(noting(3), sandbox, ['--yes']);
  t.equal(real.code, 0, real.stderr);
  t.same(seen, [undefined, 3], "a dry run's notes are not recalled by a later run");
  t.match(real.stderr, /evidence SC-001: p95 0\.4 ms: met/);
  seen.length = 0;
  await execute(noting(4), sandbox, ['--yes']);
  t.same(seen, [3, 4]);
  const { readNotes } = await import('../../lib/engine/notes.ts');
  const notes = await readNotes(sandbox.auditLog, { runbook: '96-notes', key: 'replicas' });
  t.same(
    notes.map((n) => n.value),
    [3, 4],
  );
  t.match(notes[0], { runbook: '96-notes', step: 'T001', key: 'replicas' });
  t.same(
    (await readNotes(sandbox.auditLog, { key: 'evidence.SC-001' })).map((n) => n.value),
    [
      { line: 'p95 0.4 ms: met', p95Ms: 0.4, met: true },
      { line: 'p95 0.4 ms: met', p95Ms: 0.4, met: true },
    ],
  );
  t.same(await readNotes(sandbox.auditLog, { runbook: 'other' }), []);
});

t.test('a process that will not die is reported by pid, and the lock is kept for it', async (t) => {
  const sandbox = makeRunbookEnv(t);
  const { spawn } = await import('node:child_process');
  const stubborn = spawn('sleep', ['600'], { stdio: 'ignore' });
  t.teardown(() => stubborn.kill('SIGKILL'));
  const pid = stubborn.pid as number;
  const controller = new AbortController();
  const runbook = defineRunbook({
    id: '98-inline',
    title: 'stubborn',
    steps: [
      {
        id: 'T001',
        title: 'block',
        risk: 'change',
        run: async (ctx) => {
          controller.abort();
          await new Promise((resolve) => ctx.signal.addEventListener('abort', resolve));
        },
      },
    ],
  });
  const out = await execute(runbook, sandbox, ['--yes'], {
    signal: controller.signal,
    stopCommands: async () => [pid],
  });
  t.equal(out.code, 130);
  t.match(
    out.stderr,
    new RegExp(
      `process ${pid} of this run would not die, even after SIGKILL\\. The lock .*run\\.lock is kept`,
    ),
  );
  t.match(out.entries.at(-1), {
    event: 'run-end',
    outcome: 'interrupted',
    detail: { survivors: [pid], lock_kept: /run\.lock$/ },
  });
  const lock = JSON.parse(readFileSync(join(sandbox.dir, 'logs', 'run.lock'), 'utf8'));
  t.equal(lock.pid, pid, 'the lock now names the surviving process');
  const next = await execute(markerRunbook(sandbox), sandbox, ALL);
  t.equal(next.code, 4, 'the next run is locked out while that process lives');
});

t.test('defineRunbook checks modes and sequence confirmations', async (t) => {
  const step = (id: string, extra: Partial<StepDefinition> = {}): StepDefinition => ({
    id,
    title: id,
    risk: 'change',
    run: () => undefined,
    ...extra,
  });
  let message = '';
  try {
    defineRunbook({
      id: 'x',
      title: 'x',
      flags: { json: { type: 'boolean', description: '' } },
      steps: [
        step('A', { confirmCovers: 'A' }),
        step('B', { confirmCovers: 'D' }),
        step('C', { risk: 'irreversible', confirmName: 'n' }),
        step('D', { confirmCovers: 'E' }),
        step('E'),
        step('F', { risk: 'read', confirmCovers: 'G' }),
        step('G'),
      ],
      modes: { 'dry-run': { title: 'x', steps: [] }, Bad: { title: 'x', steps: [step('R')] } },
    });
  } catch (err) {
    message = (err as Error).message;
  }

  for (const re of [
    /confirmCovers A must name a later step/,
    /confirmCovers cannot cover irreversible step C/,
    /step D is covered by B and cannot cover others/,
    /step F asks nothing \(risk read\), so it cannot confirm others/,
    /flag --json is one of the common flags/,
    /mode dry-run would use the flag --dry-run, which is taken/,
    /mode dry-run needs at least one step/,
    /mode "Bad" is not a valid flag name/,
  ]) {
    t.match(message, re);
  }

  const ok = defineRunbook({
    id: 'x',
    title: 'x',
    steps: [step('A')],
    modes: { rollback: { title: 'back', steps: [step('R')] } },
  });
  t.ok(Object.isFrozen(ok.modes?.rollback?.steps));
});

t.test('on a terminal a wait shows what it waits for, then the step again', async (t) => {
  const sandbox = makeRunbookEnv(t);
  const stderr = new Capture();
  stderr.isTTY = true;
  let checks = 0;
  const runbook = defineRunbook({
    id: '92-wait',
    title: 'wait',
    steps: [
      {
        id: 'P01',
        title: 'Wait a little',
        risk: 'read',
        run: async (ctx) => {
          await ctx.waitFor('the second look', () => ++checks >= 2, {
            intervalMs: 1,
            progress: () => `${checks} looks`,
          });
        },
      },
    ],
  });
  const code = await executeRunbook(runbook, {
    argv: [],
    program: './x.mts',
    stdout: new Capture(),
    stderr,
    isInteractive: () => false,
    env: sandbox.env,
  });
  t.equal(code, 0, stderr.text);
  const shown = stderr.text.indexOf('waiting for the second look (1 looks)');
  t.ok(shown > 0, 'the spinner named the wait and its progress');
  t.match(stderr.text.slice(shown), /⠋ P01 {2}Wait a little/, 'then the step again');
});

t.test('--help lists each mode with its steps, and the sequences confirmed at once', async (t) => {
  const step = (id: string, extra: Partial<StepDefinition> = {}): StepDefinition => ({
    id,
    title: `do ${id}`,
    risk: 'change',
    run: () => undefined,
    ...extra,
  });
  const runbook = defineRunbook({
    id: '91-help',
    title: 'help',
    steps: [step('T035', { confirmCovers: 'T040' }), step('T040')],
    modes: {
      rollback: { title: 'Put it back', description: 'Undoes T035.', steps: [step('R01')] },
      repair: { title: 'Repair', steps: [step('X01', { risk: 'high' })] },
    },
  });
  const text = helpText(runbook, './x.mts');
  t.match(text, /usage: \.\/x\.mts .* \[--rollback \| --repair\]/);
  t.match(text, /T035 {2}change {2}do T035\n {2}.*\(one confirmation for T035–T040\)/);
  t.match(
    text,
    /Steps with --rollback \(Put it back\):\n {2}Undoes T035\.\n {2}R01 {2}change {2}do R01/,
  );
  t.match(text, /Steps with --repair \(Repair\):\n {2}X01 {2}high {2}do X01/);
  t.match(text, /--rollback +run the rollback steps: Put it back/);
  t.match(text, /A run with a mode flag never counts as this runbook having completed/);
  t.notMatch(helpText(markerRunbook(makeRunbookEnv(t)), './y.mts'), /mode flag/);
});

t.test(
  'a read-only check that holds says "passed", a change already in place "already done", a dry run "would change"',
  async (t) => {
    const sandbox = makeRunbookEnv(t);
    writeFileSync(join(sandbox.dir, 'one'), '');
    const runbook = markerRunbook(sandbox, {
      steps: [
        { id: 'P01', title: 'Check it', risk: 'read', done: () => true, run: () => undefined },
        ...markerRunbook(sandbox).steps.slice(0, 2),
      ],
    });
    const dry = await execute(runbook, sandbox, ['--dry-run']);
    t.equal(dry.code, 0, dry.stderr);
    t.match(dry.stderr, /≡ P01 {2}Check it {2}passed/);
    t.match(dry.stderr, /≡ T001 {2}Create one {2}already done/);
    t.match(dry.stderr, /T002 {2}Create two {2}would change/);
    t.match(dry.stderr, /^T002 {2}would change {2}/m, 'the summary table says so too');
    t.notMatch(dry.stderr, /T002 .*\bok\b/, 'nothing a dry run only printed reads as done');
  },
);

t.test(
  'a run that ended well ends with what next; a dry run with the command to run it for real',
  async (t) => {
    const sandbox = makeRunbookEnv(t);
    const runbook = markerRunbook(sandbox, {
      next: (ctx) => `the next runbook: ${ctx.commandLine({ runbook: '99-after' })}`,
    });
    const dry = await execute(runbook, sandbox, ['--dry-run', '--env-file', '/dev/null']);
    t.equal(dry.code, 0, dry.stderr);
    t.match(
      dry.stderr.trimEnd().split('\n').at(-1),
      /^next: run it for real: .*\.\/runbooks\/98-inline\.mts --env-file \/dev\/null$/,
    );
    const real = await execute(runbook, sandbox, [...ALL, '--env-file', '/dev/null']);
    t.equal(real.code, 0, real.stderr);
    t.match(
      real.stderr.trimEnd().split('\n').at(-1),
      /^next: the next runbook: .*\.\/runbooks\/99-after\.mts --env-file \/dev\/null$/,
    );
  },
);

t.test(
  'a resumed run that ends well completes the runbook when its completed() check says so, however many runs it took',
  async (t) => {
    const sandbox = makeRunbookEnv(t);
    const runbook = markerRunbook(
      sandbox,
      {
        completed: () =>
          existsSync(join(sandbox.dir, 'three')) ? 'marker three exists' : undefined,
      },
      { fail: 'T002' },
    );
    const failed = await execute(runbook, sandbox, ALL);
    t.equal(failed.code, 1);
    const resumed = await execute(
      markerRunbook(sandbox, { completed: runbook.completed }),
      sandbox,
      [...ALL, '--from', 'T002'],
    );
    t.equal(resumed.code, 0, resumed.stderr);
    const ends = resumed.entries.filter((e) => e.event === 'run-end');
    t.same(
      ends.map((e) => (e.detail as { complete: boolean }).complete),
      [false, true],
      'the resume that finished it counts as the completion',
    );
  },
);
