// What runbook.ts does around a run: defineRunbook's checks, invalid settings refused before
// anything runs, programPath, and runMain leaving an imported runbook file alone.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { readAuditEntries } from '../../lib/audit/audit.ts';
import {
  defineRunbook,
  programPath,
  runMain,
  type StepDefinition,
} from '../../lib/engine/runbook.ts';
import { ALL, execute, markerRunbook } from '../helpers/marker-runbook.ts';
import { makeRunbookEnv } from '../helpers/runbook-env.ts';

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

t.test('runMain leaves a runbook file alone when it is imported rather than run', async (t) => {
  const sandbox = makeRunbookEnv(t);
  await runMain(markerRunbook(sandbox), 'file:///nowhere/imported.mts');
  t.same(await readAuditEntries(sandbox.auditLog), [], 'nothing ran');
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
