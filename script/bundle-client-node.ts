// Run by `npm ci` / `npm install` (postinstall): bundles the installed @kubernetes/client-node
// into one ES module beside the other caches in node_modules/.cache, so that a runbook loads one
// file instead of some 1,700 (lib/cluster/client-node.ts). The bundle is the installed code, not
// minified, with the package's own dependencies inside it; the file is written under a temporary
// name and renamed, so a runbook never reads half of it. A failure only warns: without the bundle
// the runbooks load the package itself.
import { existsSync, mkdirSync, realpathSync, renameSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { clientNodeBundlePath, clientNodeVersion } from '../lib/cluster/client-node.ts';

const require = createRequire(import.meta.url);

export async function bundleClientNode(target = clientNodeBundlePath()): Promise<string> {
  mkdirSync(dirname(target), { recursive: true });
  const partial = `${target}.${process.pid}.partial`;
  try {
    await build({
      entryPoints: [require.resolve('@kubernetes/client-node')],
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'node20',
      outfile: partial,
      logLevel: 'error',
      minifyWhitespace: true,
      minifySyntax: true,
      legalComments: 'none',
      charset: 'ascii',
      // Some dependencies are CommonJS and require() Node's built-ins.
      banner: {
        js: "import { createRequire as createRequireOfBundle } from 'node:module'; const require = createRequireOfBundle(import.meta.url);",
      },
    });
    renameSync(partial, target);
  } finally {
    rmSync(partial, { force: true });
  }
  return target;
}

if (process.argv[1] && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url)) {
  // --if-missing: script/bootstrap's check of a checkout installed before the bundle existed.
  if (process.argv.includes('--if-missing') && existsSync(clientNodeBundlePath())) process.exit(0);
  bundleClientNode().then(
    (file) => console.log(`@kubernetes/client-node ${clientNodeVersion()} bundled: ${file}`),
    (err: Error) => {
      console.warn(
        `warning: @kubernetes/client-node was not bundled (${err.message}); the runbooks load the package itself, about a second slower to start`,
      );
    },
  );
}
