// A long run anchors its log in the cluster while it runs, not only at its end, so a log cut
// after a crash in the middle of a run is still caught by `audit.mts verify`.
import { join } from 'node:path';
import t from 'tap';
import { readAuditEntries } from '../../lib/audit/audit.ts';
import { type LogAnchor, readLogId } from '../../lib/audit/cluster-records.ts';
import { ANCHOR_EVERY } from '../../lib/engine/run-session.ts';
import { defineRunbook, executeRunbook } from '../../lib/engine/runbook.ts';
import { makeRunbookEnv } from '../helpers/runbook-env.ts';
import { startTestSandbox } from '../helpers/sandbox.ts';

class Capture {
  text = '';
  isTTY = false;
  write(chunk: string): boolean {
    this.text += chunk;
    return true;
  }
}

t.test(`a run anchors its log every ${ANCHOR_EVERY} entries and at its end`, async (t) => {
  const fx = await startTestSandbox(t);
  const place = makeRunbookEnv(t);
  let seenMidRun: Record<string, string> | undefined;
  const runbook = defineRunbook({
    id: '95-long',
    title: 'A long run',
    steps: [
      {
        id: 'T001',
        title: 'Write many notes',
        risk: 'read',
        run: async (ctx) => {
          for (let i = 0; i < ANCHOR_EVERY; i++) await ctx.note(`n${i}`, i);
        },
      },
      {
        id: 'T002',
        title: 'Read the records while the run goes on',
        risk: 'read',
        run: async (ctx) => {
          const cm = await ctx.kube.get<{ data: Record<string, string> }>(
            'v1',
            'ConfigMap',
            'redis-shared-runbooks',
            'default',
          );
          seenMidRun = cm?.data;
        },
      },
    ],
  });
  const stderr = new Capture();
  const code = await executeRunbook(runbook, {
    argv: [],
    program: './runbooks/95-long.mts',
    stdout: new Capture(),
    stderr,
    isInteractive: () => false,
    env: {
      ...place.env,
      KUBECONFIG: fx.sandbox.kubeconfigPath,
      KUBE_CONTEXT: 'sandbox',
      KUBECACHEDIR: join(place.dir, 'kube-cache'),
    },
  });
  t.equal(code, 0, stderr.text);
  const logId = await readLogId(place.auditLog);
  const entries = await readAuditEntries(place.auditLog);
  const t001End = entries.find((e) => e.step === 'T001' && e.event === 'step-ok');
  const midRun = JSON.parse(seenMidRun?.[`anchor.${logId}`] ?? 'null') as LogAnchor | null;
  t.ok(midRun, 'the log was anchored before the run ended');
  t.equal(midRun?.seq, t001End?.seq, 'at the end of the step that passed the mark');
  t.equal(midRun?.hash, t001End?.hash);
  t.notOk(seenMidRun?.['run.' + entries[0]?.run_id], 'the run itself is anchored only at its end');

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
  ) as { data: Record<string, string> };
  const runEnd = entries.at(-1);
  t.match(JSON.parse(cm.data[`anchor.${logId}`] ?? '{}'), { seq: runEnd?.seq, hash: runEnd?.hash });
  t.match(JSON.parse(cm.data[`run.${runEnd?.run_id}`] ?? '{}'), {
    runbook: '95-long',
    seq: runEnd?.seq,
    outcome: 'ok',
  });
  t.ok(cm.data['95-long'], 'the completed runbook is recorded');
});
