// tofu plans against the cluster the run pinned: the context and kubeconfig go on the command
// line as -var (which beats every tfvars file), a tfvars file naming another context stops the
// run before any plan, and every setting the modules depend on reaches the plan.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import {
  type TofuContext,
  TofuContextMismatchError,
  tofuApply,
  tofuPlan,
} from '../../lib/cluster/tofu.ts';
import { tofuVarArgs, tofuVars } from '../../lib/cluster/tofu-vars.ts';
import { loadConfig } from '../../lib/config.ts';
import { checkVariables } from '../../sandbox/tofu/checks.ts';
import { loadRoot, type VarAssignment } from '../../sandbox/tofu/config.ts';
import { desiredState } from '../../sandbox/tofu/resources.ts';
import { ENVIRONMENT_DIR } from '../helpers/workloads-sandbox.ts';

function fakeContext(dir: string, env: Record<string, string> = {}) {
  const calls: Array<{ args: readonly string[]; env?: Record<string, string | undefined> }> = [];
  const cfg = loadConfig({
    envFile: '/dev/null',
    env: { KUBE_CONTEXT: 'homelab', KUBECONFIG: '/etc/kube/homelab.yaml', TOFU_DIR: dir, ...env },
  });
  const ctx: TofuContext = {
    cfg,
    async tofu(args, options) {
      calls.push({ args, env: options?.env });
      const out = args.find((a) => a.startsWith('-out='));
      if (out) writeFileSync(out.slice(5), 'plan');
      return { stdout: args[0] === 'show' ? '{"resource_changes":[]}' : '' };
    },
  };
  return { ctx, calls, cfg };
}

t.test(
  'the plan gets the pinned context and kubeconfig as -var; apply of the saved plan none',
  async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'tofu-pin-'));
    t.teardown(() => rmSync(dir, { recursive: true, force: true }));
    const { ctx, calls } = fakeContext(dir);
    const plan = await tofuPlan(ctx, { out: join(dir, 'p.tfplan'), vars: { lb_ip: '10.0.0.9' } });
    const args = calls[0]?.args ?? [];
    const vars = args.flatMap((a, i) => (args[i - 1] === '-var' ? [a] : []));
    t.ok(vars.includes('kube_context=homelab'), 'kube_context on the command line');
    t.ok(vars.includes('kubeconfig_path=/etc/kube/homelab.yaml'), 'kubeconfig_path too');
    t.ok(vars.includes('lb_ip=10.0.0.9'), "the runbook's own values stay");
    await tofuApply(ctx, plan);
    const apply = calls.find((c) => c.args[0] === 'apply');
    t.notOk(apply?.args.includes('-var'), 'a saved plan carries its variables');
  },
);

t.test('without KUBECONFIG the plan names ~/.kube/config, as kubectl reads it', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tofu-pin-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const { ctx, calls } = fakeContext(dir, { KUBECONFIG: '' });
  await tofuPlan(ctx, { out: join(dir, 'p.tfplan') });
  t.ok(calls[0]?.args.includes('kubeconfig_path=~/.kube/config'));
});

for (const [file, text] of [
  ['terraform.tfvars', 'kube_context = "chocolandiadc-mvp" # copied from the example\n'],
  ['terraform.tfvars.json', '{"kube_context": "chocolandiadc-mvp"}'],
  ['local.auto.tfvars', 'replica_count = 1\nkube_context="chocolandiadc-mvp"\n'],
] as const) {
  t.test(`${file} naming another context stops the run before any plan`, async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'tofu-pin-'));
    t.teardown(() => rmSync(dir, { recursive: true, force: true }));
    writeFileSync(join(dir, file), text);
    const { ctx, calls } = fakeContext(dir);
    await t.rejects(tofuPlan(ctx, { out: join(dir, 'p.tfplan') }), TofuContextMismatchError);
    await t.rejects(
      tofuPlan(ctx, { out: join(dir, 'p.tfplan') }),
      /sets kube_context = "chocolandiadc-mvp", but this run is pinned to context "homelab".*Remove kube_context from/,
    );
    t.same(calls, [], 'tofu was never run');
  });
}

t.test('a tfvars file naming the pinned context, or none, is fine', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tofu-pin-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(
    join(dir, 'terraform.tfvars'),
    '# kube_context = "other"\nkube_context = "homelab"\n',
  );
  writeFileSync(join(dir, 'notes.tfvars'), 'kube_context = "other"\n'); // not loaded by tofu
  const { ctx, calls } = fakeContext(dir);
  await tofuPlan(ctx, { out: join(dir, 'p.tfplan') });
  t.equal(calls[0]?.args[0], 'plan');
});

/** What the stand-in plans (the modules' own HCL) with the variables a runbook passes. */
async function planned(env: Record<string, string>, extra: VarAssignment[] = []) {
  const cfg = loadConfig({ envFile: '/dev/null', env: { KUBE_CONTEXT: 'sandbox', ...env } });
  const args = tofuVarArgs(tofuVars(cfg, { migration: true }));
  const assignments: VarAssignment[] = [];
  for (let i = 0; i < args.length; i += 2)
    assignments.push({ kind: 'var', text: args[i + 1] as string });
  const root = await loadRoot(ENVIRONMENT_DIR, [...assignments, ...extra]);
  const desired = desiredState(root);
  checkVariables(root, desired.inputs);
  return desired;
}

t.test('every setting the modules depend on reaches the plan', async (t) => {
  const secretOf = (d: Awaited<ReturnType<typeof planned>>) =>
    d.resources.find((r) => r.type === 'kubernetes_secret_v1')?.objects[0];
  const envOf = (d: Awaited<ReturnType<typeof planned>>) =>
    d.resources.find((r) => r.type === 'kubernetes_env')?.envPatch;

  const named = await planned({ REDIS_SECRET_NAME: 'shared-redis', REDIS_SECRET_KEY: 'pw' });
  t.equal(secretOf(named)?.metadata.name, 'shared-redis', 'REDIS_SECRET_NAME names the Secret');
  t.same(Object.keys(secretOf(named)?.data ?? {}), ['pw'], 'REDIS_SECRET_KEY is its key');
  t.match(envOf(named)?.env[2], {
    valueFrom: { secretKeyRef: { name: 'shared-redis', key: 'pw' } },
  });
  const chart = named.resources.find((r) => r.type === 'helm_release')?.release?.values;
  t.match(chart?.auth, { existingSecret: 'shared-redis', existingSecretPasswordKey: 'pw' });

  const moved = await planned({
    BEERSYSTEM_DEPLOYMENT: 'beer-api',
    BEERSYSTEM_CONTAINER: 'api',
  });
  t.match(envOf(moved), { deployment: 'beer-api', container: 'api', namespace: 'beersystem' });

  // beersystem's namespace must hold the Secret copy its pods read: the root refuses a namespace
  // replica_namespaces does not list, and follows it once listed (as a tfvars file lists it).
  await t.rejects(
    planned({ BEERSYSTEM_NAMESPACE: 'shop' }),
    /var\.beersystem_namespace is "shop"[\s\S]*must be one of replica_namespaces/,
  );
  const shop = await planned({ BEERSYSTEM_NAMESPACE: 'shop' }, [
    { kind: 'var', text: 'replica_namespaces=["shop"]' },
  ]);
  t.equal(envOf(shop)?.namespace, 'shop');
  t.ok(
    shop.resources.some((r) => r.address.endsWith('kubernetes_secret_v1.credentials["shop"]')),
    'the Secret copy lands in shop',
  );
});
