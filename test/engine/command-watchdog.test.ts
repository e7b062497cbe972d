// A command a runbook started dies with the runbook, even with a SIGKILL that cannot be caught
// (issue: a `tofu apply` outlived its runbook with parent pid 1 while the resume applied again).
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { REPO, startCli } from '../helpers/run-cli.ts';
import { makeRunbookEnv } from '../helpers/runbook-env.ts';
import { waitUntil } from '../helpers/wait.ts';

const SCRIPT = join(REPO, 'test/fixtures/runbooks/long-command.ts');

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

t.test('SIGKILL of the runbook: its command is stopped by the watchdog', async (t) => {
  const place = makeRunbookEnv(t);
  const run = startCli(SCRIPT, ['--yes', '--env-file', '/dev/null'], { env: place.env });
  t.teardown(() => run.child.kill('SIGKILL'));
  const pidFile = join(place.dir, 'command.pid');
  await waitUntil(
    'the command to start',
    () => existsSync(pidFile) && readFileSync(pidFile, 'utf8').trim() !== '',
    { timeoutMs: 120_000, intervalMs: 100 },
  );
  const pid = Number(readFileSync(pidFile, 'utf8').trim());
  t.ok(alive(pid), 'the command runs');
  t.teardown(() => {
    if (alive(pid)) process.kill(pid, 'SIGKILL');
  });
  run.child.kill('SIGKILL');
  await run.result;
  await waitUntil('the command to die', () => !alive(pid), { timeoutMs: 30_000, intervalMs: 100 });
  t.notOk(alive(pid), 'the command died with its runbook');
});
