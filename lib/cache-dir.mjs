// Plain JavaScript, so that lib/ts-loader/hooks.mjs, which runs before any TypeScript can,
// finds the cache where the TypeScript modules do (types: cache-dir.d.mts).
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** This checkout. */
export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..');
/** node_modules of this checkout: the installed packages. */
export const NODE_MODULES = join(REPO, 'node_modules');
/** Files made from installed packages and kept between runs (npm ci empties it with node_modules). */
export const CACHE_DIR = join(NODE_MODULES, '.cache', 'redis-shared-runbooks');

/** The version of an installed package (`@scope/name`): what a file made from it is keyed by. */
export function installedVersion(name) {
  const manifest = readFileSync(join(NODE_MODULES, name, 'package.json'), 'utf8');
  return JSON.parse(manifest).version;
}
