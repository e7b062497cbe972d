// The static import graph of the repository's own modules (relative `import`/`export … from`,
// type-only ones included: they tie the layers as much as value imports do). `await import()`
// is left out on purpose: it is how a step loads what only it needs.
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

const STATIC_IMPORT = /^\s*(?:import|export)\s[^;]*?\sfrom\s+['"](\.{1,2}\/[^'"]+)['"]/gm;
const SIDE_EFFECT_IMPORT = /^\s*import\s+['"](\.{1,2}\/[^'"]+)['"]/gm;

export type ImportGraph = Map<string, string[]>;

/** Every .ts/.mts/.mjs file under `dirs` (relative to `repo`) → the repo files it imports. */
export function importGraph(repo: string, dirs: string[]): ImportGraph {
  const graph: ImportGraph = new Map();
  for (const dir of dirs) {
    for (const entry of readdirSync(join(repo, dir), { recursive: true }).map(String)) {
      if (!/\.(ts|mts|mjs)$/.test(entry) || entry.includes('node_modules')) continue;
      const file = join(dir, entry);
      const text = readFileSync(join(repo, file), 'utf8');
      const targets = new Set<string>();
      for (const pattern of [STATIC_IMPORT, SIDE_EFFECT_IMPORT]) {
        for (const m of text.matchAll(pattern)) {
          targets.add(relative(repo, resolve(repo, dirname(file), m[1]!)));
        }
      }
      graph.set(file, [...targets].sort());
    }
  }
  return graph;
}

/** Each import cycle once, as the chain of files that closes it (Tarjan's strongly connected components). */
export function importCycles(graph: ImportGraph): string[][] {
  let index = 0;
  const indices = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const cycles: string[][] = [];
  const visit = (node: string) => {
    indices.set(node, index);
    low.set(node, index);
    index++;
    stack.push(node);
    onStack.add(node);
    for (const next of graph.get(node) ?? []) {
      if (!graph.has(next)) continue;
      if (!indices.has(next)) {
        visit(next);
        low.set(node, Math.min(low.get(node)!, low.get(next)!));
      } else if (onStack.has(next)) {
        low.set(node, Math.min(low.get(node)!, indices.get(next)!));
      }
    }
    if (low.get(node) === indices.get(node)) {
      const component: string[] = [];
      let member: string;
      do {
        member = stack.pop()!;
        onStack.delete(member);
        component.push(member);
      } while (member !== node);
      const selfImport = graph.get(node)?.includes(node);
      if (component.length > 1 || selfImport) cycles.push(component.sort());
    }
  };
  for (const node of [...graph.keys()].sort()) if (!indices.has(node)) visit(node);
  return cycles;
}
