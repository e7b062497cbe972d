// `npm run rehearse` end to end: the real script, the real sandbox (API emulator with real
// redis-server, exporter, Prometheus and the beersystem stand-in), all seven runbooks as an
// operator runs them. Its time is a benchmark (`npm run bench:rehearse`), not asserted here.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { TS_LOADER } from '../../lib/config.ts';
import { REPO, withoutCoverage } from '../helpers/run-cli.ts';

t.setTimeout(600_000);

t.test(
  'npm run rehearse: 01…07 against the sandbox, 06 first refused, report and downtime printed, sandbox down',
  async (t) => {
    const parent = mkdtempSync(join(tmpdir(), 'rehearse-'));
    const runDir = join(parent, 'run');
    t.teardown(() => rmSync(parent, { recursive: true, force: true }));
    const child = spawn(
      process.execPath,
      ['--import', TS_LOADER, join(REPO, 'script', 'rehearse.ts')],
      {
        cwd: REPO,
        env: withoutCoverage({ SANDBOX_RUN_DIR: runDir }),
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let output = '';
    child.stdout.on('data', (c: Buffer) => (output += c.toString()));
    child.stderr.on('data', (c: Buffer) => (output += c.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    // 0 when every criterion is met; 5 when the change ran but this machine was too loaded for
    // one (SC-006), each such criterion then listed in the last lines.
    t.ok(code === 0 || code === 5, 'the rehearsal ran every stage as planned', {
      code,
      output: output.slice(-6000),
    });
    const tail = output.slice(output.lastIndexOf('criteria: '));
    if (code === 0) t.match(tail, /^criteria: all 10 success criteria met\n$/);
    else
      t.match(
        tail,
        /^criteria: \d+ of 10 met; the change ran, but these are not \(exit 5\):\n( {2}SC-0\d\d not (met|proven): .*\n)+$/,
      );
    for (const id of [
      '01-setup',
      '02-deploy',
      '03-access',
      '04-monitoring',
      '05-migrate',
      '07-polish',
    ]) {
      t.match(output, new RegExp(`── ${id}: exit 0`), `${id} ran and passed`);
    }
    t.match(
      output,
      /── 06-decommission \(before the validation window\): exit 3, as expected: the 24 h gate is closed/,
    );
    t.match(output, /── sandbox age 24h: exit 0/);
    t.match(output, /── 06-decommission: exit 0/);
    for (const stage of ['backup', 'restore --drill', 'rotate-password']) {
      t.match(output, new RegExp(`── ${stage}: exit 0`), `day 2: ${stage} ran and passed`);
    }
    const report = /report:\s+(\S+\.md)/.exec(output)?.[1];
    t.ok(report && existsSync(report), `the report's path is printed: ${report}`);
    t.match(
      output,
      /downtime: (\d+m)?[\d.]+m?s at most \(Ready is recorded to the second\)/,
      'the measured downtime is printed, counted to the end of the recorded second',
    );
    t.match(output, /sandbox stopped .*nothing left running/, 'the sandbox went down');
    const md = readFileSync(report!, 'utf8');
    t.equal(md.split('\n').filter((l) => /^\| SC-0\d\d \|/.test(l)).length, 10, 'ten SC rows');
    // The day-2 figures: backup size and time, the drill's RPO markers and RTO, rotation's errors.
    for (const id of ['BACKUP', 'RESTORE-RPO', 'RESTORE-RTO', 'ROTATION']) {
      t.match(md, new RegExp(`^\\| ${id} \\|`, 'm'), `the report carries ${id}`);
    }
    t.match(md, /^\| ROTATION \|[^\n]*\b0 (write )?errors?/m, 'rotation: no write error');
    t.equal(existsSync(join(runDir, 'state.json')), false, 'no sandbox state left');
    // The password the rehearsal generated is in the stand-in's state (as in real tofu state).
    const state = JSON.parse(readFileSync(join(runDir, 'tofu', 'terraform.tfstate'), 'utf8'));
    const password = typeof state.password === 'string' ? (state.password as string) : undefined;
    t.ok(password, 'the generated password was found in the tofu state');
    t.notOk(output.includes(password!), 'no password in the output');
    for (const file of [join(runDir, 'audit.jsonl'), report!, report!.replace(/\.md$/, '.html')]) {
      t.notOk(readFileSync(file, 'utf8').includes(password!), `no password in ${file}`);
    }
  },
);

t.test('a failing stage stops the rehearsal and the sandbox still goes down', async (t) => {
  const parent = mkdtempSync(join(tmpdir(), 'rehearse-fail-'));
  const runDir = join(parent, 'run');
  t.teardown(() => rmSync(parent, { recursive: true, force: true }));
  // A context that is not the sandbox's: 01 stops before its first call, exit 2.
  const child = spawn(
    process.execPath,
    ['--import', TS_LOADER, join(REPO, 'script', 'rehearse.ts')],
    {
      cwd: REPO,
      env: withoutCoverage({ SANDBOX_RUN_DIR: runDir, KUBE_CONTEXT: 'not-the-sandbox' }),
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let output = '';
  child.stdout.on('data', (c: Buffer) => (output += c.toString()));
  child.stderr.on('data', (c: Buffer) => (output += c.toString()));
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  t.equal(code, 1, 'the rehearsal failed', { output: output.slice(-3000) });
  t.match(output, /── 01-setup: exit 2, expected 0/);
  t.match(output, /sandbox stopped .*nothing left running/);
  t.match(output, /the rehearsal did NOT pass/);
  t.equal(existsSync(join(runDir, 'state.json')), false);
});
