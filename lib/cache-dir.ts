import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** node_modules of this checkout: the installed packages. */
export const NODE_MODULES = join(
  resolve(dirname(fileURLToPath(import.meta.url)), '..'),
  'node_modules',
);
/** Files made from installed packages and kept between runs (npm ci empties it with node_modules). */
export const CACHE_DIR = join(NODE_MODULES, '.cache', 'redis-shared-runbooks');
