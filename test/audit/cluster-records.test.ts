// lib/audit/cluster-records.ts and `./runbooks/audit.mts verify` / `list --cluster` against the
// sandbox: completion records behind the `requires` gate, and anchors that catch a cut tail, a
// rewrite with recomputed hashes and a deleted run, which the hash chain alone calls intact.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import {
  type AuditEntry,
  AuditLog,
  hashLine,
  readAuditEntries,
  verifyAuditLog,
} from '../../lib/audit/audit.ts';
import {
  formatAnchorVerdict,
  formatClusterRuns,
  verifyAgainstCluster,
} from '../../lib/audit/audit-anchor.ts';
import {
  ClusterRecords,
  clusterRequiredRunbooksGate,
  validationWindowGate,
} from '../../lib/audit/cluster-records.ts';
import { createKube } from '../../lib/cluster/kube.ts';
import { MIGRATED_BY_RUN_ANNOTATION, MIGRATION_ANNOTATION } from '../../lib/names.ts';
import { sandboxConfig } from '../helpers/kube-config.ts';
import { REPO, runCli } from '../helpers/run-cli.ts';
import { startTestSandbox } from '../helpers/sandbox.ts';

const AUDIT = join(REPO, 'runbooks', 'audit.mts');
// Each audit.mts run loads client-node (most of a second), on two shared cores.
t.setTimeout(360_000);

/** Appends one run (start, a command, end) as the engine would, and returns its run-end. */
async function fakeRun(log: AuditLog, runId: string, runbook: string, complete = true) {
  const run = log.with({ run_id: runId, runbook, kube_context: 'sandbox' });
  await run.append({ event: 'run-start' });
  await run.append({ event: 'command', command: `kubectl annotate x ${runId}`, outcome: 'ok' });
  return run.append({
    event: 'run-end',
    outcome: complete ? 'ok' : 'failed',
    detail: { complete },
  });
}

/** What someone who knows the format writes to hide a change: every hash recomputed. */
function rechain(entries: AuditEntry[]): string {
  let prev = '0'.repeat(64);
  return entries
    .map((entry, i) => {
      const { hash: _old, ...body } = { ...entry, seq: i + 1, prev };
      const hash = hashLine(prev, JSON.stringify(body));
      prev = hash;
      return `${JSON.stringify({ ...body, hash })}\n`;
    })
    .join('');
}

t.test('the requires gate reads completion records from the cluster', async (t) => {
  const fx = await startTestSandbox(t);
  const cfg = sandboxConfig(fx);
  const gate = clusterRequiredRunbooksGate(['02-deploy']);
  const closed = await gate.check({ cfg });
  t.equal(closed.open, false);
  t.match(
    closed.reason,
    /ConfigMap default\/redis-shared-runbooks \(context sandbox\) has no completion record for 02-deploy \(run \.\/runbooks\/02-deploy\.mts first\)/,
  );

  // Operator A completes 02-deploy with log A.
  const logA = new AuditLog(join(fx.dir, 'a.jsonl'), { operator: 'alice', host: 'laptop-a' });
  const records = new ClusterRecords(cfg);
  const endA = await fakeRun(logA, 'run-a', '02-deploy');
  await records.recordRunEnd({ logPath: logA.path, entry: endA, mode: 'default', complete: true });
  // Operator B, whose own log has never seen 02-deploy, finds the gate open.
  const open = await gate.check({ cfg: sandboxConfig(fx, { AUDIT_LOG: join(fx.dir, 'b.jsonl') }) });
  t.equal(open.open, true);
  t.match(open.reason, /02-deploy by alice@laptop-a at /);
  const cm = JSON.parse(
    await fx.kubectlOk([
      'get',
      'configmap',
      'redis-shared-runbooks',
      '-n',
      'default',
      '-o',
      'json',
    ]),
  );
  t.match(JSON.parse(cm.data['02-deploy']), {
    run_id: 'run-a',
    operator: 'alice',
    host: 'laptop-a',
    audit_head: { seq: endA.seq, hash: endA.hash },
  });

  const failed = await fakeRun(logA, 'run-f', '03-access', false);
  await records.recordRunEnd({
    logPath: logA.path,
    entry: failed,
    mode: 'default',
    complete: false,
  });
  t.equal(
    (await clusterRequiredRunbooksGate(['03-access']).check({ cfg })).open,
    false,
    'an incomplete run is anchored but is no completion',
  );

  const rollback = await fakeRun(logA, 'run-r', '02-deploy');
  await records.recordRunEnd({
    logPath: logA.path,
    entry: rollback,
    mode: 'rollback',
    complete: true,
  });
  t.equal((await gate.check({ cfg })).open, false, 'a rollback clears the record');
  t.same(
    (await records.read()).runs.map((r) => [r.run_id, r.mode]),
    [
      ['run-a', 'default'],
      ['run-f', 'default'],
      ['run-r', 'rollback'],
    ],
  );

  const unreachable = sandboxConfig(fx, { KUBECONFIG: join(fx.dir, 'absent-kubeconfig') });
  await t.rejects(gate.check({ cfg: unreachable }), { name: 'KubeError' });
});

t.test('verify --anchor catches a cut tail, a rewrite and a deleted run', async (t) => {
  const fx = await startTestSandbox(t);
  const cfg = sandboxConfig(fx);
  const logPath = join(fx.dir, 'audit.jsonl');
  const log = new AuditLog(logPath);
  const records = new ClusterRecords(cfg);
  for (const [id, runbook] of [
    ['run-one', '01-setup'],
    ['run-two', '02-deploy'],
  ] as const) {
    const end = await fakeRun(log, id, runbook);
    await records.recordRunEnd({ logPath, entry: end, mode: 'default', complete: true });
  }
  // A dry run after the last anchor: entries past the anchored head are fine.
  await log
    .with({ run_id: 'run-dry', runbook: '03-access', dry_run: true })
    .append({ event: 'run-start' });
  const original = readFileSync(logPath, 'utf8');
  const entries = await readAuditEntries(logPath);
  const env = {
    KUBE_CONTEXT: 'sandbox',
    KUBECONFIG: fx.sandbox.kubeconfigPath,
    AUDIT_LOG: logPath,
  };
  const verify = (...args: string[]) =>
    runCli(AUDIT, ['verify', ...args, '--env-file', '/dev/null'], { env });

  const intact = await verify();
  t.equal(intact.code, 0, intact.stderr);
  t.match(intact.stdout, /^intact: 7 entries/);
  t.match(
    intact.stdout,
    /anchors: 3 anchor\(s\) in ConfigMap default\/redis-shared-runbooks \(context sandbox\) match the log/,
  );

  const cases: Array<[string, string, RegExp]> = [
    [
      'tail cut',
      entries
        .slice(0, 4)
        .map((e) => `${JSON.stringify(e)}\n`)
        .join(''),
      /anchor of run run-two .* records seq 6 .*but the log ends at seq 4: its tail was cut off/,
    ],
    [
      'rewritten with recomputed hashes',
      rechain(entries.map((e) => (e.seq === 5 ? { ...e, command: 'kubectl get pods' } : e))),
      /anchor of run run-two .* records seq 6 with hash \w+…, the log has \w+… there: the log was rewritten/,
    ],
    [
      'a run deleted and the chain recomputed',
      rechain(entries.filter((e) => e.run_id !== 'run-one')),
      /anchor of run run-one \(01-setup, ok, .*\) is a run this log does not contain: it was deleted from the log/,
    ],
  ];
  t.match(formatAnchorVerdict(await verifyAgainstCluster(cfg, logPath)), /3 anchor\(s\) .* match/);
  for (const [name, text, expected] of cases) {
    writeFileSync(logPath, text);
    // In this process too, where coverage is measured; the CLI below is what operators run.
    const verdict = await verifyAgainstCluster(cfg, logPath);
    t.equal(verdict.status, 'differs');
    t.match(formatAnchorVerdict(verdict), expected);
    t.match(
      await verifyAuditLog(logPath),
      { ok: true },
      `${name}: the hash chain alone calls it intact`,
    );
    const result = await verify('--anchor');
    t.equal(result.code, 1, `${name}: exit 1`);
    t.match(
      result.stdout,
      /anchors: the log differs from ConfigMap default\/redis-shared-runbooks/,
    );
    t.match(result.stdout, expected, name);
  }
  writeFileSync(logPath, original);

  t.match(
    formatClusterRuns(await records.read(), records.location),
    /02-deploy\s+default\s+ok[\s\S]*Completed runbooks/,
  );
  const runIds = (await records.read()).runs.map((r) => r.run_id);
  const listed = formatClusterRuns(await records.read(), records.location);
  for (const id of runIds) t.match(listed, ` ${id} `, `run id ${id} whole, as --run takes it`);
  t.match(
    formatClusterRuns({ completions: {}, runs: [], logs: [] }, 'here'),
    /No runs are recorded in here\.\n\nCompleted runbooks: none recorded\./,
  );
  const list = await runCli(AUDIT, ['list', '--cluster', '--env-file', '/dev/null'], { env });
  t.equal(list.code, 0, list.stderr);
  t.match(list.stdout, /TIME \(UTC\)\s+RUNBOOK\s+MODE\s+OUTCOME\s+OPERATOR\s+RUN/);
  t.match(list.stdout, /01-setup\s+default\s+ok\s+\S+@\S+\s+run-one/);
  t.match(list.stdout, /02-deploy\s+default\s+ok/);
  t.match(list.stdout, /Completed runbooks .*:\n {2}01-setup: run run-one by /);

  const offline = { ...env, KUBECONFIG: join(fx.dir, 'absent-kubeconfig') };
  const notChecked = await verifyAgainstCluster(
    sandboxConfig(fx, { KUBECONFIG: offline.KUBECONFIG }),
    logPath,
  );
  t.match(formatAnchorVerdict(notChecked), /^anchors: not checked/);
  const noCluster = await runCli(AUDIT, ['verify', '--env-file', '/dev/null'], { env: offline });
  t.equal(noCluster.code, 0, 'the chain is intact; the anchors could not be read');
  t.match(
    noCluster.stdout,
    /anchors: not checked, the cluster could not be read \(cannot read the kubeconfig/,
  );
  const required = await runCli(AUDIT, ['verify', '--anchor', '--env-file', '/dev/null'], {
    env: offline,
  });
  t.equal(required.code, 1, '--anchor requires the check');
  const listOffline = await runCli(AUDIT, ['list', '--cluster', '--env-file', '/dev/null'], {
    env: offline,
  });
  t.equal(listOffline.code, 1);
  t.match(listOffline.stderr, /cannot read ConfigMap default\/redis-shared-runbooks/);
});

t.test('the 24 h gate reads the migration record in the cluster', async (t) => {
  const fx = await startTestSandbox(t);
  const cfg = sandboxConfig(fx);
  const ctx = { cfg, kube: createKube(cfg) };
  const gate = validationWindowGate();
  t.match(await gate.check(ctx), {
    open: false,
    reason:
      /no migration record \(annotation redis-shared\.runbooks\/migrated-at on deployment beersystem\/beersystem\): run \.\/runbooks\/05-migrate\.mts first/,
  });
  await fx.kubectlOk([
    'annotate',
    'deployment',
    'beersystem',
    '-n',
    'beersystem',
    `${MIGRATION_ANNOTATION}=${new Date().toISOString()}`,
    `${MIGRATED_BY_RUN_ANNOTATION}=run-m`,
  ]);
  t.match(await gate.check(ctx), {
    open: false,
    reason: /, \S+ of the 24h\S* validation window left/,
  });
  const aged = await fetch(`${fx.sandbox.url}/sandbox/age`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ duration: '24h' }),
  });
  t.equal(aged.status, 200);
  t.match(await gate.check(ctx), { open: true, reason: /\(run run-m\), 24h\S* ago/ });
});
