import { existsSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { clientNodeBundlePath } from '../lib/cluster/client-node.ts';
import { REPO_ROOT } from '../lib/config.ts';
import { cpuSeconds, median } from './measure.ts';

const TARGET = 0.6;
const { values } = parseArgs({ options: { rounds: { type: 'string', default: '7' } } });
const rounds = Number(values.rounds);
const bundle = clientNodeBundlePath();
if (!existsSync(bundle)) {
  console.error(
    `no bundle at ${bundle}: run npm ci (or node --import ./lib/ts-loader/register.mjs script/bundle-client-node.ts)`,
  );
  process.exit(1);
}

const importing = {
  bundle: `const k = await import(${JSON.stringify(pathToFileURL(bundle).href)}); new k.KubeConfig();`,
  package: "const k = await import('@kubernetes/client-node'); new k.KubeConfig();",
};

const cpuOf = (code: string) =>
  cpuSeconds([process.execPath, '--input-type=module', '-e', code], REPO_ROOT);

const samples = { bundle: [] as number[], package: [] as number[] };
for (let i = 0; i < rounds; i++) {
  samples.bundle.push(cpuOf(importing.bundle));
  samples.package.push(cpuOf(importing.package));
}
const [b, p] = [median(samples.bundle), median(samples.package)];
const ratio = b / p;
console.log(`rounds    ${rounds}`);
console.log(`package   ${p.toFixed(2)} s CPU (median)`);
console.log(`bundle    ${b.toFixed(2)} s CPU (median)`);
console.log(
  `ratio     ×${ratio.toFixed(2)} (target ≤ ${TARGET}: ${ratio <= TARGET ? 'met' : 'MISSED'})`,
);
process.exitCode = ratio <= TARGET ? 0 : 1;
