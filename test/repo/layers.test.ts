// The layers hold (docs/architecture.md): no import cycle anywhere in the project's code, and
// the runbook engine (lib/engine/) knows nothing of the phases or of Redis.
import t from 'tap';
import { importCycles, importGraph } from '../helpers/import-graph.ts';
import { REPO } from '../helpers/run-cli.ts';

const CODE = ['lib', 'runbooks', 'sandbox', 'script'];

t.test('no import cycle in lib/, runbooks/, sandbox/ or script/', async (t) => {
  const graph = importGraph(REPO, CODE);
  t.ok(graph.size > 100, `${graph.size} modules read`);
  t.same(importCycles(graph), [], 'every cycle is listed here as the files that form it');
});

t.test('lib/engine/ imports nothing from lib/phases/ or lib/redis/', async (t) => {
  const graph = importGraph(REPO, ['lib']);
  const crossings = [...graph]
    .filter(([file]) => file.startsWith('lib/engine/'))
    .flatMap(([file, targets]) =>
      targets
        .filter((to) => to.startsWith('lib/phases/') || to.startsWith('lib/redis/'))
        .map((to) => `${file} → ${to}`),
    );
  t.same(crossings, []);
});

t.test('the cycle finder finds a cycle and the engine rule a crossing', async (t) => {
  const graph = new Map([
    ['lib/a.ts', ['lib/b.ts']],
    ['lib/b.ts', ['lib/c.ts']],
    ['lib/c.ts', ['lib/a.ts', 'lib/d.ts']],
    ['lib/d.ts', []],
    ['lib/e.ts', ['lib/e.ts']],
  ]);
  t.same(importCycles(graph), [['lib/a.ts', 'lib/b.ts', 'lib/c.ts'], ['lib/e.ts']]);
});
