// Start-up benchmark: `./runbooks/audit.mts --help` 10 times, median wall time against the
// 0.5 s target. Run with `npm run bench:startup`.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { REPO_ROOT } from '../lib/config.ts';

const RUNS = 10;
const TARGET_MS = 500;
const command = join(REPO_ROOT, 'runbooks/audit.mts');

const times: number[] = [];
for (let i = 0; i < RUNS; i++) {
  const start = process.hrtime.bigint();
  const run = spawnSync(command, ['--help'], { cwd: '/', stdio: 'ignore' });
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  if (run.status !== 0) {
    console.error(`${command} --help exited ${run.status}`);
    process.exit(1);
  }
  times.push(ms);
}
times.sort((a, b) => a - b);
const median = ((times[RUNS / 2 - 1] as number) + (times[RUNS / 2] as number)) / 2;
console.log(`runs      ${RUNS}`);
console.log(`min       ${(times[0] as number).toFixed(0)} ms`);
console.log(`max       ${(times[RUNS - 1] as number).toFixed(0)} ms`);
console.log(
  `median    ${median.toFixed(0)} ms (target ≤ ${TARGET_MS} ms: ${median <= TARGET_MS ? 'met' : 'MISSED'})`,
);
