// A run's lifecycle and step loop, in-process: steps run, found done, skipped, post-checked or
// left out by --from/--only, dry runs, and the exit code and `complete` each run ends with.
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { readAuditEntries } from '../../lib/audit/audit.ts';
import { defineRunbook } from '../../lib/engine/runbook.ts';
import { ALL, events, execute, markerRunbook } from '../helpers/marker-runbook.ts';
import { makeRunbookEnv } from '../helpers/runbook-env.ts';

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
