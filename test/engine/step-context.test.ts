// What a step is handed: on its own, the three call forms of ctx.kubectl/ctx.tofu, the lazy
// ctx.kube and the limits on notes; through a whole run, what a step sees and may send as a read.
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { AuditLog, readAuditEntries } from '../../lib/audit/audit.ts';
import type { Kube } from '../../lib/cluster/kube.ts';
import { loadConfig } from '../../lib/config.ts';
import { checkNoteValue } from '../../lib/engine/notes.ts';
import { defineRunbook } from '../../lib/engine/runbook.ts';
import { createStepContext, type RunShared } from '../../lib/engine/step-context.ts';
import { execute } from '../helpers/marker-runbook.ts';
import { makeRunbookEnv } from '../helpers/runbook-env.ts';

function context(t: Test, loadKube?: () => Promise<Kube>) {
  const place = makeRunbookEnv(t);
  const tofuDir = join(place.dir, 'tofu');
  mkdirSync(tofuDir);
  const cfg = loadConfig({ env: { ...place.env, TOFU_BIN: 'echo', TOFU_DIR: tofuDir } });
  const printed: string[] = [];
  const shared: RunShared = { notes: new Map(), unsentMutations: 0 };
  const ctx = createStepContext({
    cfg,
    dryRun: true,
    runId: 'r1',
    runbook: '93-ctx',
    mode: 'default',
    step: { id: 'T001', risk: 'change' },
    flags: {},
    state: {},
    shared,
    signal: new AbortController().signal,
    audit: new AuditLog(place.auditLog, { run_id: 'r1', runbook: '93-ctx', dry_run: true }),
    print: (line) => printed.push(line),
    setReport: () => undefined,
    ...(loadKube ? { loadKube: async () => loadKube() } : {}),
  });
  return { ctx, printed, shared, place };
}

t.test('ctx.tofu: a template, an argv array, and options then a template', async (t) => {
  const { ctx, printed, shared } = context(t);
  const plan = 'plan file.out';
  t.equal((await ctx.tofu`version`).stdout, 'version\n', 'a read runs in a dry run');
  t.equal((await ctx.tofu(['show', '-json', plan])).stdout, `show -json ${plan}\n`);
  const applied = await ctx.tofu`apply ${plan}`;
  t.equal(applied.dryRun, true, 'a mutation is not sent in a dry run');
  t.match(printed, [/^would run: echo apply 'plan file\.out'$/]);
  const marked = await ctx.tofu({ kind: 'mutation' })`show ${[plan, '-no-color']}`;
  t.equal(marked.dryRun, true);
  t.equal(printed[1], "would run: echo show 'plan file.out' -no-color");
  t.equal(shared.unsentMutations, 2);
});

t.test('ctx.kubectl infers which mutations are idempotent', async (t) => {
  const { kubectlIsIdempotent } = await import('../../lib/engine/command-kind.ts');
  t.ok(kubectlIsIdempotent(['scale', 'deployment', 'x', '--replicas=0']));
  t.ok(kubectlIsIdempotent(['annotate', 'deployment', 'x', 'a=b', '--overwrite']));
  t.notOk(kubectlIsIdempotent(['annotate', 'deployment', 'x', 'a=b']));
  t.ok(kubectlIsIdempotent(['apply', '--server-side', '-f', 'x.yaml']));
  t.notOk(kubectlIsIdempotent(['apply', '-f', 'x.yaml']));
  t.notOk(kubectlIsIdempotent(['delete', 'deployment', 'x']));
  t.notOk(kubectlIsIdempotent(['rollout', 'restart', 'deployment', 'x']));
});

t.test('ctx.kube is loaded on first use, once, and forwards its reads', async (t) => {
  let loads = 0;
  const kube = {
    deployment: async (ns: string, name: string) => ({ ns, name, replicas: 2 }),
  } as unknown as Kube;
  const { ctx } = context(t, async () => {
    loads += 1;
    return kube;
  });
  type Reads = {
    deployment(ns: string, name: string): Promise<unknown>;
    nothing(): Promise<unknown>;
  };
  const handle = ctx.kube as unknown as Reads;
  t.equal(loads, 0, 'naming ctx.kube loads nothing');
  t.same(await handle.deployment('beersystem', 'beersystem'), {
    ns: 'beersystem',
    name: 'beersystem',
    replicas: 2,
  });
  await (ctx.kube as unknown as Reads).deployment('a', 'b');
  t.equal(loads, 1);
  await t.rejects(handle.nothing(), /ctx\.kube has no nothing\(\)/);
  t.equal(await Promise.resolve(ctx.kube).then((k) => typeof k), 'object', 'not a thenable');
});

t.test('notes are small JSON values', async (t) => {
  t.doesNotThrow(() => checkNoteValue('k', { replicas: 2 }));
  t.throws(() => checkNoteValue('k', undefined), /note k: the value cannot be written as JSON/);
  t.throws(() => checkNoteValue('k', 10n), /cannot be written as JSON/);
  t.throws(() => checkNoteValue('k', 'x'.repeat(20_000)), /notes are for small values/);
  const { ctx, place } = context(t);
  await t.rejects(
    ctx.note('k', () => 1),
    /cannot be written as JSON/,
  );
  await ctx.note('k', [1, 2]);
  t.match((await readAuditEntries(place.auditLog)).at(-1), {
    event: 'note',
    step: 'T001',
    dry_run: true,
    detail: { key: 'k', value: [1, 2] },
  });
});

t.test(
  'the step context: pinned kubectl, tofu in its directory, shared state, runbook flags',
  async (t) => {
    const sandbox = makeRunbookEnv(t);
    const seen: Record<string, unknown> = {};
    const runbook = defineRunbook({
      id: '95-context',
      title: 'context',
      flags: { rollback: { type: 'boolean', description: 'x' } },
      steps: [
        {
          id: 'P01',
          title: 'read the context through kubectl',
          risk: 'read',
          run: async (ctx) => {
            seen.context = (await ctx.kubectl(['config', 'current-context'])).stdout.trim();
            seen.tofu = (await ctx.tofu(['version'])).stdout.trim();
            seen.cwd = (await ctx.tofu(['show'], { kind: 'read' })).stdout;
            ctx.state.replicas = 3;
            seen.rollback = ctx.flags.rollback;
            ctx.log.warn('careful');
            ctx.setReport('/reports/013.md');
          },
        },
        {
          id: 'T001',
          title: 'scale',
          risk: 'change',
          run: async (ctx) => {
            seen.replicas = ctx.state.replicas;
            seen.step = ctx.step;
            await ctx.kubectl(['scale', 'deployment', 'beersystem', '--replicas=0']);
            await ctx.tofu(['apply', 'plan.out']);
          },
        },
      ],
    });
    const tofuDir = join(sandbox.dir, 'tofu');
    mkdirSync(tofuDir);
    const out = await execute(runbook, sandbox, ['--dry-run', '--rollback', '--json'], {
      env: { TOFU_BIN: 'echo', TOFU_DIR: tofuDir },
    });
    t.equal(out.code, 0, out.stderr);
    t.equal(seen.context, 'test-ctx', 'the read ran during the dry run');
    t.equal(seen.tofu, 'version');
    t.equal(seen.replicas, 3);
    t.equal(seen.rollback, true);
    t.same(seen.step, { id: 'T001', risk: 'change' });
    t.match(out.stderr, /warning: careful/);
    t.match(out.stderr, /\nreport: \/reports\/013\.md\n/, 'the summary says where the report is');
    t.equal(out.json?.report, '/reports/013.md');
    t.match(
      out.stderr,
      new RegExp(
        `would run: kubectl --context test-ctx --kubeconfig ${sandbox.kubeconfig} scale deployment beersystem --replicas=0`,
      ),
    );
    t.match(out.stderr, /would run: echo apply plan\.out/);
    t.match(
      out.entries.find((e) => e.event === 'command'),
      { step: 'T001', risk: 'change', dry_run: true },
    );
  },
);

t.test(
  'a kubectl or tofu change cannot be declared a read, so a dry run never sends it',
  async (t) => {
    const sandbox = makeRunbookEnv(t);
    const tofuDir = join(sandbox.dir, 'tofu');
    mkdirSync(tofuDir);
    const runbook = defineRunbook({
      id: '94-kinds',
      title: 'kinds',
      steps: [
        {
          id: 'P01',
          title: 'a change passed off as a read',
          risk: 'read',
          run: async (ctx) => {
            await ctx.tofu(['apply', 'applied'], { kind: 'read' });
          },
        },
      ],
    });
    const out = await execute(runbook, sandbox, ['--dry-run', '--json'], {
      env: { TOFU_BIN: 'touch', TOFU_DIR: tofuDir },
    });
    t.equal(out.code, 1);
    t.notOk(existsSync(join(tofuDir, 'applied')), 'nothing was run');
    t.match(
      out.json?.error,
      /^touch apply applied is classified as a mutation and cannot be run as a read, because a dry run would send it/,
    );

    const stricter = defineRunbook({
      id: '94-kinds',
      title: 'kinds',
      steps: [
        {
          id: 'P01',
          title: 'a read marked as a change',
          risk: 'change',
          run: async (ctx) => {
            await ctx.tofu(['show', 'shown'], { kind: 'mutation' });
          },
        },
      ],
    });
    const dry = await execute(stricter, sandbox, ['--dry-run', '--yes'], {
      env: { TOFU_BIN: 'touch', TOFU_DIR: tofuDir },
    });
    t.equal(dry.code, 0);
    t.match(dry.stderr, /would run: touch show shown/, 'marking a read as a mutation is allowed');
    t.notOk(existsSync(join(tofuDir, 'shown')));
  },
);
