import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import t from 'tap';
import { TS_LOADER } from '../../lib/config.ts';
import { withoutCoverage } from '../helpers/run-cli.ts';

const run = (args: string[]) =>
  promisify(execFile)(process.execPath, ['--import', TS_LOADER, 'bench/compare.ts', ...args], {
    cwd: new URL('../..', import.meta.url).pathname,
    env: withoutCoverage({ FORCE_COLOR: '0' }),
  });

t.test('bench:compare runs both tools side by side and prints a verdict per target', async (t) => {
  // A tiny run: this proves the harness, not the speed targets (those are for the benchmark), so
  // a verdict either way is accepted.
  const { stdout, stderr } = await run(['--rounds', '2', '--ops-p1', '2000', '--ops-p16', '16000']);
  const lines = stdout.trim().split('\n');
  t.match(
    lines[0],
    /^redis-server on 127\.0\.0\.1:\d+; 2 rounds; key space 100,000, value 3 bytes$/,
  );
  for (const setting of ['-c 50 -P 1', '-c 50 -P 16']) {
    for (const tool of ['ours', 'redis-benchmark']) {
      for (const test of ['SET', 'GET']) {
        const row = lines.find((l) => l.startsWith(setting.padEnd(16) + tool.padEnd(17) + test));
        t.match(
          row,
          /\s[\d,]+\s+[\d.]+\s+[\d.]+\s+[\d.]+$/,
          `${setting} ${tool} ${test} has ops/s and percentiles`,
        );
      }
    }
  }
  t.match(stdout, /target ratio ≥ 0\.70 at -c 50 -P 1: (met|NOT met)/);
  t.match(stdout, /target ≥ 250,000 ops\/s at -c 50 -P 16: (met|NOT met)/);
  t.match(lines.at(-1), /^ratio \d+\.\d\d$/);
  t.notMatch(stdout, /ops\/s\s*$/m, 'progress stays off stdout');
  t.type(stderr, 'string');
});

t.test('bench:compare --help prints its usage', async (t) => {
  const { stdout } = await run(['--help']);
  t.match(stdout, /^usage: npm run bench:compare -- \[--rounds 3\]/);
});

t.test(
  'bench:compare refuses a count that is not a whole number, before starting anything',
  async (t) => {
    for (const args of [
      ['--rounds', 'three'],
      ['--ops-p1', '0'],
      ['--ops-p16', '1e6'],
      ['--bogus'],
    ]) {
      const err = (await run(args).catch((e) => e)) as {
        code: number;
        stderr: string;
        stdout: string;
      };
      t.equal(err.code, 2, `${args.join(' ')} exits 2`);
      t.match(err.stderr, /^bench:compare: .+\nusage: npm run bench:compare/);
      t.notMatch(err.stderr, /\n\s+at /, 'no stack trace');
      t.equal(err.stdout, '', 'no redis-server was started');
    }
  },
);
