// The guards before a run's first step: context pinning, gates and `requires`, the lock, and the
// refusal of a run that needs confirmation with no terminal to ask on.
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { defineRunbook } from '../../lib/engine/runbook.ts';
import { FileRunLock } from '../../lib/lock/lock.ts';
import { ALL, events, execute, markerRunbook } from '../helpers/marker-runbook.ts';
import { makeRunbookEnv } from '../helpers/runbook-env.ts';

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
