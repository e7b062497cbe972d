#!/usr/bin/env node
// npm run test:unit [-- tap options]: the fast loop. Every test file that starts no sandbox (no
// API emulator, no workloads, no sandbox CLI or rehearsal), run in parallel; `npm test` runs
// everything. `--list` prints the files instead. A file counts as a sandbox test by what it
// calls, so a new test lands on the right side without a list to keep.
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO = dirname(dirname(fileURLToPath(import.meta.url)));
// The whole-sandbox folders are never the fast loop, whatever helper their files start it with.
const SANDBOX_FOLDERS = ['test/e2e/', 'test/crash/'];
const STARTS_A_SANDBOX = [
  /\b(startTestSandbox|startWholeSandbox|startSandbox|startWorkloads|startCluster)\(/,
  /'sandbox', 'cli\.ts'/,
  /'script', 'rehearse\.ts'/,
];

export function unitTestFiles(repo = REPO) {
  return readdirSync(join(repo, 'test'), { recursive: true })
    .map(String)
    .filter((file) => file.endsWith('.test.ts'))
    .map((file) => join('test', file))
    .filter((file) => !SANDBOX_FOLDERS.some((folder) => file.startsWith(folder)))
    .filter((file) => {
      const text = readFileSync(join(repo, file), 'utf8');
      return !STARTS_A_SANDBOX.some((pattern) => pattern.test(text));
    })
    .sort();
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const files = unitTestFiles();
  if (args.includes('--list')) {
    console.log(files.join('\n'));
    process.exit(0);
  }
  // A part of the suite cannot meet the whole suite's coverage thresholds: `npm test` checks them.
  const tap = spawnSync('npx', ['tap', '--disable-coverage', ...args, ...files], {
    cwd: REPO,
    stdio: 'inherit',
  });
  process.exit(tap.status ?? 1);
}
