// `npm run test:unit` is the fast loop: no file of it may start a sandbox, and it still runs
// the tests that do not.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
// @ts-expect-error: a plain ES module without types
import { unitTestFiles } from '../../script/test-unit.mjs';
import { REPO } from '../helpers/run-cli.ts';

const files: string[] = unitTestFiles(REPO);

t.test('the fast loop leaves out every whole-sandbox file', async (t) => {
  t.notOk(
    files.some((f) => f.startsWith('test/e2e/') || f.startsWith('test/crash/')),
    'no e2e or crash-matrix file',
  );
  for (const file of files) {
    const text = readFileSync(join(REPO, file), 'utf8');
    t.notMatch(text, /\bstart(Cluster|WholeSandbox|TestSandbox)\(/, `${file} starts no sandbox`);
  }
});

t.test('and keeps the unit tests', async (t) => {
  t.ok(files.includes('test/engine/run-session.test.ts'));
  t.ok(files.includes('test/phases/report.test.ts'));
  t.ok(files.length > 50, `${files.length} files`);
});
