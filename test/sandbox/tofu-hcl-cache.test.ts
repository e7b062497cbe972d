// The stand-in keeps hcl2json's answers for module files (sandbox/tofu/hcl-parse.ts): a cached
// answer is exactly hcl2json's, a changed text is parsed anew, a refused text is refused again
// and never kept, a damaged entry is parsed anew, and variable values are never written.
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from '@cdktf/hcl2json';
import t from 'tap';
import { hclCacheKey, parseHclValue, parseModuleFile } from '../../sandbox/tofu/hcl-parse.ts';
import { REPO } from '../helpers/run-cli.ts';

const cacheDir = mkdtempSync(join(tmpdir(), 'hcl-cache-'));
t.teardown(() => rmSync(cacheDir, { recursive: true, force: true }));
const MAIN = join(REPO, 'terraform', 'modules', 'redis-shared', 'main.tf');
const text = readFileSync(MAIN, 'utf8');

t.test("a module file's answer is hcl2json's, the first time and from the cache", async (t) => {
  const expected = await parse(MAIN, text);
  t.same(await parseModuleFile(MAIN, text, cacheDir), expected, 'parsed');
  t.same(readdirSync(cacheDir), [`${hclCacheKey(text)}.json`], 'kept under its text');
  t.same(await parseModuleFile('/elsewhere/main.tf', text, cacheDir), expected, 'from the cache');
});

t.test('a changed text is parsed anew', async (t) => {
  const changed = `${text}\nlocals {\n  cache_test = "yes"\n}\n`;
  const parsed = await parseModuleFile(MAIN, changed, cacheDir);
  t.same(parsed.locals?.at(-1), { cache_test: 'yes' }, 'the new block is there');
});

t.test('a text hcl2json refuses is refused again and never kept', async (t) => {
  const before = readdirSync(cacheDir).length;
  for (let i = 0; i < 2; i++) {
    await t.rejects(
      parseModuleFile('bad.tf', 'resource "x" {', cacheDir),
      /Unclosed configuration block/,
    );
  }
  t.equal(readdirSync(cacheDir).length, before, 'nothing written');
});

t.test('a damaged entry is parsed anew and mended', async (t) => {
  const entry = join(cacheDir, `${hclCacheKey(text)}.json`);
  writeFileSync(entry, '{"resource": [');
  t.same(await parseModuleFile(MAIN, text, cacheDir), await parse(MAIN, text));
  t.doesNotThrow(() => JSON.parse(readFileSync(entry, 'utf8')), 'the entry is whole again');
});

t.test('variable values are parsed and never written', async (t) => {
  const before = readdirSync(cacheDir).sort();
  t.same(await parseHclValue('ns.tfvars', 'ns = ["a", "b"]'), { ns: ['a', 'b'] });
  t.same(readdirSync(cacheDir).sort(), before);
});
