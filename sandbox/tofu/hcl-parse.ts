// hcl2json is Go compiled to WebAssembly: starting it and parsing a module costs the stand-in
// about half a second of CPU in every `tofu` process. Its answer depends only on the text (the
// file's name appears in errors only), so the answers for a module's .tf files are kept under the
// sha256 of their text in the cache directory, and the WebAssembly starts only for a text it has
// not seen. A text it refuses is never kept (the error comes anew); variable values (-var, tfvars
// files) are never kept at all.
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CACHE_DIR, installedVersion } from '../../lib/cache-dir.mjs';

// biome-ignore lint/suspicious/noExplicitAny: hcl2json output
type Hcl = Record<string, any>;

export const HCL_CACHE_DIR = join(CACHE_DIR, 'hcl2json');

let version: string | undefined;

export function hclCacheKey(text: string): string {
  version ??= installedVersion('@cdktf/hcl2json');
  return createHash('sha256').update(`${version}\0${text}`).digest('hex');
}

/** hcl2json's answer for a variable value or a tfvars file: never written anywhere. */
export async function parseHclValue(name: string, text: string): Promise<Hcl> {
  const { parse } = await import('@cdktf/hcl2json');
  return (await parse(name, text)) as Hcl;
}

/** hcl2json's answer for one of a module's .tf files, from the cache when it has parsed that text. */
export async function parseModuleFile(
  path: string,
  text: string,
  cacheDir = HCL_CACHE_DIR,
): Promise<Hcl> {
  const file = join(cacheDir, `${hclCacheKey(text)}.json`);
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as Hcl;
  } catch {
    // not parsed before (or a damaged entry): parse it now
  }
  const parsed = await parseHclValue(path, text);
  try {
    mkdirSync(cacheDir, { recursive: true });
    const partial = `${file}.${process.pid}.partial`;
    writeFileSync(partial, JSON.stringify(parsed));
    renameSync(partial, file);
  } catch {
    // a cache that cannot be written costs time, not the answer
  }
  return parsed;
}
