// One cluster, several operators (issue: Lease lock, records in the cluster): real runbook
// processes with the real kubectl and client-node against one sandbox, each operator with an
// audit log of its own.
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { readAuditEntries } from '../../lib/audit/audit.ts';
import { HOLDER_ANNOTATION } from '../../lib/lock/lease-lock.ts';
import { REPO, runCli, startCli } from '../helpers/run-cli.ts';
import { type SandboxFixture, startTestSandbox } from '../helpers/sandbox.ts';

const SCRIPT = join(REPO, 'test/fixtures/runbooks/cluster.ts');
// Several runbook processes, each loading client-node, on two shared cores.
t.setTimeout(360_000);

function operator(fx: SandboxFixture, name: string, extra: Record<string, string> = {}) {
  return {
    FIXTURE_DIR: fx.dir,
    KUBECONFIG: fx.sandbox.kubeconfigPath,
    KUBECACHEDIR: join(fx.dir, 'kube-cache'),
    KUBE_CONTEXT: 'sandbox',
    AUDIT_LOG: join(fx.dir, `${name}.jsonl`),
    LOCK_TTL: '30m',
    ...extra,
  };
}

const ARGS = ['--yes', '--env-file', '/dev/null'];
const annotations = async (fx: SandboxFixture) =>
  (await fx.journal()).filter(
    (e) => e.method === 'PATCH' && e.path.split('?')[0]?.endsWith('/deployments/beersystem'),
  );

async function runIdOf(logPath: string): Promise<string> {
  const start = (await readAuditEntries(logPath)).find((e) => e.event === 'run-start');
  if (!start) throw new Error(`no run-start in ${logPath}`);
  return start.run_id;
}

t.test('two runs started together: exactly one runs, the other exits 4 naming it', async (t) => {
  const fx = await startTestSandbox(t);
  const hold = { FIXTURE_HOLD: '1' };
  const a = startCli(SCRIPT, ARGS, { env: operator(fx, 'alice', hold) });
  const b = startCli(SCRIPT, ARGS, { env: operator(fx, 'bob', hold) });
  t.teardown(() => {
    a.child.kill('SIGKILL');
    b.child.kill('SIGKILL');
  });
  const first = await Promise.race([
    a.result.then((r) => ({ loser: 'alice', winner: 'bob', r })),
    b.result.then((r) => ({ loser: 'bob', winner: 'alice', r })),
  ]);
  t.equal(first.r.code, 4, first.r.stderr);
  const winnerLog = join(fx.dir, `${first.winner}.jsonl`);
  const winnerRun = await runIdOf(winnerLog);
  t.match(
    first.r.stderr,
    new RegExp(
      `locked: run ${winnerRun} of 96-cluster by \\S+@\\S+ \\(pid \\d+\\) holds Lease default/redis-shared-runbooks \\(context sandbox\\) since \\S+`,
    ),
  );
  const dry = await runCli(SCRIPT, ['--dry-run', '--env-file', '/dev/null'], {
    env: operator(fx, 'carol'),
  });
  t.equal(dry.code, 0, 'a dry run takes no lock');
  t.match(
    dry.stderr,
    new RegExp(
      `Lease default/redis-shared-runbooks \\(context sandbox\\) is held by run ${winnerRun} of 96-cluster`,
    ),
    'but says who holds it',
  );
  writeFileSync(join(fx.dir, 'go'), '');
  const winner = await (first.winner === 'alice' ? a : b).result;
  t.equal(winner.code, 0, winner.stderr);
  t.equal((await annotations(fx)).length, 1, 'only the winner changed the cluster');
  const lease = JSON.parse(
    await fx.kubectlOk(['get', 'lease', 'redis-shared-runbooks', '-n', 'default', '-o', 'json']),
  );
  t.notOk(lease.spec.holderIdentity, 'released at the end');
});

t.test(
  'a holder killed with SIGKILL: its lease expires, the next run takes over and audits it',
  async (t) => {
    const fx = await startTestSandbox(t);
    const crashed = startCli(SCRIPT, ARGS, {
      env: operator(fx, 'alice', { FIXTURE_HOLD: '1', LOCK_TTL: '2s' }),
    });
    t.teardown(() => crashed.child.kill('SIGKILL'));
    await crashed.waitForStderr(/T001 holding/);
    crashed.child.kill('SIGKILL');
    await crashed.result;
    const crashedRun = await runIdOf(join(fx.dir, 'alice.jsonl'));
    const lease = JSON.parse(
      await fx.kubectlOk(['get', 'lease', 'redis-shared-runbooks', '-n', 'default', '-o', 'json']),
    );
    t.match(lease.spec.holderIdentity, new RegExp(`/${crashedRun}/96-cluster$`), 'kept on a crash');

    // Bob starts once the lease has gone unrenewed for its whole duration.
    const expiresAt = Date.parse(lease.spec.renewTime) + lease.spec.leaseDurationSeconds * 1000;
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, expiresAt - Date.now() + 100)));
    const next = await runCli(SCRIPT, ARGS, { env: operator(fx, 'bob', { LOCK_TTL: '2s' }) });
    t.equal(next.code, 0, next.stderr);
    t.match(
      next.stderr,
      new RegExp(
        `took over a stale lock of run ${crashedRun} \\(it was last renewed at .* and expired after 2s\\)`,
      ),
    );
    const takeover = (await readAuditEntries(join(fx.dir, 'bob.jsonl'))).find(
      (e) => e.outcome === 'lock-taken-over',
    );
    t.match(takeover, {
      event: 'gate',
      detail: {
        location: 'Lease default/redis-shared-runbooks (context sandbox)',
        previous: { runId: crashedRun, runbook: '96-cluster' },
        reason: /expired after 2s/,
      },
    });
  },
);

t.test(
  'a run that died on another host blocks the next operator for LOCK_TTL (15 s), not 30 minutes',
  async (t) => {
    const fx = await startTestSandbox(t);
    const { LOCK_TTL: _set, ...defaults } = operator(fx, 'alice', { FIXTURE_HOLD: '1' });
    const crashed = startCli(SCRIPT, ARGS, { env: defaults });
    t.teardown(() => crashed.child.kill('SIGKILL'));
    await crashed.waitForStderr(/T001 holding/);
    crashed.child.kill('SIGKILL');
    await crashed.result;
    // The same lease as a run on a second machine leaves it: its pid means nothing here, so only
    // the lease's own expiry can free it.
    const lease = JSON.parse(
      await fx.kubectlOk(['get', 'lease', 'redis-shared-runbooks', '-n', 'default', '-o', 'json']),
    );
    const holder = JSON.parse(lease.metadata.annotations[HOLDER_ANNOTATION]);
    const renewed = new Date();
    await fx.kubectlOk([
      'annotate',
      'lease',
      'redis-shared-runbooks',
      '-n',
      'default',
      '--overwrite',
      `${HOLDER_ANNOTATION}=${JSON.stringify({ ...holder, host: 'laptop-b', pid: process.pid })}`,
    ]);
    await fx.kubectlOk([
      'patch',
      'lease',
      'redis-shared-runbooks',
      '-n',
      'default',
      '--type=merge',
      '-p',
      JSON.stringify({ spec: { renewTime: renewed.toISOString().replace('Z', '000Z') } }),
    ]);
    t.equal(lease.spec.leaseDurationSeconds, 15, 'the lease lasts 15 s by default');

    const { LOCK_TTL: _bob, ...bobEnv } = operator(fx, 'bob');
    const early = await runCli(SCRIPT, ARGS, { env: bobEnv });
    t.equal(early.code, 4, 'held while it may still be renewed', { stderr: early.stderr });
    t.match(early.stderr, /by \S+@laptop-b \(pid \d+\) holds Lease default\/redis-shared-runbooks/);

    const expiresAt = renewed.getTime() + 15_000;
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, expiresAt - Date.now() + 100)));
    const next = await runCli(SCRIPT, ARGS, { env: bobEnv });
    t.equal(next.code, 0, 'then it takes the lease over', { stderr: next.stderr });
    t.ok(Date.now() - renewed.getTime() < 60_000, 'the next operator ran within a minute');
    const takeover = (await readAuditEntries(join(fx.dir, 'bob.jsonl'))).find(
      (e) => e.outcome === 'lock-taken-over',
    );
    t.match(takeover, {
      event: 'gate',
      detail: { previous: { host: 'laptop-b' }, reason: /expired after 15s/ },
    });
  },
);

t.test('a record written by run A on log A opens `requires` for run B on log B', async (t) => {
  const fx = await startTestSandbox(t);
  const later = operator(fx, 'bob', { FIXTURE_ID: '96-later', FIXTURE_REQUIRES: '96-first' });
  const before = await runCli(SCRIPT, ARGS, { env: later });
  t.equal(before.code, 3, before.stderr);
  t.match(before.stderr, /has no completion record for 96-first/);

  const first = await runCli(SCRIPT, ARGS, {
    env: operator(fx, 'alice', { FIXTURE_ID: '96-first' }),
  });
  t.equal(first.code, 0, first.stderr);
  t.notOk(
    (await readAuditEntries(join(fx.dir, 'bob.jsonl'))).some((e) => e.runbook === '96-first'),
    "bob's log has never seen 96-first",
  );
  const after = await runCli(SCRIPT, ARGS, { env: later });
  t.equal(after.code, 0, after.stderr);
  const gate = (await readAuditEntries(join(fx.dir, 'bob.jsonl'))).findLast(
    (e) => e.event === 'gate' && (e.detail as { gate?: string }).gate === 'requires',
  );
  t.match(gate, { outcome: 'open', detail: { reason: /96-first by \S+@\S+ at / } });
});

t.test(
  'api-errors past the renew deadline: the run stops before its next mutation, exit 4',
  async (t) => {
    const fx = await startTestSandbox(t);
    const run = startCli(SCRIPT, ARGS, {
      env: operator(fx, 'alice', { FIXTURE_HOLD: '1', LOCK_TTL: '3s' }),
    });
    t.teardown(() => run.child.kill('SIGKILL'));
    await run.waitForStderr(/T001 holding/);
    const res = await fetch(`${fx.sandbox.url}/sandbox/fault`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      // failing longer than the renew deadline (2 s of 3 s): a passing error is only retried
      body: JSON.stringify({ args: ['api-error', '1000', '500'] }),
    });
    t.equal(res.status, 200);
    await run.waitForStderr(
      /lost the lock: renewing Lease default\/redis-shared-runbooks .* failed for \d+s/,
    );
    writeFileSync(join(fx.dir, 'go'), '');
    const out = await run.result;
    t.equal(out.code, 4, out.stderr);
    t.match(
      out.stderr,
      /this run lost its lock \(.*\), so kubectl .*annotate deployment beersystem.* was not sent/,
    );
    t.same(await annotations(fx), [], 'the mutation after the loss was not sent');
    const entries = await readAuditEntries(join(fx.dir, 'alice.jsonl'));
    t.ok(
      entries.some((e) => e.outcome === 'lock-lost'),
      'the loss is audited',
    );
    t.match(entries.at(-1), { event: 'run-end', outcome: 'locked', detail: { exit_code: 4 } });
    t.ok(existsSync(join(fx.dir, 'go')));
  },
);

t.test('a second Ctrl-C still frees the lease before the process leaves', async (t) => {
  const fx = await startTestSandbox(t);
  const run = startCli(SCRIPT, ARGS, { env: operator(fx, 'alice', { FIXTURE_HOLD: '1' }) });
  t.teardown(() => run.child.kill('SIGKILL'));
  await run.waitForStderr(/T001 holding/);
  const lease = () =>
    fx
      .kubectlOk(['get', 'lease', 'redis-shared-runbooks', '-n', 'default', '-o', 'json'])
      .then((out) => JSON.parse(out) as { spec: { holderIdentity?: string | null } });
  t.match((await lease()).spec.holderIdentity, /\/96-cluster$/, 'held while the run lives');
  run.child.kill('SIGINT');
  run.child.kill('SIGINT');
  const out = await run.result;
  t.equal(out.code, 130);
  t.notOk((await lease()).spec.holderIdentity, 'free at once, not after LOCK_TTL (30m here)');
});
