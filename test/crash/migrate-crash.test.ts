// 05-migrate killed inside its window (run by `npm run test:crash`, not by `npm test`: it is long).
// Each cell: migrate, roll back, migrate again with beersystem slow to become Ready, kill the run
// (SIGKILL, or Ctrl-C) while T040 waits, then resume or roll back from that broken state. It
// checks what a crash must not leave behind: the migration record is this attempt's Ready time
// as the cluster recorded it (never the rolled-back attempt's), no saved plan outlives its
// attempt, the audit log verifies, and the lease is free.
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import t, { type Test } from 'tap';
import { AuditLog, readAuditEntries } from '../../lib/audit/audit.ts';
import { logIdOf } from '../../lib/audit/cluster-records.ts';
import { MIGRATION_ANNOTATION } from '../../lib/names.ts';
import { runbookNetworkSettings } from '../../sandbox/lb-pool.ts';
import { REPO, runCli, startCli } from '../helpers/run-cli.ts';
import {
  ENVIRONMENT_DIR,
  type SandboxFixture,
  sandboxVars,
  startWholeSandbox,
  TOFU,
} from '../helpers/workloads-sandbox.ts';

const exec = promisify(execFile);
t.setTimeout(3_600_000);

const MIGRATE = join(REPO, 'runbooks', '05-migrate.mts');
const AUDIT = join(REPO, 'runbooks', 'audit.mts');

interface Stand {
  fx: SandboxFixture;
  out: string;
  env: Record<string, string>;
}

/** A whole sandbox where 02–04 are done, as runbooks-05-07.test.ts lays it down. */
async function stand(t: Test): Promise<Stand> {
  const fx = await startWholeSandbox();
  const out = mkdtempSync(join(tmpdir(), 'crash-05-'));
  t.teardown(async () => {
    await fx.close();
    rmSync(out, { recursive: true, force: true });
  });
  await exec(TOFU, ['apply', '-auto-approve', ...sandboxVars(fx.sandbox.network)], {
    env: fx.env,
    cwd: ENVIRONMENT_DIR,
    maxBuffer: 16 << 20,
  });
  const auditLog = join(out, 'audit.jsonl');
  const records: string[] = [];
  for (const runbook of ['02-deploy', '03-access', '04-monitoring']) {
    const audit = new AuditLog(auditLog, { run_id: `fixture-${runbook}`, runbook });
    await audit.append({ event: 'run-start', detail: { mode: 'default', fixture: true } });
    const end = await audit.append({
      event: 'run-end',
      outcome: 'ok',
      detail: { complete: true, mode: 'default', fixture: true },
    });
    const head = {
      log_id: logIdOf((await readAuditEntries(auditLog))[0]!),
      seq: end.seq,
      hash: end.hash,
    };
    records.push(
      `--from-literal=${runbook}=${JSON.stringify({ run_id: `fixture-${runbook}`, operator: 'test', host: 'test', time: end.ts, git_rev: null, audit_head: head })}`,
    );
  }
  await fx.kubectl(['create', 'configmap', 'redis-shared-runbooks', '-n', 'default', ...records]);
  const env = {
    KUBE_CONTEXT: 'sandbox',
    KUBECONFIG: fx.sandbox.kubeconfigPath,
    KUBECACHEDIR: join(out, 'kube-cache'),
    ...runbookNetworkSettings(fx.sandbox.network),
    TOFU_BIN: TOFU,
    AUDIT_LOG: auditLog,
    BACKUP_DIR: join(out, 'backups'),
    REPORT_DIR: join(out, 'reports'),
    SANDBOX_RUN_DIR: fx.runDir,
    TMPDIR: join(out, 'tmp'),
  };
  mkdirSync(env.TMPDIR, { recursive: true });
  return { fx, out, env };
}

const run = (s: Stand, args: string[]) =>
  runCli(MIGRATE, ['--env-file', '/dev/null', ...args], { env: s.env });

async function fault(s: Stand, args: string[]): Promise<void> {
  const r = await s.fx.admin('/sandbox/fault', { args });
  if (r.status !== 200) throw new Error(`fault ${args.join(' ')}: ${r.message}`);
}

async function record(s: Stand): Promise<string | undefined> {
  const out = await s.fx.kubectl([
    'get',
    'deployment',
    'beersystem',
    '-n',
    'beersystem',
    '-o',
    'json',
  ]);
  return JSON.parse(out).metadata.annotations?.[MIGRATION_ANNOTATION];
}

/** The latest Ready transition of beersystem's pods, as the cluster recorded it. */
async function readySince(s: Stand): Promise<string> {
  const pods = JSON.parse(
    await s.fx.kubectl(['get', 'pods', '-n', 'beersystem', '-l', 'app=beersystem', '-o', 'json']),
  ).items as {
    status: { conditions?: { type: string; status: string; lastTransitionTime: string }[] };
  }[];
  const times = pods.map((p) =>
    Date.parse(
      p.status.conditions?.find((c) => c.type === 'Ready' && c.status === 'True')
        ?.lastTransitionTime ?? '',
    ),
  );
  return new Date(Math.max(...times)).toISOString();
}

async function checkLeftovers(t: Test, s: Stand) {
  const plans = join(s.out, 'plans');
  t.same(existsSync(plans) ? readdirSync(plans) : [], [], 'no saved plan outlives its attempt');
  const verify = await runCli(AUDIT, ['verify', '--env-file', '/dev/null'], { env: s.env });
  t.equal(verify.code, 0, 'audit.mts verify', { stderr: verify.stderr.slice(-1500) });
  const lease = JSON.parse(
    await s.fx.kubectl(['get', 'lease', 'redis-shared-runbooks', '-n', 'default', '-o', 'json']),
  );
  t.notOk(lease.spec.holderIdentity, 'the lease is free');
}

/** A migration, its rollback, then a second migration killed while T040 waits for Ready. */
async function crashInT040(t: Test, s: Stand, signal: 'SIGKILL' | 'SIGINT') {
  const first = await run(s, ['--yes']);
  t.equal(first.code, 0, 'the first attempt completes', { stderr: first.stderr.slice(-2000) });
  const firstRecord = await record(s);
  const back = await run(s, ['--rollback', '--yes']);
  t.equal(back.code, 0, 'and is rolled back', { stderr: back.stderr.slice(-2000) });
  await fault(s, ['slow-ready', 'beersystem', '20']);
  const second = startCli(MIGRATE, ['--env-file', '/dev/null', '--yes'], { env: s.env });
  t.teardown(() => second.child.kill('SIGKILL'));
  await second.waitForStderr(/waiting for beersystem Ready and healthy on redis-shared/);
  const killedAt = Date.now();
  second.child.kill(signal);
  const killed = await second.result;
  t.not(killed.code, 0, `${signal} inside T040`);
  await fault(s, ['heal']);
  return { firstRecord, killedAt };
}

t.test(
  'SIGKILL while T040 waits, then a resume: the record is this attempt’s Ready time',
  async (t) => {
    const s = await stand(t);
    const { firstRecord } = await crashInT040(t, s, 'SIGKILL');
    const started = Date.now();
    const resume = await run(s, ['--yes']);
    t.equal(resume.code, 0, 'the resume completes', { stderr: resume.stderr.slice(-3000) });
    t.comment(`resume after SIGKILL in T040: ${Date.now() - started} ms`);
    const now = await record(s);
    t.not(now, firstRecord, 'not the rolled-back attempt’s time');
    t.equal(now, await readySince(s), 'the cluster’s Ready time of the pods');
    t.match(
      resume.stderr,
      /downtime .* as the cluster recorded it/,
      'the resume says the downtime',
    );
    await checkLeftovers(t, s);
  },
);

t.test('Ctrl-C while T040 waits, then --rollback from that state', async (t) => {
  const s = await stand(t);
  await crashInT040(t, s, 'SIGINT');
  const started = Date.now();
  const back = await run(s, ['--rollback', '--yes']);
  t.equal(back.code, 0, 'the rollback completes', { stderr: back.stderr.slice(-3000) });
  t.comment(`rollback after Ctrl-C in T040: ${Date.now() - started} ms`);
  t.equal(await record(s), undefined, 'no migration record');
  const env = await s.fx.kubectl([
    'get',
    'deployment',
    'beersystem',
    '-n',
    'beersystem',
    '-o',
    'jsonpath={.spec.template.spec.containers[0].env[?(@.name=="REDIS_HOST")].value}',
  ]);
  t.equal(env.trim(), 'redis.beersystem.svc.cluster.local', 'back on its old Redis');
  await checkLeftovers(t, s);
});
