// docs/operations.md is a guide an operator pastes from: every runbook command in its code blocks
// names a runbook that exists, with flags that runbook takes, steps it has, and the name its
// irreversible step asks for.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { parseRunbookArgs } from '../../lib/engine/runbook-args.ts';
import { REPO } from '../helpers/run-cli.ts';

interface RunbookLike {
  flags?: Record<string, { type: 'boolean' | 'string'; description: string }>;
  modes?: Record<string, { steps: readonly { id: string }[] }>;
  steps: readonly { id: string }[];
}

function runbookCommands(markdown: string): string[][] {
  const blocks = [...markdown.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1] as string);
  const inline = [...markdown.matchAll(/`(\.\/runbooks\/[^`]+)`/g)].map((m) => m[1] as string);
  return [...blocks.flatMap((b) => b.split('\n')), ...inline]
    .map((line) => line.replace(/#.*$/, '').trim())
    .filter((line) => line.startsWith('./runbooks/'))
    .map((line) => line.split(/\s+/));
}

const guide = readFileSync(join(REPO, 'docs', 'operations.md'), 'utf8');
const commands = runbookCommands(guide);

t.test('the guide has runbook commands to check', async (t) => {
  t.ok(commands.length >= 8, `${commands.length} commands`);
});

for (const [program, ...argv] of commands) {
  t.test([program, ...argv].join(' '), async (t) => {
    const { runbook } = (await import(join(REPO, program as string))) as { runbook: RunbookLike };
    const args = parseRunbookArgs(argv, runbook.flags, Object.keys(runbook.modes ?? {}));
    const steps = [
      ...runbook.steps,
      ...Object.values(runbook.modes ?? {}).flatMap((m) => m.steps),
    ].map((s) => s.id);
    for (const step of [args.from, ...(args.only ?? [])].filter(Boolean)) {
      t.ok(steps.includes(step as string), `${program} has step ${step}`);
    }
    for (const name of args.confirmNames) {
      t.equal(
        name,
        'redis/redis-shared',
        'the name the restore asks for, with the default settings',
      );
    }
    t.pass('the flags parse');
  });
}

t.test("every alert the guide names is one of the module's rules", async (t) => {
  const rules = readFileSync(
    join(REPO, 'terraform', 'modules', 'redis-shared', 'alerts.yaml'),
    'utf8',
  );
  const named = [...new Set([...guide.matchAll(/`(Redis[A-Z]\w+)`/g)].map((m) => m[1] as string))];
  t.ok(named.length >= 3, named.join(', '));
  for (const alert of named) t.match(rules, new RegExp(`alert: ${alert}\\b`), alert);
});
