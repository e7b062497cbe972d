// `--help` cost: CPU time (user + system, not wall) of every runbook's `--help` started through
// its shebang line, as a ratio to a bare script that imports zx and prints a line started the
// same way (bench/bare-zx.mts, so the TypeScript loader's own cost is on both sides), measured in
// one interleaved loop so the machine's load hits all alike. Target ≤ 1.3 for every runbook.
// The same script under plain node (no loader) is printed beside it as a second yardstick.
// `npm run bench:help [-- --rounds N]`; exits 1 when a runbook misses the target.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { REPO_ROOT } from '../lib/config.ts';

const TARGET = 1.3;
const { values } = parseArgs({ options: { rounds: { type: 'string', default: '7' } } });
const rounds = Number(values.rounds);
const BARE = join(REPO_ROOT, 'bench', 'bare-zx.mts');
const runbooks = readdirSync(join(REPO_ROOT, 'runbooks'))
  .filter((f) => f.endsWith('.mts'))
  .sort()
  .map((f) => join(REPO_ROOT, 'runbooks', f));
const scratch = mkdtempSync(join(tmpdir(), 'bench-help-'));

const PLAIN = 'plain node';
const PLAIN_ARGV = [
  process.execPath,
  '--input-type=module',
  '-e',
  "const { $ } = await import('zx'); console.log('bare zx script', typeof $);",
];

/** CPU seconds (user + system) of one run, from GNU time, which sums the process and its children. */
function cpuSeconds(script: string, args: string[]): number {
  const out = join(scratch, 'time');
  const argv = script === PLAIN ? PLAIN_ARGV : [script, ...args];
  const run = spawnSync('/usr/bin/time', ['-f', '%U %S', '-o', out, ...argv], {
    cwd: REPO_ROOT,
    stdio: 'ignore',
  });
  if (run.status !== 0) throw new Error(`${script} ${args.join(' ')} exited ${run.status}`);
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

const samples = new Map<string, number[]>([
  [BARE, []],
  [PLAIN, []],
  ...runbooks.map((r) => [r, []] as [string, number[]]),
]);
try {
  for (let round = 0; round < rounds; round++) {
    for (const script of samples.keys()) {
      samples
        .get(script)!
        .push(cpuSeconds(script, script === BARE || script === PLAIN ? [] : ['--help']));
    }
  }
} finally {
  rmSync(scratch, { recursive: true, force: true });
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
