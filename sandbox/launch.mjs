// node sandbox/launch.mjs <program.ts> [args…]: starts one of the sandbox's own TypeScript
// programs (the tofu stand-in, the beersystem stand-in, the daemon) from a bundle of it kept in
// node_modules/.cache. Even with compiled modules cached (lib/ts-loader), every start through the
// TypeScript loader pays for a loader thread and a cache lookup per module; the tests start these
// programs hundreds of times, the stand-in tofu alone once per command. The bundle is the same
// code (esbuild, packages left to node_modules, each module's import.meta.url its own file's),
// and is made again whenever one of its source files changed (size or mtime): edit a file and the
// next start sees the edit. Without esbuild, or when the bundle cannot be made, the program runs
// through the TypeScript loader.
//
// Only the sandbox's programs start this way: the runbooks, which an operator runs, always start
// through their own shebang line and the TypeScript loader.
import { createHash } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { CACHE_DIR, REPO } from '../lib/cache-dir.mjs';
import '../lib/ts-loader/wasm-baseline.mjs';

const PROGRAMS_DIR = join(CACHE_DIR, 'programs');
/** A build another process may still be importing from is left this long before it is removed. */
const STALE_BUILD_MS = 10 * 60_000;

/** `size:mtime` of a file, or undefined when it is gone. */
function fingerprint(file) {
  try {
    const stat = statSync(file);
    return `${stat.size}:${stat.mtimeMs}`;
  } catch {
    return undefined;
  }
}

/** Where the bundle of `entry` is recorded: one name per checkout and program. */
function recordPath(entry) {
  const key = createHash('sha256').update(entry).digest('hex').slice(0, 12);
  return join(PROGRAMS_DIR, `${basename(dirname(entry))}-${basename(entry, '.ts')}-${key}.json`);
}

/** The bundle's main file when the record says it was made from the sources as they are now. */
function freshBundle(entry) {
  try {
    const record = JSON.parse(readFileSync(recordPath(entry), 'utf8'));
    const unchanged = Object.entries(record.inputs).every(
      ([file, print]) => fingerprint(resolve(REPO, file)) === print,
    );
    return unchanged && existsSync(record.main) ? record.main : undefined;
  } catch {
    return undefined;
  }
}

/** esbuild: each module's import.meta.url is its source file's, as it is under the loader. */
const ownImportMetaUrl = {
  name: 'own-import-meta-url',
  setup(build) {
    build.onLoad({ filter: /\.(m?ts|mjs)$/ }, async (args) => ({
      contents: (await readFile(args.path, 'utf8')).replaceAll(
        'import.meta.url',
        JSON.stringify(pathToFileURL(args.path).href),
      ),
      loader: args.path.endsWith('.mjs') ? 'js' : 'ts',
    }));
  },
};

async function makeBundle(entry) {
  const esbuild = await import('esbuild');
  const record = recordPath(entry);
  const outdir = `${record.slice(0, -'.json'.length)}-${process.pid}-${Date.now()}`;
  // esbuild's service process would otherwise live as long as the program (the daemon: as long
  // as the sandbox, whose `down` counts it as a process left behind).
  const result = await esbuild
    .build({
      entryPoints: [entry],
      bundle: true,
      splitting: true,
      platform: 'node',
      format: 'esm',
      target: 'node20',
      outdir,
      outExtension: { '.js': '.mjs' },
      packages: 'external',
      metafile: true,
      logLevel: 'silent',
      plugins: [ownImportMetaUrl],
    })
    .finally(() => esbuild.stop());
  const inputs = Object.fromEntries(
    Object.keys(result.metafile.inputs).map((file) => {
      const path = resolve(REPO, file);
      return [relative(REPO, path), fingerprint(path)];
    }),
  );
  const main = join(outdir, `${basename(entry).replace(/\.m?ts$/, '')}.mjs`);
  const partial = `${record}.${process.pid}.partial`;
  writeFileSync(partial, `${JSON.stringify({ main, inputs })}\n`);
  renameSync(partial, record);
  removeStaleBuilds(record, outdir);
  return main;
}

function removeStaleBuilds(record, current) {
  const prefix = basename(record, '.json');
  for (const name of readdirSync(PROGRAMS_DIR)) {
    const path = join(PROGRAMS_DIR, name);
    if (!name.startsWith(`${prefix}-`) || path === current) continue;
    try {
      if (Date.now() - statSync(path).mtimeMs > STALE_BUILD_MS)
        rmSync(path, { recursive: true, force: true });
    } catch {
      // Another process removed it first.
    }
  }
}

export async function launch(entry, args) {
  const program = resolve(entry);
  // The program sees the argv it would see started as `node --import <loader> <program> args…`.
  process.argv.splice(1, process.argv.length - 1, program, ...args);
  let main = freshBundle(program);
  if (!main) {
    try {
      mkdirSync(PROGRAMS_DIR, { recursive: true });
      main = await makeBundle(program);
    } catch {
      main = undefined;
    }
  }
  if (main) return import(pathToFileURL(main).href);
  await import('../lib/ts-loader/register.mjs');
  return import(pathToFileURL(program).href);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const [entry, ...args] = process.argv.slice(2);
  if (!entry) {
    console.error('usage: node sandbox/launch.mjs <program.ts> [args…]');
    process.exit(2);
  }
  await launch(entry, args);
}
