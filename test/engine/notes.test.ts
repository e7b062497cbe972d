// Notes through whole runs: what ctx.recall sees of this run, dry or not, and of the runs before.
import t from 'tap';
import { defineRunbook } from '../../lib/engine/runbook.ts';
import { execute } from '../helpers/marker-runbook.ts';
import { makeRunbookEnv } from '../helpers/runbook-env.ts';

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
