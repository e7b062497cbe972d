// What the benchmarks share: the median of samples, and a process's CPU time.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/**
 * CPU seconds (user + system, not wall) of one run of `argv`, from GNU time, which sums the
 * process and its children; a run that does not exit 0 throws.
 */
export function cpuSeconds(argv: readonly string[], cwd: string): number {
  const scratch = mkdtempSync(join(tmpdir(), 'bench-cpu-'));
  try {
    const out = join(scratch, 'time');
    const run = spawnSync('/usr/bin/time', ['-f', '%U %S', '-o', out, ...argv], {
      cwd,
      stdio: 'ignore',
    });
    if (run.status !== 0) throw new Error(`${argv.join(' ')} exited ${run.status}`);
    const [user, system] = readFileSync(out, 'utf8')
      .trim()
      .split('\n')
      .at(-1)!
      .split(' ')
      .map(Number);
    return user! + system!;
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}
