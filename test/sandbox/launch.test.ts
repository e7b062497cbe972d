// sandbox/launch.mjs starts the sandbox's own programs from a cached bundle: the program must see
// what it sees under the TypeScript loader (its argv, each module's own import.meta.url, packages
// from node_modules, its exit code), an edited source must be seen at the next start, and a cache
// that cannot be written must not stop the program (it then runs through the loader).
import { execFile } from 'node:child_process';
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import t from 'tap';
import { REPO } from '../helpers/run-cli.ts';

const run = promisify(execFile);

/** What the program saw, printed as JSON; `--fail` ends it with exit code 7. */
const PROGRAM = `import { readdirSync, readFileSync } from 'node:fs';
import { stringify } from 'yaml';
import { where, word } from './parts/where.ts';
import { place } from './parts/place.mjs';

/** The command lines of this process's children, once none of them is esbuild (at most 5 s). */
async function children(): Promise<string[]> {
  const read = () =>
    readdirSync('/proc/self/task')
      .flatMap((task) => readFileSync(\`/proc/self/task/\${task}/children\`, 'utf8').split(' '))
      .filter(Boolean)
      .map((pid) => {
        try {
          return readFileSync(\`/proc/\${pid}/cmdline\`, 'utf8').replaceAll('\\0', ' ');
        } catch {
          return '';
        }
      })
      .filter(Boolean);
  const deadline = Date.now() + 5000;
  while (read().some((line) => line.includes('esbuild')) && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return read();
}

console.log(
  JSON.stringify({
    argv: process.argv.slice(1),
    main: import.meta.url,
    where,
    place,
    word,
    yaml: stringify({ a: 1 }).trim(),
    lazy: (await import('./parts/where.ts')).word,
    children: await children(),
  }),
);
process.exit(process.argv.includes('--fail') ? 7 : 0);
`;

/** A checkout of its own (ES modules, as this one): launch.mjs, the packages it and the program use, a program in two modules. */
function checkout(): { root: string; program: string; helper: string; cache: string } {
  const root = mkdtempSync(join(tmpdir(), 'launch-'));
  mkdirSync(join(root, 'sandbox', 'tool', 'parts'), { recursive: true });
  cpSync(join(REPO, 'sandbox', 'launch.mjs'), join(root, 'sandbox', 'launch.mjs'));
  cpSync(join(REPO, 'lib', 'ts-loader'), join(root, 'lib', 'ts-loader'), { recursive: true });
  cpSync(join(REPO, 'lib', 'cache-dir.mjs'), join(root, 'lib', 'cache-dir.mjs'));
  writeFileSync(join(root, 'package.json'), '{ "type": "module" }\n');
  mkdirSync(join(root, 'node_modules'));
  for (const name of ['esbuild', 'typescript', 'yaml']) {
    symlinkSync(join(REPO, 'node_modules', name), join(root, 'node_modules', name));
  }
  const program = join(root, 'sandbox', 'tool', 'main.ts');
  const helper = join(root, 'sandbox', 'tool', 'parts', 'where.ts');
  writeFileSync(
    helper,
    "export const where: string = import.meta.url;\nexport const word = 'first';\n",
  );
  // Plain JavaScript among the TypeScript (as lib/cache-dir.mjs): its import.meta.url is its own too.
  writeFileSync(
    join(root, 'sandbox', 'tool', 'parts', 'place.mjs'),
    'export const place = import.meta.url;\n',
  );
  writeFileSync(program, PROGRAM);
  return {
    root,
    program,
    helper,
    cache: join(root, 'node_modules', '.cache', 'redis-shared-runbooks', 'programs'),
  };
}

async function start(
  root: string,
  args: string[],
): Promise<{ code: number; answer: Record<string, unknown> }> {
  // The loader's fallback cache (when node_modules cannot be written) is in the temp folder:
  // the checkout's own, so that nothing is left in the user's.
  const temp = join(root, 'tmp');
  mkdirSync(temp, { recursive: true });
  try {
    const { stdout } = await run(process.execPath, [join(root, 'sandbox', 'launch.mjs'), ...args], {
      env: { ...process.env, TMPDIR: temp },
    });
    return { code: 0, answer: JSON.parse(stdout) };
  } catch (err) {
    const failed = err as { code: number; stdout: string };
    return { code: failed.code, answer: JSON.parse(failed.stdout) };
  }
}

t.test(
  'the program sees its argv, its own import.meta.url and node_modules, from a bundle, and no esbuild left beside it',
  async (t) => {
    const c = checkout();
    t.teardown(() => rmSync(c.root, { recursive: true, force: true }));
    const { code, answer } = await start(c.root, [c.program, 'plan', '-out=x']);
    t.equal(code, 0);
    t.same(answer, {
      argv: [c.program, 'plan', '-out=x'],
      main: pathToFileURL(c.program).href,
      where: pathToFileURL(c.helper).href,
      place: pathToFileURL(join(c.root, 'sandbox', 'tool', 'parts', 'place.mjs')).href,
      word: 'first',
      yaml: 'a: 1',
      lazy: 'first',
      children: [],
    });
    const records = readdirSync(c.cache).filter((name) => name.endsWith('.json'));
    t.equal(records.length, 1, 'one record of the bundle');
    t.equal((await start(c.root, [c.program, '--fail'])).code, 7, 'the exit code passes through');
  },
);

t.test('the next start reuses the bundle, and an edited module is seen at once', async (t) => {
  const c = checkout();
  t.teardown(() => rmSync(c.root, { recursive: true, force: true }));
  await start(c.root, [c.program]);
  const builds = () => readdirSync(c.cache).filter((name) => !name.endsWith('.json'));
  const first = builds();
  t.equal(first.length, 1, 'one build');
  const builtAt = statSync(join(c.cache, first[0]!)).mtimeMs;
  t.equal((await start(c.root, [c.program])).answer.word, 'first');
  t.same(builds(), first, 'no new build for unchanged sources');
  t.equal(statSync(join(c.cache, first[0]!)).mtimeMs, builtAt);
  writeFileSync(
    c.helper,
    "export const where: string = import.meta.url;\nexport const word = 'second, longer';\n",
  );
  const edited = await start(c.root, [c.program]);
  t.equal(edited.answer.word, 'second, longer', 'the edit is in the program');
  t.equal(edited.answer.lazy, 'second, longer', 'and in its lazily imported module');
  t.equal(builds().length, 2, 'a new build beside the old one (removed once it is stale)');
});

t.test(
  'a cache that cannot be written: the program runs through the TypeScript loader, and sees the same',
  async (t) => {
    const c = checkout();
    t.teardown(() => rmSync(c.root, { recursive: true, force: true }));
    writeFileSync(join(c.root, 'node_modules', '.cache'), 'not a directory\n');
    const { code, answer } = await start(c.root, [c.program, 'apply']);
    t.equal(code, 0);
    t.same(answer.argv, [c.program, 'apply']);
    t.equal(answer.main, pathToFileURL(c.program).href);
    t.equal(answer.where, pathToFileURL(c.helper).href);
    t.equal(
      answer.place,
      pathToFileURL(join(c.root, 'sandbox', 'tool', 'parts', 'place.mjs')).href,
    );
    t.equal(answer.yaml, 'a: 1');
    t.notOk(existsSync(c.cache), 'nothing was cached');
  },
);
