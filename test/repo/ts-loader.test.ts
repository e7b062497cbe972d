// lib/ts-loader runs every TypeScript file of the project (the runbooks' shebang line, the tests,
// the tools). Each case runs a real Node process in a checkout of its own: the program must run
// as TypeScript means it, a start after the first must not need the compiler, an edit must be
// compiled again, a stack trace must name the .ts line, and a node_modules that cannot be written
// must not stop anything.
import { execFile } from 'node:child_process';
import {
  chmodSync,
  cpSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  unlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import t, { type Test } from 'tap';
import { REPO, withoutCoverage } from '../helpers/run-cli.ts';

const PROGRAM = `import type { Shape } from './shape.ts';
import { Circle } from './shape.ts';

interface Report { area: number; name: string }
enum Unit { Metre = 'm' }
const shape: Shape = new Circle(2);
const report: Report = { area: Math.round(shape.area()), name: shape.name };
console.log(JSON.stringify({ ...report, unit: Unit.Metre, url: import.meta.url }));
if (process.argv.includes('--throw')) throw new Error('thrown on purpose');
`;

const SHAPE = `export interface Shape { area(): number; readonly name: string }
export class Circle implements Shape {
  readonly name: string = 'circle';
  constructor(private readonly radius: number) {}
  area(): number { return Math.PI * this.radius ** 2; }
}
`;

interface Checkout {
  root: string;
  program: string;
  cache: string;
}

function checkout(): Checkout {
  const root = mkdtempSync(join(tmpdir(), 'ts-loader-'));
  cpSync(join(REPO, 'lib', 'ts-loader'), join(root, 'lib', 'ts-loader'), { recursive: true });
  cpSync(join(REPO, 'lib', 'cache-dir.mjs'), join(root, 'lib', 'cache-dir.mjs'));
  writeFileSync(join(root, 'package.json'), '{ "type": "module" }\n');
  mkdirSync(join(root, 'node_modules'));
  symlinkSync(join(REPO, 'node_modules', 'typescript'), join(root, 'node_modules', 'typescript'));
  mkdirSync(join(root, 'src'));
  const program = join(root, 'src', 'main.ts');
  writeFileSync(program, PROGRAM);
  writeFileSync(join(root, 'src', 'shape.ts'), SHAPE);
  return {
    root,
    program,
    cache: join(root, 'node_modules', '.cache', 'redis-shared-runbooks', 'ts'),
  };
}

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function run(c: Checkout, args: string[] = [], env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--import', join(c.root, 'lib', 'ts-loader', 'register.mjs'), c.program, ...args],
      { cwd: c.root, env: withoutCoverage(env) },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

/** A checkout whose node_modules cannot take the cache, and a temp directory of its own. */
function checkoutWithoutCacheInNodeModules(t: Test): { c: Checkout; temp: string } {
  const c = checkout();
  const temp = mkdtempSync(join(tmpdir(), 'ts-loader-tmp-'));
  t.teardown(() => {
    rmSync(c.root, { recursive: true, force: true });
    rmSync(temp, { recursive: true, force: true });
  });
  writeFileSync(join(c.root, 'node_modules', '.cache'), 'not a directory\n');
  return { c, temp };
}

const cached = (dir: string) => readdirSync(dir).filter((f) => f.endsWith('.js'));

t.test('a program runs as TypeScript means it: types erased, classes and enums kept', async (t) => {
  const c = checkout();
  t.teardown(() => rmSync(c.root, { recursive: true, force: true }));
  const { code, stdout, stderr } = await run(c);
  t.equal(code, 0, stderr);
  t.same(JSON.parse(stdout), {
    area: 13,
    name: 'circle',
    unit: 'm',
    url: `file://${c.program}`,
  });
  t.equal(cached(c.cache).length, 2, 'both modules compiled and kept');
});

/** Puts a typescript package of the same version in place whose loading is an error. */
function compilerThatMustNotLoad(c: Checkout): void {
  const dir = join(c.root, 'node_modules', 'typescript');
  const { version } = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
  unlinkSync(dir);
  mkdirSync(dir);
  writeFileSync(
    join(dir, 'package.json'),
    JSON.stringify({ name: 'typescript', version, main: 'compiler.js' }),
  );
  writeFileSync(join(dir, 'compiler.js'), "throw new Error('the compiler was loaded');\n");
}

t.test('a start after the first needs no compiler; an edited file is compiled again', async (t) => {
  const c = checkout();
  t.teardown(() => rmSync(c.root, { recursive: true, force: true }));
  t.equal((await run(c)).code, 0);
  compilerThatMustNotLoad(c);

  const again = await run(c);
  t.equal(again.code, 0, `ran from the cache: ${again.stderr}`);
  t.match(again.stdout, /"area":13/);

  writeFileSync(c.program, PROGRAM.replace('Circle(2)', 'Circle(3)'));
  const edited = await run(c);
  t.not(edited.code, 0, 'the edited file is compiled again');
  t.match(edited.stderr, 'the compiler was loaded');
});

t.test('without the typescript package, the error says what to do', async (t) => {
  const c = checkout();
  t.teardown(() => rmSync(c.root, { recursive: true, force: true }));
  unlinkSync(join(c.root, 'node_modules', 'typescript'));
  const { code, stderr } = await run(c);
  t.equal(code, 1);
  t.match(stderr, /typescript package is not installed in .*node_modules \(run 'npm ci' in /);
});

t.test("a thrown error's stack names the TypeScript file and line", async (t) => {
  const c = checkout();
  t.teardown(() => rmSync(c.root, { recursive: true, force: true }));
  const { code, stderr } = await run(c, ['--throw']);
  t.equal(code, 1);
  t.match(stderr, 'thrown on purpose');
  t.match(stderr, `${c.program}:9:`, 'line 9 of main.ts, where the throw is');
});

t.test(
  'node_modules that cannot be written: compiled files are kept in the temp directory',
  async (t) => {
    const { c, temp } = checkoutWithoutCacheInNodeModules(t);
    const { code, stdout, stderr } = await run(c, [], { TMPDIR: temp });
    t.equal(code, 0, stderr);
    t.match(stdout, /"area":13/);
    const [dir] = readdirSync(temp);
    t.match(dir, /^redis-shared-runbooks-ts-\d+$/);
    t.equal(cached(join(temp, dir!)).length, 2);
  },
);

t.test('a cache folder others can write to is never used: what is cached is run', async (t) => {
  const { c, temp } = checkoutWithoutCacheInNodeModules(t);
  const shared = join(temp, `redis-shared-runbooks-ts-${process.getuid?.()}`);
  mkdirSync(shared);
  chmodSync(shared, 0o777);
  const { code, stdout, stderr } = await run(c, [], { TMPDIR: temp });
  t.equal(code, 0, stderr);
  t.match(stdout, /"area":13/, 'the program runs, compiled afresh');
  t.same(readdirSync(shared), [], 'nothing written to the shared folder');
});

t.test(
  'precompile fills the cache in one process: the first start needs no compiler; what no file has is removed once an hour old',
  async (t) => {
    const c = checkout();
    t.teardown(() => rmSync(c.root, { recursive: true, force: true }));
    const hooks = join(c.root, 'lib', 'ts-loader', 'hooks.mjs');
    const files = [c.program, join(c.root, 'src', 'shape.ts')];
    const precompile = (): Promise<string> =>
      new Promise((resolve, reject) => {
        execFile(
          process.execPath,
          [
            '--input-type=module',
            '-e',
            `const { precompile } = await import(${JSON.stringify(hooks)}); console.log(JSON.stringify(await precompile(${JSON.stringify(files)})));`,
          ],
          { env: withoutCoverage() },
          (err, stdout) => (err ? reject(err) : resolve(stdout.trim())),
        );
      });
    t.same(JSON.parse(await precompile()), { compiled: 2, removed: 0 }, 'both files compiled');
    const entries = () => readdirSync(c.cache).sort();
    const compiledNow = entries();
    // Files no current file has: an entry from an edit an hour ago, the temp file of a writer
    // killed an hour ago, and an entry from a minute ago.
    const old = join(c.cache, `${'0'.repeat(64)}.js`);
    const killed = join(c.cache, `${'2'.repeat(64)}.4242.tmp`);
    const recent = join(c.cache, `${'1'.repeat(64)}.js`);
    const hourAgo = new Date(Date.now() - 61 * 60_000);
    for (const file of [old, killed, recent]) writeFileSync(file, 'export {};\n');
    for (const file of [old, killed]) utimesSync(file, hourAgo, hourAgo);
    t.same(
      JSON.parse(await precompile()),
      { compiled: 0, removed: 2 },
      'skipped the second time, and the hour-old files removed',
    );
    t.same(entries(), [...compiledNow, basename(recent)].sort(), 'the recent one is left');
    compilerThatMustNotLoad(c);
    const first = await run(c);
    t.equal(first.code, 0, `the first start ran from the cache: ${first.stderr}`);
    t.match(first.stdout, /"area":13/);
  },
);
