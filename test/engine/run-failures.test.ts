// A failed step's end: exit 1, its error (masked), its undo hint and the command to resume.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { defineRunbook } from '../../lib/engine/runbook.ts';
import { ALL, execute, markerRunbook } from '../helpers/marker-runbook.ts';
import { makeRunbookEnv } from '../helpers/runbook-env.ts';

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
