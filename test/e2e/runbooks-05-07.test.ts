// 05-migrate, 06-decommission and 07-polish end to end against a whole sandbox
// (test/helpers/migrate-cluster.ts), each runbook a real child process; `npm run rehearse`
// (test/e2e/rehearse.test.ts) runs all seven for real.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import t from 'tap';
import { readAuditEntries } from '../../lib/audit/audit.ts';
import {
  assertNoPassword,
  beersystemEnv,
  beersystemFields,
  DECOMMISSION,
  MIGRATE,
  mutations,
  oldRedisClient,
  POLISH,
  paste,
  runInPty,
  scalesOfBeersystem,
  startCluster,
} from '../helpers/migrate-cluster.ts';

t.setTimeout(900_000);
t.test(
  '05 → 06 → 07: dry run, a declined downtime, --copy-data, the 24 h gate, refusals, decommission, report',
  async (t) => {
    const c = await startCluster(t);

    await t.test(
      '05 --dry-run sends no mutation and prints every command, T035…T040 included',
      async (t) => {
        const before = mutations(c.journal()).length;
        const old = await oldRedisClient(c, 'test-observer');
        // Keys a login or a cache write by the runbook would leave (the app's heartbeat aside).
        const runbookKeys = async () =>
          (await old.keys('beersystem:*')).filter((k) => /runbook/.test(k)).length +
          (await old.keys('beersystem:session:*')).filter((k) => !k.endsWith(':app')).length;
        const keysBefore = await runbookKeys();
        const r = await c.run(MIGRATE, ['--dry-run']);
        const keysAfter = await runbookKeys();
        old.disconnect();
        t.equal(r.code, 0, 'exit code', { stderr: r.stderr.slice(-3000) });
        t.equal(mutations(c.journal()).length, before, 'the journal gained no mutating request');
        t.equal(keysAfter, keysBefore, "no key was written to beersystem's Redis");
        const text = r.stdout + r.stderr;
        t.match(
          text,
          /would run: kubectl .*scale deployment beersystem -n beersystem --replicas=0/,
        );
        t.match(
          text,
          /would run: .*tofu apply -input=false -no-color .*beersystem-migration-\d+\.tfplan/,
        );
        t.match(
          text,
          /would run: kubectl .*scale deployment beersystem -n beersystem --replicas=1/,
        );
        t.match(
          text,
          /expected downtime: not measured yet/,
          'the dry run says what downtime to expect',
        );
        for (const id of ['T035', 'T036', 'T037', 'T038', 'T039', 'T040'])
          t.match(text, new RegExp(`\\b${id}\\b`));
        t.equal((await beersystemEnv(c)).trim(), '1 redis.beersystem.svc.cluster.local');
      },
    );

    await t.test('in a terminal, declining T035 leaves beersystem untouched', async (t) => {
      const before = mutations(c.journal()).length;
      const r = await runInPty(c, [], [{ when: /\(y\/N\)/, send: 'n\r' }]);
      t.equal(r.answered, 1, 'the T035 question was asked');
      t.match(
        r.output,
        /T035–P05 run without further questions; beersystem is down from T035 until T040 is Ready; T041 then tests it and P05 records the migration/,
        'one question covers T035 to the record P05 writes',
      );
      t.equal(r.code, 2, 'a declined confirmation exits 2');
      t.notMatch(r.output, /✔ T035/, 'no ✔ in front of the refusal');
      t.match(r.output, /› T035 [^?]*\? No/, 'the answered question keeps a neutral mark');
      t.equal(mutations(c.journal()).length, before, 'nothing was sent');
      t.equal((await beersystemEnv(c)).trim(), '1 redis.beersystem.svc.cluster.local');
    });

    let session = '';
    await t.test(
      '--copy-data: a session made on the old Redis survives the move with its TTL',
      async (t) => {
        const login = await c.proxy('/login?user=alice');
        t.equal(login.status, 200);
        session = String(login.body.session);
        const r = await c.run(MIGRATE, ['--yes', '--copy-data']);
        t.equal(r.code, 0, 'exit code', { stderr: r.stderr.slice(-3000) });
        t.match(r.stderr, /downtime [\d.]+m?s/);
        t.equal((await beersystemEnv(c)).trim(), '1 redis-shared-master.redis.svc.cluster.local');
        const redis = new Redis({
          host: c.fx.sandbox.network.redisLbIp,
          port: 6379,
          password: c.password,
          lazyConnect: true,
        });
        redis.on('error', () => {});
        t.teardown(() => redis.disconnect());
        await redis.connect();
        const ttl = await redis.ttl(`beersystem:session:${session}`);
        t.ok(ttl > 0 && ttl <= 3600, `the session key is on redis-shared with its TTL (${ttl} s)`);
        const again = await c.proxy(`/session?id=${session}`);
        t.equal(again.status, 200, 'beersystem still knows the session');
        t.equal(again.body.user, 'alice');
      },
    );

    await t.test('a re-run of 05 after success verifies and changes nothing', async (t) => {
      const before = mutations(c.journal()).length;
      const r = await c.run(MIGRATE, ['--yes']);
      t.equal(r.code, 0, 'exit code', { stderr: r.stderr.slice(-3000) });
      t.match(r.stderr, /already complete: beersystem has run on redis-shared since/);
      t.equal(mutations(c.journal()).length, before);
    });

    await t.test('06 is refused before the validation window, with the time left', async (t) => {
      const r = await c.run(DECOMMISSION, ['--yes', '--confirm', 'beersystem/redis']);
      t.equal(r.code, 3, 'exit code', { stderr: r.stderr.slice(-3000) });
      t.match(r.stderr, /opens in 2[34]h\d+m, at 20\d\d-/);
    });

    t.equal((await c.fx.admin('/sandbox/age', { duration: '24h' })).status, 200, 'sandbox age 24h');

    await t.test(
      '06 is refused while an application is still on the old Redis, naming it',
      async (t) => {
        const client = await oldRedisClient(c, 'forgotten-app');
        try {
          const r = await c.run(DECOMMISSION, ['--yes', '--confirm', 'beersystem/redis']);
          t.equal(r.code, 1);
          t.match(r.stderr, /still has 1 client\(s\): forgotten-app from /);
          t.match(
            await c.kubectl(['get', 'deployment', 'redis', '-n', 'beersystem', '-o', 'name']),
            /redis/,
          );
        } finally {
          client.disconnect();
        }
      },
    );

    await t.test('06 is refused without the typed name', async (t) => {
      const r = await c.run(DECOMMISSION, ['--yes']);
      t.equal(r.code, 2);
      t.match(r.stderr, /--confirm beersystem\/redis/);
    });

    await t.test(
      '06 with --yes --confirm beersystem/redis deletes the old Redis; beersystem stays healthy',
      async (t) => {
        const r = await c.run(DECOMMISSION, ['--yes', '--confirm', 'beersystem/redis']);
        t.equal(r.code, 0, 'exit code', { stderr: r.stderr.slice(-3000) });
        const left = await c.kubectl([
          'get',
          'deployment,service',
          '-n',
          'beersystem',
          '-o',
          'name',
        ]);
        t.notMatch(left, /deployment\.apps\/redis\b|service\/redis\b/);
        t.equal((await c.proxy('/healthz')).status, 200);
        const backups = readdirSync(join(c.out, 'backups'));
        const oldBackup = backups.find((f) => f.startsWith('old-redis-'));
        t.ok(oldBackup, 'the old Redis was backed up');
        t.equal(statSync(join(c.out, 'backups', oldBackup!)).mode & 0o777, 0o600);
      },
    );

    await t.test(
      '05 --rollback is refused once the old Redis is gone, saying what to do',
      async (t) => {
        const r = await c.run(MIGRATE, ['--rollback', '--yes']);
        t.equal(r.code, 3);
        t.match(r.stderr, /nothing to roll back to/);
      },
    );

    await t.test('07: benchmark, address table, report with ten SC rows', async (t) => {
      const ipTable = join(c.out, 'ip-assignments.md');
      // Enough requests for the report's figures; what they measure here is this machine, and
      // each one crosses the sandbox's userland proxy in this test process.
      const requests = '2000';
      const r = await c.run(POLISH, ['--yes', '--ip-table', ipTable, '--requests', requests]);
      t.equal(r.code, 0, 'exit code', { stderr: r.stderr.slice(-3000) });
      t.match(
        readFileSync(ipTable, 'utf8'),
        `| ${c.fx.sandbox.network.redisLbIp} | eero-pool | redis/redis-shared-external |`,
      );
      const reports = readdirSync(join(c.out, 'reports'));
      const md = reports.find((f) => f.endsWith('.md'))!;
      const text = readFileSync(join(c.out, 'reports', md), 'utf8');
      t.equal(text.split('\n').filter((l) => /^\| SC-0\d\d \|/.test(l)).length, 10, 'ten SC rows');
      // Whether SC-006 is met depends on this machine's load: judged, not asserted here.
      t.match(text, /\| SC-006 \| .* \| (met|not met) \| SC-006 (met|NOT met): [\d,.]+ ops\/s/);
      t.match(text, /\| SC-009 \| .* \| met \|/);
      t.match(text, /\| SC-010 \| .* \| met \|/);
      t.match(text, /The last attempt, completed: downtime [\d.]+m?s/);
      t.ok(reports.some((f) => f.endsWith('.html')));
      // The resume line after a failed T046 is --from T046: the Job is built again, not taken
      // from T045 in another process.
      const resumed = await c.run(POLISH, [
        '--yes',
        '--ip-table',
        ipTable,
        '--requests',
        requests,
        '--only',
        'T046',
      ]);
      t.equal(resumed.code, 0, 'T046 on its own runs', { stderr: resumed.stderr.slice(-3000) });
      t.match(resumed.stderr, /T046 .*ok/);
      assertNoPassword(t, c, [ipTable]);
    });

    const entries = await readAuditEntries(c.env.AUDIT_LOG!);
    t.ok(entries.length > 0, 'the audit log was written');
  },
);

t.test(
  '--rollback after a failure at T039 and at T041 puts beersystem back on its old Redis',
  async (t) => {
    const c = await startCluster(t);

    await t.test(
      'T039 fails (the API refuses the apply): rollback restores beersystem',
      async (t) => {
        const running = c.start(MIGRATE, ['--yes']);
        await running.waitForStderr(/T038\s.*ok/);
        t.equal(
          (await c.fx.admin('/sandbox/fault', { args: ['api-error', '5', '500'] })).status,
          200,
        );
        const r = await running.result;
        t.equal(r.code, 1, 'the migration failed');
        t.match(r.stderr, /T039.*FAILED/);
        t.match(
          r.stderr,
          /To put it back on its old Redis: .*\.\/runbooks\/05-migrate\.mts --rollback/,
        );
        await c.fx.admin('/sandbox/fault', { args: ['heal'] });
        const back = await c.run(MIGRATE, ['--rollback', '--yes']);
        t.equal(back.code, 0, 'exit code', { stderr: back.stderr.slice(-3000) });
        t.match(
          back.stderr,
          /R03 .*skipped: the migration module is not applied: nothing to release/,
        );
        t.notMatch(
          back.stderr,
          /run: \S*tofu (plan|apply)/,
          'nothing to release costs no plan or apply',
        );
        t.equal((await beersystemEnv(c)).trim(), '1 redis.beersystem.svc.cluster.local');
        const health = await c.proxy('/healthz');
        t.equal(health.status, 200);
        t.match(String(health.body.redis), /^redis\.beersystem/);
      },
    );

    await t.test(
      'T041 fails (beersystem still seen on the old Redis): rollback restores it',
      async (t) => {
        // A connection named like beersystem left on the old Redis: T041 must not call that a move.
        const stale = await oldRedisClient(c, 'beersystem');
        const r = await c.run(MIGRATE, ['--yes']);
        stale.disconnect();
        t.equal(r.code, 1);
        t.match(r.stderr, /T041.*FAILED/);
        t.match(r.stderr, /still connected to the old Redis/);
        const back = await c.run(MIGRATE, ['--rollback', '--yes']);
        t.equal(back.code, 0, 'exit code', { stderr: back.stderr.slice(-3000) });
        t.equal((await beersystemEnv(c)).trim(), '1 redis.beersystem.svc.cluster.local');
        t.equal((await c.proxy('/healthz')).status, 200);
        const annotations = await beersystemFields(c, '{.metadata.annotations}');
        t.notMatch(annotations, /migrated-at/, 'no migration record is left');
      },
    );

    await t.test(
      'in a terminal, T039 fails and the operator chooses "roll back now": beersystem is back on its old Redis in the same run',
      async (t) => {
        const r = await runInPty(
          c,
          [],
          [
            { when: /\(y\/N\)/, send: 'y\r' },
            {
              when: /T038\s[^\n]*\bok\b/,
              send: '',
              first: () => c.fx.admin('/sandbox/fault', { args: ['api-error', '5', '500'] }),
            },
            {
              when: /What now\?/,
              send: '2',
              first: () => c.fx.admin('/sandbox/fault', { args: ['heal'] }),
            },
            { when: /❯\s*(\x1b\[[0-9;]*m)*\s*Roll back now/, send: '\r' },
          ],
        );
        t.equal(r.answered, 4, 'T035 asked, then what now after T039; the rollback asked nothing');
        t.equal(r.code, 1, 'the migration did not happen: exit 1');
        t.match(r.output, /Retry T039/);
        t.match(r.output, /rolling back now: .*\.\/runbooks\/05-migrate\.mts --rollback/);
        t.match(r.output, /T039 failed and the rollback completed; the change was not made/);
        t.equal(
          (r.output.match(/step {2}status/g) ?? []).length,
          1,
          'one summary table, the rollback’s',
        );
        t.match(r.output, /05-migrate: rollback complete/);
        t.match(r.output, /downtime (\d+m)?[\d.]+m?s at most \(T035 \S+ → Ready on the old Redis/);
        t.equal((await beersystemEnv(c)).trim(), '1 redis.beersystem.svc.cluster.local');
        const health = await c.proxy('/healthz');
        t.equal(health.status, 200);
        t.match(String(health.body.redis), /^redis\.beersystem/);
        const entries = await readAuditEntries(c.env.AUDIT_LOG!);
        t.ok(
          entries.some(
            (e) =>
              e.step?.startsWith('R') &&
              e.event === 'confirm' &&
              (e.detail as { method?: string }).method === 'rollback-chosen',
          ),
          'the rollback was confirmed by the choice, and audited so',
        );
      },
    );

    await t.test(
      'T041 fails after a sandbox fault (redis-shared master killed): rollback restores beersystem and clears the record',
      async (t) => {
        const moved = await c.run(MIGRATE, ['--yes']);
        t.equal(moved.code, 0, 'the migration completes first', {
          stderr: moved.stderr.slice(-3000),
        });
        const kill = await c.fx.admin('/sandbox/fault', {
          args: ['kill', 'redis/redis-shared-master-0'],
        });
        t.equal(kill.status, 200, kill.message);
        // The killed master stays down for its 10 s back-off: T041 runs inside it.
        const r = await c.run(MIGRATE, ['--yes', '--from', 'T041']);
        t.equal(r.code, 1, 'T041 failed');
        t.match(r.stderr, /T041.*FAILED/);
        t.match(
          r.stderr,
          /error: (beersystem on redis-shared: |beersystem logged Redis errors since T040)/,
          'the fault is what T041 found',
        );
        t.match(
          r.stderr,
          /To put it back on its old Redis: .*\.\/runbooks\/05-migrate\.mts --rollback/,
        );
        const back = await c.run(MIGRATE, ['--rollback', '--yes']);
        t.equal(back.code, 0, 'exit code', { stderr: back.stderr.slice(-3000) });
        t.match(
          back.stderr,
          /downtime (\d+m)?[\d.]+m?s at most \(R01 \S+ → Ready on the old Redis \S+, as the cluster recorded it, to the second\)/,
          'beersystem was serving: the rollback’s downtime starts at R01',
        );
        t.match(back.stderr, /05-migrate: rollback complete/);
        t.equal((await beersystemEnv(c)).trim(), '1 redis.beersystem.svc.cluster.local');
        t.equal((await c.proxy('/healthz')).status, 200);
        const annotations = await beersystemFields(c, '{.metadata.annotations}');
        t.notMatch(annotations, /migrated-at/, 'the migration record is cleared');
      },
    );
    assertNoPassword(t, c);
  },
);

t.test('SIGINT during T036, then a re-run resumes without scaling twice', async (t) => {
  const c = await startCluster(t);
  const pid = c.fx.workloads.pids().find((p) => {
    try {
      return readFileSync(`/proc/${p}/cmdline`, 'utf8').includes('beersystem/app.ts');
    } catch {
      return false;
    }
  });
  t.ok(pid, 'the beersystem pod process was found');
  const running = c.start(MIGRATE, ['--yes']);
  // Stopped once the checks that need it have passed, the process ignores SIGTERM until the
  // kubelet's grace runs out: T036 has to wait, and is interrupted while it does.
  await running.waitForStderr(/P04\s.*ok/);
  process.kill(pid!, 'SIGSTOP');
  await running.waitForStderr(/waiting for beersystem pods gone/);
  running.child.kill('SIGINT');
  // Resumed as soon as the interrupt is sent: a pod process left stopped until the run has ended
  // (the kubelet's SIGKILL reaching it while stopped) kept this test process spinning at its exit,
  // in Node's handle cleanup, until tap's timeout.
  try {
    process.kill(pid!, 'SIGCONT');
  } catch {}
  const first = await running.result;
  t.equal(first.code, 130, 'interrupted');
  t.match(
    first.stderr,
    /beersystem is DOWN or degraded: 0\/0 replicas Ready, still configured for its old Redis/,
    'its real state, read after the interrupt',
  );
  t.equal(scalesOfBeersystem(c.journal()).length, 1, 'scaled down once');
  const second = await c.run(MIGRATE, ['--yes']);
  t.equal(second.code, 0, 'exit code', { stderr: second.stderr.slice(-3000) });
  t.match(second.stderr, /T035\s.*already done/);
  t.equal(scalesOfBeersystem(c.journal()).length, 2, 'one scale down, one scale up: never twice');
  t.equal((await beersystemEnv(c)).trim(), '1 redis-shared-master.redis.svc.cluster.local');
  assertNoPassword(t, c);
});

t.test(
  'in a terminal, T039 fails and the operator stops: the last screen says beersystem is DOWN, and every printed command pastes as printed',
  async (t) => {
    const c = await startCluster(t);
    const r = await runInPty(
      c,
      [],
      [
        { when: /\(y\/N\)/, send: 'y\r' },
        {
          when: /T038\s[^\n]*\bok\b/,
          send: '',
          first: () => c.fx.admin('/sandbox/fault', { args: ['api-error', '5', '500'] }),
        },
        {
          when: /What now\?/,
          send: '3',
          first: () => c.fx.admin('/sandbox/fault', { args: ['heal'] }),
        },
        { when: /❯\s*(\x1b\[[0-9;]*m)*\s*Stop/, send: '\r' },
      ],
    );
    t.equal(r.answered, 4, 'T035 asked, then what now after T039');
    t.equal(r.code, 1, 'the run stopped as failed');
    t.match(
      r.output,
      /Stop.*end the run here; beersystem stays down until you roll back or resume/,
    );
    const last = r.screen.trimEnd().split('\n').slice(-3);
    t.match(
      last,
      [
        /^beersystem is DOWN since \d\d:\d\d:\d\d UTC \([\d.]+m?s ago\) \(0\/1 Ready, configured for its old Redis\)$/,
        /^ {2}roll back: .*\.\/runbooks\/05-migrate\.mts --rollback --env-file \/dev\/null$/,
        /^ {2}resume: {4}.*\.\/runbooks\/05-migrate\.mts --from T039 --env-file \/dev\/null$/,
      ],
      'the screen ends with where beersystem stands and the lines back and on',
    );
    const rollbackLines = [
      /rollback at any point from here: (.*?) \(applies/.exec(r.screen)?.[1],
      /To put it back on its old Redis: (.*)$/m.exec(r.screen)?.[1],
      /^ {2}undo: (.*)$/m.exec(r.screen)?.[1],
      /^ {2}roll back: (.*)$/m.exec(r.screen)?.[1],
    ];
    t.equal(
      new Set(rollbackLines).size,
      1,
      'T034, the DOWN warning, undo and the last screen print one rollback line',
    );
    const rollback = rollbackLines[0] ?? '';
    const resume = /^ {2}resume: {4}(.*)$/m.exec(r.screen)?.[1] ?? '';
    t.match(
      rollback,
      `AUDIT_LOG=${c.env.AUDIT_LOG}`,
      'the settings the environment gave go with it',
    );

    const resumed = await paste(c, resume);
    t.equal(resumed.code, 0, 'the resume line, pasted, finishes the migration', {
      output: resumed.output.slice(-3000),
    });
    t.equal((await beersystemEnv(c)).trim(), '1 redis-shared-master.redis.svc.cluster.local');
    const back = await paste(c, rollback);
    t.equal(back.code, 0, 'the rollback line, pasted, puts beersystem back', {
      output: back.output.slice(-3000),
    });
    t.equal((await beersystemEnv(c)).trim(), '1 redis.beersystem.svc.cluster.local');
    const ends = (await readAuditEntries(c.env.AUDIT_LOG!)).filter(
      (e) => e.event === 'run-end' && e.runbook === '05-migrate',
    );
    t.same(
      ends.map((e) => `${e.outcome} ${(e.detail as { mode: string }).mode}`),
      ['failed default', 'ok default', 'ok rollback'],
      'the pasted runs wrote to the same audit log',
    );
    t.ok(
      ends.every((e) => e.kube_context === 'sandbox'),
      'and acted on the same cluster',
    );

    // The migration in a terminal, start to end: the answer before T035 is the only question,
    // and P05's record belongs to it.
    const whole = await runInPty(c, [], [{ when: /\(y\/N\)/, send: 'y\r' }]);
    t.equal(whole.code, 0, 'the migration completes', { output: whole.output.slice(-3000) });
    t.same(
      [
        ...new Set(
          [...whole.output.matchAll(/\? ([TP]\d\d\d?) [^?]*?(Run them|run it)\?/g)].map(
            (m) => m[1],
          ),
        ),
      ],
      ['T035'],
      'one question, before T035; none after the window',
    );
    const p05 = (await readAuditEntries(c.env.AUDIT_LOG!)).filter(
      (e) => e.step === 'P05' && e.event === 'confirm',
    );
    t.match(p05.at(-1), {
      outcome: 'confirmed',
      detail: { method: 'covered', covered_by: 'T035' },
    });
    assertNoPassword(t, c);
  },
);
