// The --help text: steps, risks, flags, gates, the confirmation rule, exit codes and each mode.
import t from 'tap';
import { defineRunbook, helpText, type StepDefinition } from '../../lib/engine/runbook.ts';
import { execute, markerRunbook } from '../helpers/marker-runbook.ts';
import { makeRunbookEnv } from '../helpers/runbook-env.ts';

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
