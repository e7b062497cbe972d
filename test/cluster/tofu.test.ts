// lib/cluster/tofu.ts through a step context (dry run, audit, masking as for any command) with the
// sandbox's tofu stand-in planning and applying the real modules in terraform/.
import { appendFileSync } from 'node:fs';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { readAuditEntries } from '../../lib/audit/audit.ts';
import {
  planSummary,
  TofuPlanChangedError,
  tofuApply,
  tofuFmtCheck,
  tofuInit,
  tofuOutputs,
  tofuPlan,
  tofuValidate,
} from '../../lib/cluster/tofu.ts';
import { tofuNetworkVars } from '../../sandbox/lb-pool.ts';
import { sandboxConfig, stepContext } from '../helpers/kube-config.ts';
import { type SandboxFixture, startTestSandbox } from '../helpers/sandbox.ts';

t.setTimeout(240_000);

async function tofuSandbox(t: Test) {
  const fx = await startTestSandbox(t);
  // The stand-in keeps its state under SANDBOX_RUN_DIR, as the real tofu keeps it in its backend.
  process.env.SANDBOX_RUN_DIR = fx.dir;
  return { fx, cfg: sandboxConfig(fx), VARS: tofuNetworkVars(fx.sandbox.network) };
}

const mutations = async (fx: SandboxFixture) => (await fx.journal()).filter((e) => !e.dryRun);

t.test('plan summarises the real modules by address, type and action', async (t) => {
  const { fx, cfg, VARS } = await tofuSandbox(t);
  const ctx = stepContext(cfg, false);
  await tofuInit(ctx);
  await tofuValidate(ctx);
  t.same(await tofuFmtCheck(ctx), [], 'the modules are formatted');
  const plan = await tofuPlan(ctx, { out: join(fx.dir, 'deploy.tfplan'), vars: VARS });
  t.match(plan.sha256, /^[0-9a-f]{64}$/);
  t.equal(plan.file, join(fx.dir, 'deploy.tfplan'));
  const byAddress = new Map(plan.changes.map((c) => [c.address, c]));
  t.match(byAddress.get('module.redis_shared.helm_release.redis_shared'), {
    type: 'helm_release',
    action: 'create',
  });
  t.match(byAddress.get('module.redis_shared.random_password.redis'), {
    type: 'random_password',
    action: 'create',
  });
  t.ok(
    plan.changes.some((c) => c.type === 'kubernetes_secret_v1' && c.address.includes('beersystem')),
    'the password copy in beersystem',
  );
  t.ok(
    plan.changes.every((c) => c.action === 'create'),
    'nothing exists yet',
  );
  t.equal(plan.summary, `${plan.changes.length} to add, 0 to change, 0 to destroy`);
  t.same(await mutations(fx), [], 'planning changed nothing in the cluster');

  await t.test('apply of the saved plan, outputs, then a plan of nothing', async (t) => {
    await tofuApply(ctx, plan);
    t.ok((await mutations(fx)).length > 0, 'the apply reached the API');
    const outputs = await tofuOutputs(ctx);
    t.ok(Object.keys(outputs).length > 0, 'outputs as JSON values');
    const again = await tofuPlan(ctx, { out: join(fx.dir, 'again.tfplan'), vars: VARS });
    t.ok(
      again.changes.every((c) => c.action === 'no-op'),
      'no changes',
    );
    t.equal(again.summary, '0 to add, 0 to change, 0 to destroy');
    const audit = await readAuditEntries(cfg.auditLog);
    const applies = audit.filter((e) => e.event === 'command' && /\bapply\b/.test(e.command ?? ''));
    t.equal(applies.length, 1, 'the apply is audited');
    t.match(applies[0]?.command, /apply -input=false -no-color .*deploy\.tfplan$/);
  });
});

t.test('in a dry run the plan runs and the apply is only printed', async (t) => {
  const { fx, cfg, VARS } = await tofuSandbox(t);
  const lines: string[] = [];
  const ctx = stepContext(cfg, true, lines);
  const plan = await tofuPlan(ctx, { out: join(fx.dir, 'dry.tfplan'), vars: VARS });
  t.ok(plan.changes.length > 0);
  await tofuApply(ctx, plan);
  t.match(lines.join('\n'), /would run: \S*tofu apply -input=false -no-color \S*dry\.tfplan/);
  t.same(await mutations(fx), [], 'the journal has no mutation');
});

t.test('an apply of a plan that changed after it was confirmed is refused', async (t) => {
  const { fx, cfg, VARS } = await tofuSandbox(t);
  const ctx = stepContext(cfg, false);
  const out = join(fx.dir, 'confirm.tfplan');
  const confirmed = await tofuPlan(ctx, { out, vars: VARS });
  // Someone plans again into the same file with another value before the apply.
  const replanned = await tofuPlan(ctx, { out, vars: { ...VARS, replica_count: '2' } });
  t.not(replanned.sha256, confirmed.sha256);
  await t.rejects(tofuApply(ctx, confirmed), {
    name: 'TofuPlanChangedError',
    message: /changed after it was confirmed .*nothing was applied\. Run the plan step again/,
  });
  appendFileSync(out, ' ');
  await t.rejects(tofuApply(ctx, replanned), TofuPlanChangedError, 'an edited file too');
  await t.rejects(
    tofuApply(ctx, { file: join(fx.dir, 'absent.tfplan'), sha256: confirmed.sha256 }),
    { message: /cannot be read \(ENOENT\); nothing was applied/ },
  );
  t.same(await mutations(fx), [], 'nothing was sent');
  const audit = await readAuditEntries(cfg.auditLog).catch(() => []);
  t.notOk(
    audit.some((e) => /\bapply\b/.test(e.command ?? '')),
    'no apply ran',
  );
});

t.test(
  'a saved plan the state moved past is stale: a typed refusal, nothing applied',
  async (t) => {
    const { fx, cfg, VARS } = await tofuSandbox(t);
    const ctx = stepContext(cfg, false);
    const stale = await tofuPlan(ctx, { out: join(fx.dir, 'stale.tfplan'), vars: VARS });
    const moved = await tofuPlan(ctx, { out: join(fx.dir, 'moved.tfplan'), vars: VARS });
    await tofuApply(ctx, moved);
    const before = (await mutations(fx)).length;
    await t.rejects(tofuApply(ctx, stale), {
      name: 'TofuPlanChangedError',
      message:
        /is stale: the state changed since it was made, and OpenTofu refuses it; nothing was applied/,
    });
    t.equal((await mutations(fx)).length, before, 'nothing was sent');
  },
);

t.test('a failed apply is not tried again', async (t) => {
  const { fx, cfg, VARS } = await tofuSandbox(t);
  const ctx = stepContext(cfg, false);
  const plan = await tofuPlan(ctx, { out: join(fx.dir, 'once.tfplan'), vars: VARS });
  // One failing API request: a second attempt would succeed, so a retry would hide the failure.
  const res = await fetch(`${fx.sandbox.url}/sandbox/fault`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ args: ['api-error', '1', '500'] }),
  });
  t.equal(res.status, 200);
  await t.rejects(tofuApply(ctx, plan), { name: 'CommandError', message: /sandbox fault/ });
  const journal = await mutations(fx);
  t.equal(journal.filter((e) => e.status === 500).length, 1);
  const audit = await readAuditEntries(cfg.auditLog);
  const applies = audit.filter((e) => e.event === 'command' && /\bapply\b/.test(e.command ?? ''));
  t.equal(applies.length, 1);
  t.match(applies[0], { outcome: 'failed', detail: { attempts: 1 } });
});

t.test('planSummary counts a replacement as one add and one destroy', async (t) => {
  t.equal(
    planSummary([
      { address: 'a', type: 'x', action: 'replace' },
      { address: 'b', type: 'x', action: 'update' },
      { address: 'c', type: 'x', action: 'delete' },
      { address: 'd', type: 'x', action: 'no-op' },
    ]),
    '1 to add, 1 to change, 2 to destroy',
  );
});
