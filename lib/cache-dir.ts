import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** node_modules of this checkout: the installed packages. */
const NODE_MODULES = join(resolve(dirname(fileURLToPath(import.meta.url)), '..'), 'node_modules');
/** Files made from installed packages and kept between runs (npm ci empties it with node_modules). */
export const CACHE_DIR = join(NODE_MODULES, '.cache', 'redis-shared-runbooks');

/** The version of an installed package (`@scope/name`): what a file made from it is keyed by. */
export function installedVersion(name: string): string {
  const manifest = readFileSync(join(NODE_MODULES, name, 'package.json'), 'utf8');
  return (JSON.parse(manifest) as { version: string }).version;
}
