// T040's timeout path: beersystem never becomes Ready on redis-shared (`fault not-ready`), so the
// wait inside the window runs out. Without a terminal the run stops with where beersystem stands
// and the rollback line; in a terminal the what-now question comes inside the window, and "Roll
// back now" puts beersystem back on its old Redis in the same run. Reads that fail for a moment
// while it waits (the API server busy) do not end the wait.
import t from 'tap';
import { readAuditEntries } from '../../lib/audit/audit.ts';
import {
  assertNoPassword,
  beersystemEnv,
  MIGRATE,
  runInPty,
  startCluster,
} from '../helpers/migrate-cluster.ts';

t.setTimeout(900_000);

const ON_OLD = '1 redis.beersystem.svc.cluster.local';

t.test('beersystem never Ready on redis-shared: T040 times out inside the window', async (t) => {
  const c = await startCluster(t);
  // The other waits of the run take a few seconds in the sandbox; T040's is the one that runs out.
  c.env.WAIT_TIMEOUT = '25s';
  const fault = async (args: string[]) => {
    const r = await c.fx.admin('/sandbox/fault', { args });
    t.equal(r.status, 200, `fault ${args.join(' ')}`);
  };

  await t.test('without a terminal: exit 1, where beersystem stands, the way back', async (t) => {
    await fault(['not-ready', 'beersystem', 'redis-shared']);
    const r = await c.run(MIGRATE, ['--yes']);
    t.equal(r.code, 1, 'the migration failed');
    t.match(r.stderr, /T040 .*FAILED/, 'T040 is the step that failed');
    t.match(
      r.stderr,
      /timed out after 25(\.0)?s waiting for beersystem Ready and healthy on redis-shared \(last seen: downtime (\d+m)?[\d.]+m?s, 0\/1 Ready\)/,
      'the timeout says what it last saw',
    );
    t.match(
      r.stderr,
      /beersystem is DOWN since .* \(0\/1 Ready, configured for redis-shared\)/,
      'the end says where beersystem stands',
    );
    t.match(
      r.stderr,
      /roll back: .*\.\/runbooks\/05-migrate\.mts --rollback --env-file \/dev\/null/,
    );
    t.match(
      r.stderr,
      /beersystem stopped answering at \d\d:\d\d:\d\d UTC \(HTTP \d+/,
      'the prober saw beersystem stop answering, and said so',
    );
    t.notMatch(r.stderr, /beersystem answers again/, 'and never answer again');
    const back = await c.run(MIGRATE, ['--rollback', '--yes']);
    t.equal(back.code, 0, 'the rollback completes', { stderr: back.stderr.slice(-3000) });
    t.match(back.stderr, /05-migrate: rollback complete/, 'titled as what it was');
    t.match(
      back.stderr,
      /downtime (\d+m)?[\d.]+m?s at most \(T035 \S+ → Ready on the old Redis \S+, as the cluster recorded it, to the second\)/,
      'the whole outage: down since T035 of the failed attempt',
    );
    t.equal((await beersystemEnv(c)).trim(), ON_OLD, 'back on its old Redis');
    t.equal((await c.proxy('/healthz')).status, 200, 'and healthy');
  });

  await t.test('in a terminal: the what-now question, then "Roll back now"', async (t) => {
    const r = await runInPty(
      c,
      [],
      [
        { when: /\(y\/N\)/, send: 'y\r' },
        { when: /What now\?/, send: '2' },
        { when: /❯\s*(\x1b\[[0-9;]*m)*\s*Roll back now/, send: '\r' },
      ],
    );
    t.equal(r.answered, 3, 'T035 asked, then what now after T040; the rollback asked nothing');
    t.match(
      r.output,
      /downtime (\d+m)?[\d.]+m?s · step 7 of 9 \(T040\) · beersystem DOWN \(\d+ ok, \d+ failed, last: HTTP \d+/,
      'one live line: the downtime, the step, beersystem as its users see it',
    );
    t.equal(r.code, 1, 'the migration did not happen: exit 1');
    t.match(r.output, /Retry T040/, 'T040 is offered again');
    t.match(r.output, /T040 failed and the rollback completed; the change was not made/);
    t.equal(
      (r.output.match(/step {2}status/g) ?? []).length,
      1,
      'one summary table, the rollback’s',
    );
    t.match(r.output, /05-migrate: rollback complete/);
    t.match(
      r.output,
      /downtime (\d+m)?[\d.]+m?s · step [1-5] of 6 \(R0[1-5]\) · beersystem (DOWN|up) \(\d+ ok/,
      'the rollback shows the same live line',
    );
    t.equal((await beersystemEnv(c)).trim(), ON_OLD, 'back on its old Redis');
    t.equal((await c.proxy('/healthz')).status, 200, 'and healthy');
    const choice = (await readAuditEntries(c.env.AUDIT_LOG!)).find(
      (e) => e.step === 'T040' && e.event === 'confirm' && e.outcome === 'rollback',
    );
    t.ok(choice, 'the choice is audited against T040');
  });

  await t.test('reads failing while T040 waits (503s) are waited through', async (t) => {
    await fault(['heal']);
    await fault(['slow-ready', 'beersystem', '10']);
    const running = c.start(MIGRATE, ['--yes']);
    await running.waitForStderr(/waiting for beersystem Ready and healthy on redis-shared/);
    // The prober asks beersystem through the same API: enough failures for the checks to meet.
    await fault(['read-error', '12', '503']);
    const r = await running.result;
    t.equal(r.code, 0, 'the migration completes', { stderr: r.stderr.slice(-3000) });
    t.equal((await beersystemEnv(c)).trim(), '1 redis-shared-master.redis.svc.cluster.local');
    t.match(
      r.stderr,
      /beersystem answers again at \d\d:\d\d:\d\d UTC, on redis-shared-master\.redis\.svc\.cluster\.local:6379: its users went (\d+m)?[\d.]+m?s without it/,
      'when its users had it back, and on which Redis',
    );
    const wait = (await readAuditEntries(c.env.AUDIT_LOG!)).findLast(
      (e) => e.event === 'wait' && e.step === 'T040',
    );
    t.match(wait, { outcome: 'ok' }, 'T040 waited to the end');
    t.ok(
      Number((wait?.detail as { failed_checks?: number } | undefined)?.failed_checks) >= 1,
      'through checks that failed',
    );
  });
  await fault(['heal']);
  assertNoPassword(t, c);
});
