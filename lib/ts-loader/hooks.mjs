// Module hooks that run this project's TypeScript on Node 20, which cannot strip types itself.
// A .ts/.mts file is compiled by TypeScript's own transpileModule, one file at a time, as
// `tsc --isolatedModules` would (types erased, imports used only as types dropped, a source map
// inline so stack traces and coverage name the .ts lines), and the JavaScript is kept on disk
// under the hash of the file's path and text. A later start reads that JavaScript and never loads
// the compiler: a runbook's `--help` then costs little more than plain Node's.
//
// The cache is node_modules/.cache/redis-shared-runbooks/ts (npm ci empties it), or a folder of
// the user's own in the temp directory when node_modules cannot be written. What is in the cache
// is run, so a folder another user could write to is never used (no cache then: each start
// compiles). Entries are written whole (a temp file renamed into place), so two processes
// compiling the same file at once both read a whole one.
import { createHash } from 'node:crypto';
import {
  accessSync,
  constants,
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  statSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CACHE_DIR, NODE_MODULES, REPO } from '../cache-dir.mjs';

/** The files this loader compiles (declaration files are never run). */
export const TYPESCRIPT_FILE = /\.m?ts$/;
/** Part of every key: raise it when the compiler options below change. */
const OPTIONS_VERSION = 1;

/** This checkout's own cache; the temp folder's is the fallback. */
const OWN_CACHE = join(CACHE_DIR, 'ts');
const cacheDir = chooseCacheDir();
let compiler;
let compilerKey;

function chooseCacheDir() {
  for (const dir of [OWN_CACHE, join(tmpdir(), `redis-shared-runbooks-ts-${userInfo().uid}`)]) {
    try {
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      accessSync(dir, constants.W_OK);
      if (ownAndPrivate(dir)) return dir;
    } catch {
      // the next place, or no cache at all
    }
  }
  return undefined;
}

/** A real folder of this user's that no one else can write to. */
function ownAndPrivate(dir) {
  const stat = lstatSync(dir);
  return stat.isDirectory() && stat.uid === process.getuid() && (stat.mode & 0o022) === 0;
}

/** What a compilation depends on besides the file: the compiler's version and our options. */
function compilerIdentity() {
  if (compilerKey === undefined) {
    const manifest = join(NODE_MODULES, 'typescript', 'package.json');
    try {
      compilerKey = `${OPTIONS_VERSION}:${JSON.parse(readFileSync(manifest, 'utf8')).version}`;
    } catch (err) {
      throw notInstalled(err);
    }
  }
  return compilerKey;
}

const notInstalled = (err) =>
  new Error(
    `cannot run TypeScript: the typescript package is not installed in ${NODE_MODULES} (run 'npm ci' in ${REPO}): ${err.message}`,
  );

async function loadCompiler() {
  try {
    compiler ??= (await import('typescript')).default;
    return compiler;
  } catch (err) {
    throw notInstalled(err);
  }
}

async function compile(source, file) {
  const ts = await loadCompiler();
  const out = ts.transpileModule(source, {
    fileName: file,
    compilerOptions: {
      target: ts.ScriptTarget.ES2022,
      module: ts.ModuleKind.ESNext,
      allowImportingTsExtensions: true,
      isolatedModules: true,
      esModuleInterop: true,
      sourceMap: true,
    },
  });
  const map = JSON.parse(out.sourceMapText);
  map.file = file;
  map.sources = [file];
  const code = out.outputText.replace(/\/\/# sourceMappingURL=\S*\s*$/, '');
  const inline = Buffer.from(JSON.stringify(map)).toString('base64');
  return `${code}//# sourceMappingURL=data:application/json;base64,${inline}\n`;
}

const cachedFile = (key) => join(cacheDir, `${key}.js`);

function readCached(key) {
  if (cacheDir === undefined) return undefined;
  try {
    return readFileSync(cachedFile(key), 'utf8');
  } catch {
    return undefined;
  }
}

function keep(key, code) {
  if (cacheDir === undefined) return;
  const tmp = join(cacheDir, `${key}.${process.pid}.tmp`);
  try {
    writeFileSync(tmp, code);
    renameSync(tmp, cachedFile(key));
  } catch {
    // not kept: the next start compiles the file again
  }
}

const keyOf = (file, source) =>
  createHash('sha256').update(`${compilerIdentity()}\0${file}\0`).update(source).digest('hex');

/** What precompile leaves of the entries no file given has (another process may be using it). */
const UNUSED_ENTRY_MS = 60 * 60_000;

/**
 * Compiles into the cache every file given that is not there yet, in this one process (npm's
 * postinstall, script/bootstrap): otherwise, after `npm ci`, each process that meets a file
 * first loads the compiler for it, and every test file is such a file once. Give it every file
 * of the checkout: what no file given has (an earlier version of an edited file, a file since
 * removed, a temp file a killed process left) is removed once it is an hour old.
 */
export async function precompile(files) {
  const current = new Set();
  let compiled = 0;
  for (const file of files) {
    const source = readFileSync(file, 'utf8');
    const key = keyOf(file, source);
    current.add(`${key}.js`);
    if (cacheDir !== undefined && existsSync(cachedFile(key))) continue;
    keep(key, await compile(source, file));
    compiled += 1;
  }
  return { compiled, removed: removeUnused(current) };
}

/** Only in this checkout's own cache: the temp folder's may hold other checkouts' files. */
function removeUnused(current) {
  if (cacheDir !== OWN_CACHE) return 0;
  let removed = 0;
  for (const name of readdirSync(cacheDir)) {
    if (current.has(name)) continue;
    try {
      if (Date.now() - statSync(join(cacheDir, name)).mtimeMs < UNUSED_ENTRY_MS) continue;
      unlinkSync(join(cacheDir, name));
      removed += 1;
    } catch {
      // removed by another process first
    }
  }
  return removed;
}

export async function load(url, context, nextLoad) {
  if (!url.startsWith('file:') || !TYPESCRIPT_FILE.test(new URL(url).pathname)) {
    return nextLoad(url, context);
  }
  const file = fileURLToPath(url);
  const source = readFileSync(file, 'utf8');
  const key = keyOf(file, source);
  let code = readCached(key);
  if (code === undefined) {
    code = await compile(source, file);
    keep(key, code);
  }
  return { format: 'module', source: code, shortCircuit: true };
}
