// How a run ends on screen: the one --json summary object, the `next:` line, and a resume
// counted as the runbook's completion when its completed() check says so.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import type { RunSummary } from '../../lib/engine/runbook.ts';
import { ALL, execute, markerRunbook } from '../helpers/marker-runbook.ts';
import { makeRunbookEnv } from '../helpers/runbook-env.ts';

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
