import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { REPO_ROOT } from '../lib/config.ts';
import { cpuSeconds, median } from './measure.ts';

const TARGET = 1.3;
const { values } = parseArgs({ options: { rounds: { type: 'string', default: '7' } } });
const rounds = Number(values.rounds);
const BARE = join(REPO_ROOT, 'bench', 'bare-zx.mts');
const runbooks = readdirSync(join(REPO_ROOT, 'runbooks'))
  .filter((f) => f.endsWith('.mts'))
  .sort()
  .map((f) => join(REPO_ROOT, 'runbooks', f));

const PLAIN = 'plain node';
const PLAIN_ARGV = [
  process.execPath,
  '--input-type=module',
  '-e',
  "const { $ } = await import('zx'); console.log('bare zx script', typeof $);",
];

function cpuOf(script: string, args: string[]): number {
  return cpuSeconds(script === PLAIN ? PLAIN_ARGV : [script, ...args], REPO_ROOT);
}

const samples = new Map<string, number[]>([
  [BARE, []],
  [PLAIN, []],
  ...runbooks.map((r) => [r, []] as [string, number[]]),
]);
for (let round = 0; round < rounds; round++) {
  for (const script of samples.keys()) {
    samples.get(script)!.push(cpuOf(script, script === BARE || script === PLAIN ? [] : ['--help']));
  }
}
const bare = median(samples.get(BARE)!);
const plain = median(samples.get(PLAIN)!);
console.log(
  `rounds ${rounds}; bare zx script: median ${(bare * 1000).toFixed(0)} ms CPU through the shebang, ${(plain * 1000).toFixed(0)} ms under plain node`,
);
let missed = 0;
for (const script of runbooks) {
  const cpu = median(samples.get(script)!);
  const ratio = cpu / bare;
  if (ratio > TARGET) missed++;
  console.log(
    `${script.slice(REPO_ROOT.length + 1).padEnd(28)} ${(cpu * 1000).toFixed(0).padStart(5)} ms  ×${ratio.toFixed(2)} (×${(cpu / plain).toFixed(2)} plain)  ${ratio <= TARGET ? 'ok' : `MISSED (target ≤ ${TARGET})`}`,
  );
}
process.exit(missed ? 1 : 0);
