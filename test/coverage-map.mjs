// Coverage thresholds in package.json speak of lib/ only: sandbox, bench and runbook entry
// points are exercised by tests too, but their coverage is not what the thresholds promise.
//
// And only the tests of lib/ count towards it. The files under the folders below test the
// sandbox, the runbooks as real processes (which run without coverage: test/helpers/run-cli.ts),
// the OpenTofu module and the documents; what they run of lib/ in their own process is run by
// lib's own tests too (without their coverage, lib/ measured 96.36 % of lines against 96.38 %).
// Collecting it cost each of those processes a fifth of its CPU or more.
import { readdirSync } from 'node:fs';

const libFiles = readdirSync(new URL('../lib/', import.meta.url), { recursive: true })
  .map(String)
  .filter((f) => /\.(ts|mjs)$/.test(f))
  .map((f) => `lib/${f}`);

const NOT_TESTS_OF_LIB = ['test/sandbox/', 'test/e2e/', 'test/terraform/', 'test/repo/'];

export default (testFile) =>
  NOT_TESTS_OF_LIB.some((folder) => testFile.startsWith(folder)) ? null : libFiles;
