// script/bootstrap, the pre-script of `npm test` and `npm run rehearse`: installs only what is
// missing and says what; without root it prints the exact command instead.
import { execFile } from 'node:child_process';
import { chmod, copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import t, { type Test } from 'tap';

const BOOTSTRAP = resolve(import.meta.dirname, '..', '..', 'script', 'bootstrap');

function run(
  argv: string[],
  opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((done) => {
    execFile(argv[0]!, argv.slice(1), { ...opts, timeout: 120_000 }, (err, stdout, stderr) =>
      done({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr }),
    );
  });
}

/** A project with one dependency from a local tarball, so `npm ci` needs no registry. */
async function project(t: Test): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'bootstrap-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await chmod(dir, 0o755);
  await mkdir(join(dir, 'script'));
  await copyFile(BOOTSTRAP, join(dir, 'script', 'bootstrap'));
  await mkdir(join(dir, 'dep'));
  await writeFile(join(dir, 'dep', 'package.json'), '{"name":"dep","version":"1.0.0"}');
  const packed = await run(['npm', 'pack', '--silent', './dep'], { cwd: dir });
  t.equal(packed.code, 0, packed.stderr);
  await writeFile(
    join(dir, 'package.json'),
    JSON.stringify({ name: 'p', version: '1.0.0', dependencies: { dep: 'file:dep-1.0.0.tgz' } }),
  );
  const installed = await run(['npm', 'install', '--no-audit', '--no-fund', '--offline'], {
    cwd: dir,
  });
  t.equal(installed.code, 0, installed.stderr);
  return dir;
}

t.test('node_modules missing or stale: npm ci, and it says so; fresh: nothing', async (t) => {
  const dir = await project(t);
  const bootstrap = join(dir, 'script', 'bootstrap');
  const fresh = await run([bootstrap, 'rehearse'], { cwd: dir });
  t.equal(fresh.code, 0, fresh.stderr);
  t.equal(fresh.stderr, '', 'fresh: silent');

  await rm(join(dir, 'node_modules'), { recursive: true });
  const missing = await run([bootstrap, 'rehearse'], { cwd: dir });
  t.equal(missing.code, 0);
  t.match(missing.stderr, /bootstrap: node_modules is missing: running npm ci/);
  t.match(await readFile(join(dir, 'node_modules', 'dep', 'package.json'), 'utf8'), /1\.0\.0/);

  const hidden = join(dir, 'node_modules', '.package-lock.json');
  const lock = JSON.parse(await readFile(hidden, 'utf8'));
  lock.packages['node_modules/dep'].version = '0.9.0';
  await writeFile(hidden, JSON.stringify(lock));
  const stale = await run([bootstrap, 'rehearse'], { cwd: dir });
  t.match(stale.stderr, /node_modules is stale: running npm ci/);
  t.equal(stale.code, 0);
});

t.test('a stale node_modules that is a symlink to another checkout is left alone', async (t) => {
  const dir = await project(t);
  const elsewhere = join(dir, 'elsewhere');
  await run(['mv', join(dir, 'node_modules'), elsewhere]);
  await run(['ln', '-s', elsewhere, join(dir, 'node_modules')]);
  await writeFile(join(elsewhere, '.package-lock.json'), '{}');
  const res = await run([join(dir, 'script', 'bootstrap'), 'rehearse'], { cwd: dir });
  t.equal(res.code, 1);
  t.match(res.stderr, /is a symlink to .*elsewhere; run 'npm ci' where it points/);
});

t.test('without root, a missing Debian package is named with the exact command', async (t) => {
  const dir = await project(t);
  // dpkg-query is the only thing replaced: it reports chromium as not installed.
  const bin = join(dir, 'bin');
  await mkdir(bin);
  await writeFile(
    join(bin, 'dpkg-query'),
    `#!/bin/sh\nfor a; do pkg="$a"; done\n[ "$pkg" = chromium ] && { echo -n "deinstall ok config-files"; exit 0; }\nexec /usr/bin/dpkg-query "$@"\n`,
  );
  await chmod(join(bin, 'dpkg-query'), 0o755);
  const env = { PATH: `${bin}:${process.env.PATH}`, HOME: dir };
  const asUser = await run(
    [
      'setpriv',
      '--reuid=65534',
      '--regid=65534',
      '--clear-groups',
      join(dir, 'script', 'bootstrap'),
    ],
    { cwd: dir, env },
  );
  t.equal(asUser.code, 1);
  t.match(
    asUser.stderr,
    'bootstrap: missing Debian packages: chromium. Install them with:\n  sudo apt-get update && sudo apt-get install -y --no-install-recommends chromium\n',
  );
  const rehearse = await run(
    [
      'setpriv',
      '--reuid=65534',
      '--regid=65534',
      '--clear-groups',
      join(dir, 'script', 'bootstrap'),
      'rehearse',
    ],
    { cwd: dir, env },
  );
  t.equal(rehearse.code, 0, 'the rehearsal needs no chromium');
});

t.test('an unknown purpose is a usage error', async (t) => {
  const res = await run([BOOTSTRAP, 'deploy']);
  t.equal(res.code, 2);
  t.match(res.stderr, /usage: script\/bootstrap \[test\|rehearse\]/);
});
