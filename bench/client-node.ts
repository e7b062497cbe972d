// Loading @kubernetes/client-node, as every runbook does on its first request: CPU time (user +
// system, not wall) of a process that imports npm ci's bundle (lib/cluster/client-node.ts)
// against one that imports the package itself, in one interleaved loop so the machine's load hits
// both alike. Target: the bundle costs ≤ 0.6 of the package. `npm run bench:client-node [-- --rounds N]`;
// exits 1 when the target is missed or the bundle is missing.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { clientNodeBundlePath } from '../lib/cluster/client-node.ts';
import { REPO_ROOT } from '../lib/config.ts';

const TARGET = 0.6;
const { values } = parseArgs({ options: { rounds: { type: 'string', default: '7' } } });
const rounds = Number(values.rounds);
const bundle = clientNodeBundlePath();
if (!existsSync(bundle)) {
  console.error(
    `no bundle at ${bundle}: run npm ci (or node --import tsx script/bundle-client-node.ts)`,
  );
  process.exit(1);
}
const scratch = mkdtempSync(join(tmpdir(), 'bench-client-node-'));

const importing = {
  bundle: `const k = await import(${JSON.stringify(pathToFileURL(bundle).href)}); new k.KubeConfig();`,
  package: "const k = await import('@kubernetes/client-node'); new k.KubeConfig();",
};

function cpuSeconds(code: string): number {
  const out = join(scratch, 'time');
  const argv = [process.execPath, '--input-type=module', '-e', code];
  const run = spawnSync('/usr/bin/time', ['-f', '%U %S', '-o', out, ...argv], {
    cwd: REPO_ROOT,
    stdio: 'ignore',
  });
  if (run.status !== 0) throw new Error(`node -e ${code} exited ${run.status}`);
  const [user, system] = readFileSync(out, 'utf8')
    .trim()
    .split('\n')
    .at(-1)!
    .split(' ')
    .map(Number);
  return user! + system!;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
};

const samples = { bundle: [] as number[], package: [] as number[] };
try {
  for (let i = 0; i < rounds; i++) {
    samples.bundle.push(cpuSeconds(importing.bundle));
    samples.package.push(cpuSeconds(importing.package));
  }
} finally {
  rmSync(scratch, { recursive: true, force: true });
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
