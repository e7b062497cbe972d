#!/usr/bin/env node
// node script/precompile-typescript.mjs: compiles the project's TypeScript into lib/ts-loader's
// cache in one process, so no later start loads the compiler (npm's postinstall and
// script/bootstrap run it; a file already there is skipped, so a second run is quick).
import { readdirSync, realpathSync } from 'node:fs';
import { join } from 'node:path';
import { REPO } from '../lib/cache-dir.mjs';
import { precompile, TYPESCRIPT_FILE } from '../lib/ts-loader/hooks.mjs';

// The loader keys an entry by the path Node resolved the file to: the real one.
const CHECKOUT = realpathSync(REPO);
const FOLDERS = ['lib', 'runbooks', 'test', 'sandbox', 'script', 'bench', 'examples'];

const files = FOLDERS.flatMap((folder) => {
  try {
    return readdirSync(join(CHECKOUT, folder), { recursive: true })
      .map(String)
      .filter((file) => TYPESCRIPT_FILE.test(file) && !/\.d\.m?ts$/.test(file))
      .filter((file) => !file.split('/').some((part) => part === 'node_modules' || part === '.run'))
      .map((file) => join(CHECKOUT, folder, file));
  } catch {
    return [];
  }
});
const { compiled, removed } = await precompile(files);
if (compiled > 0)
  console.error(`precompile: ${compiled} of ${files.length} TypeScript files compiled`);
if (removed > 0) console.error(`precompile: ${removed} unused cache entries removed`);
