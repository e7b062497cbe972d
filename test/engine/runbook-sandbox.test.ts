// The engine's safety rules against the sandbox's API emulator with the real kubectl: the
// emulator's journal records every mutating request, so "nothing was sent" is proven from
// outside the engine.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { type AuditEntry, readAuditEntries } from '../../lib/audit/audit.ts';
import {
  defineRunbook,
  type EngineOptions,
  executeRunbook,
  type Runbook,
  type RunSummary,
  type StepContext,
} from '../../lib/engine/runbook.ts';
import { MIGRATION_ANNOTATION } from '../../lib/names.ts';
import { makeRunbookEnv } from '../helpers/runbook-env.ts';
import { type SandboxFixture, startTestSandbox } from '../helpers/sandbox.ts';

const NS = 'beersystem';
// A real run takes the Lease and writes its record and audit anchor (lib/lock/lease-lock.ts,
// lib/audit/cluster-records.ts); lease-lock.test.ts and cluster-records.test.ts prove those.
const RUN_BOOKKEEPING =
  /^\/(apis\/coordination\.k8s\.io\/v1\/namespaces\/default\/leases|api\/v1\/namespaces\/default\/configmaps)(\/redis-shared-runbooks)?(\?.*)?$/;

class Capture {
  text = '';
  isTTY = false;
  write(chunk: string): boolean {
    this.text += chunk;
    return true;
  }
}

interface Outcome {
  code: number;
  stderr: string;
  entries: AuditEntry[];
  json: RunSummary | undefined;
  /** mutating requests the emulator received during this run, besides its lock and records */
  sent: Array<{ method: string; path: string; status: number }>;
}

async function withSandbox(t: Test) {
  const cluster = await startTestSandbox(t);
  const place = makeRunbookEnv(t);
  const env = {
    ...place.env,
    KUBECONFIG: cluster.sandbox.kubeconfigPath,
    KUBE_CONTEXT: 'sandbox',
    KUBECACHEDIR: join(place.dir, 'kube-cache'),
  };
  const execute = async (
    runbook: Runbook,
    argv: string[],
    options: Partial<EngineOptions> = {},
  ): Promise<Outcome> => {
    const before = (await cluster.journal()).length;
    const stdout = new Capture();
    const stderr = new Capture();
    const code = await executeRunbook(runbook, {
      argv: [...argv, '--json'],
      program: './runbooks/97-sandbox.mts',
      stdout,
      stderr,
      isInteractive: () => false,
      env,
      ...options,
    });
    const sent = (await cluster.journal())
      .slice(before)
      .filter((e) => !e.dryRun && !RUN_BOOKKEEPING.test(e.path))
      .map((e) => ({ method: e.method, path: e.path, status: e.status }));
    return {
      code,
      stderr: stderr.text,
      entries: await readAuditEntries(place.auditLog),
      json: stdout.text ? (JSON.parse(stdout.text) as RunSummary) : undefined,
      sent,
    };
  };
  return { cluster, place, execute };
}

async function replicas(cluster: SandboxFixture): Promise<number> {
  const out = await cluster.kubectlOk([
    'get',
    'deployment',
    'beersystem',
    '-n',
    NS,
    '-o',
    'jsonpath={.spec.replicas}',
  ]);
  return Number(out);
}

t.test('a read step that calls kubectl scale fails before sending it', async (t) => {
  const { execute, cluster } = await withSandbox(t);
  const runbook = defineRunbook({
    id: '97-read',
    title: 'read',
    steps: [
      {
        id: 'P01',
        title: 'only looks, supposedly',
        risk: 'read',
        run: (ctx) => ctx.kubectl`scale deployment beersystem -n ${NS} --replicas=${0}`,
      },
    ],
  });
  const before = await replicas(cluster);
  const out = await execute(runbook, []);
  t.equal(out.code, 1);
  t.match(
    out.json?.error,
    /step P01 is declared risk 'read' but sends a mutation: kubectl .* scale deployment beersystem -n beersystem --replicas=0\. Nothing was sent\. Declare the step 'change'/,
  );
  t.same(out.sent, [], 'the journal shows no request');
  t.equal(await replicas(cluster), before);
});

t.test('a failing mutation is sent once unless it is declared idempotent', async (t) => {
  const { execute } = await withSandbox(t);
  // A replace made from a stale resourceVersion is refused with 409 Conflict, which looks
  // transient ("the object has been modified").
  const stale = async (ctx: StepContext) => {
    const current = JSON.parse(
      (await ctx.kubectl`get deployment beersystem -n ${NS} -o json`).stdout,
    ) as { metadata: { resourceVersion: string } };
    current.metadata.resourceVersion = String(Number(current.metadata.resourceVersion) - 1);
    return JSON.stringify(current);
  };
  const once = defineRunbook({
    id: '97-once',
    title: 'once',
    steps: [
      {
        id: 'T001',
        title: 'replace from a stale copy',
        risk: 'change',
        run: async (ctx) => ctx.kubectl(['replace', '-f', '-'], { input: await stale(ctx) }),
      },
    ],
  });
  const out = await execute(once, ['--yes']);
  t.equal(out.code, 1);
  t.match(out.json?.error, /Conflict/);
  t.same(
    out.sent.map((e) => [e.method, e.status]),
    [['PUT', 409]],
    'one request, not retried',
  );

  const retried = defineRunbook({
    id: '97-retried',
    title: 'retried',
    steps: [
      {
        id: 'T001',
        title: 'replace from a stale copy, declared idempotent',
        risk: 'change',
        run: async (ctx) =>
          ctx.kubectl({
            idempotent: true,
            retries: 2,
            backoff: { baseMs: 10, maxMs: 20 },
            input: await stale(ctx),
          })`replace -f -`,
      },
    ],
  });
  const again = await execute(retried, ['--yes']);
  t.equal(again.code, 1);
  t.same(
    again.sent.map((e) => [e.method, e.status]),
    [
      ['PUT', 409],
      ['PUT', 409],
      ['PUT', 409],
    ],
    'an idempotent call is tried again',
  );
  t.match(again.json?.error, /after 3 attempts/);
});

t.test('--yes with a wrong --confirm exits 2 before anything is sent', async (t) => {
  const { execute } = await withSandbox(t);
  const runbook = defineRunbook({
    id: '97-confirm',
    title: 'confirm',
    steps: [
      {
        id: 'T001',
        title: 'scale beersystem down',
        risk: 'high',
        run: (ctx) => ctx.kubectl`scale deployment beersystem -n ${NS} --replicas=0`,
      },
      {
        id: 'T002',
        title: 'delete the old redis',
        risk: 'irreversible',
        confirmName: 'redis',
        run: (ctx) => ctx.kubectl`delete deployment redis -n ${NS}`,
      },
    ],
  });
  const out = await execute(runbook, ['--yes', '--confirm', 'rdis']);
  t.equal(out.code, 2);
  t.match(out.stderr, /--confirm rdis does not name T002's resource/);
  t.same(out.sent, [], 'the journal is empty');
  t.notOk(out.entries.some((e) => e.event === 'step-start'));
});

t.test('a completed runbook re-run sends no mutation', async (t) => {
  const { execute } = await withSandbox(t);
  const annotation = async (ctx: StepContext) =>
    (
      await ctx.kubectl`get deployment beersystem -n ${NS} -o ${`jsonpath={.metadata.annotations.${MIGRATION_ANNOTATION.replaceAll('.', '\\.')}}`}`
    ).stdout.trim();
  const runbook = defineRunbook({
    id: '97-complete',
    title: 'complete',
    completed: async (ctx) => {
      const at = await annotation(ctx);
      return at ? `beersystem was migrated at ${at}` : undefined;
    },
    steps: [
      {
        id: 'T001',
        title: 'scale beersystem to 1',
        risk: 'change',
        run: (ctx) => ctx.kubectl`scale deployment beersystem -n ${NS} --replicas=1`,
      },
      {
        id: 'T002',
        title: 'record the migration',
        risk: 'change',
        run: (ctx) =>
          ctx.kubectl`annotate deployment beersystem -n ${NS} ${`${MIGRATION_ANNOTATION}=2026-11-30T12:00:00Z`} --overwrite`,
      },
    ],
  });
  const first = await execute(runbook, ['--yes']);
  t.equal(first.code, 0, first.stderr);
  t.ok(first.sent.length >= 2, 'the first run changed the cluster');
  const second = await execute(runbook, []);
  t.equal(second.code, 0, second.stderr);
  t.match(second.stderr, /already complete: beersystem was migrated at 2026-11-30T12:00:00Z/);
  t.same(second.sent, [], 'the journal is empty');
  t.match(second.json, {
    outcome: 'ok',
    already_complete: /migrated/,
    steps: [{ status: 'skipped' }, { status: 'skipped' }],
  });
});

t.test(
  'waitFor: a timeout says what it waited for, and is audited with its duration',
  async (t) => {
    const { execute } = await withSandbox(t);
    const runbook = defineRunbook({
      id: '97-wait',
      title: 'wait',
      steps: [
        {
          id: 'P01',
          title: 'wait for beersystem pods to be gone',
          risk: 'read',
          run: (ctx) =>
            ctx.waitFor(
              'beersystem pods gone',
              async () =>
                (await ctx.kubectl`get pods -n ${NS} -l app=beersystem -o name`).stdout.trim() ===
                '',
              { timeoutMs: 600, intervalMs: 100, progress: () => 'pods still there' },
            ),
        },
      ],
    });
    const out = await execute(runbook, []);
    t.equal(out.code, 1);
    t.match(
      out.json?.error,
      /^timed out after 600ms waiting for beersystem pods gone \(last seen: pods still there\)/,
    );
    const wait = out.entries.find((e) => e.event === 'wait');
    t.match(wait, { step: 'P01', outcome: 'timeout', detail: { what: 'beersystem pods gone' } });
    t.ok((wait?.duration_ms ?? 0) >= 600, 'the duration is audited');
  },
);

t.test('interrupting a wait exits 130 and closes the watch it held', async (t) => {
  const { execute, cluster, place } = await withSandbox(t);
  const pidFile = join(place.dir, 'watch.pid');
  const controller = new AbortController();
  const runbook = defineRunbook({
    id: '97-watch',
    title: 'watch',
    steps: [
      {
        id: 'P01',
        title: 'wait on a watch',
        risk: 'read',
        run: (ctx) =>
          ctx.waitFor('a pod named never', async () => {
            // a watch that never sees its object: only the interrupt ends it
            const watching = ctx.run(
              [
                'sh',
                '-c',
                'echo $$ > "$1"; exec kubectl --kubeconfig "$2" get pods -n beersystem --watch --field-selector metadata.name=never',
                'sh',
                pidFile,
                cluster.sandbox.kubeconfigPath,
              ],
              { kind: 'read', timeoutMs: 600_000 },
            );
            const deadline = Date.now() + 10_000;
            while (!existsSync(pidFile) || !readFileSync(pidFile, 'utf8').endsWith('\n')) {
              if (Date.now() > deadline) throw new Error('the watch did not start');
              await new Promise((resolve) => setTimeout(resolve, 10));
            }
            controller.abort();
            await watching;
            return true;
          }),
      },
    ],
  });
  const out = await execute(runbook, [], { signal: controller.signal });
  t.equal(out.code, 130, out.stderr);
  const pid = Number(readFileSync(pidFile, 'utf8'));
  t.notOk(liveProcess(pid), 'the watch was closed before the run ended');
  t.match(
    out.entries.find((e) => e.event === 'wait'),
    { outcome: 'interrupted' },
  );
  t.match(out.entries.at(-1), { event: 'run-end', outcome: 'interrupted' });
});

function liveProcess(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/^[ZX]/.test(stat.slice(stat.lastIndexOf(')') + 2));
  } catch {
    return false;
  }
}

t.test(
  'ctx.kube reads in a --dry-run and sends nothing; its wait on a watch is reported, not failed',
  async (t) => {
    const { execute, cluster } = await withSandbox(t);
    const seen: Record<string, unknown> = {};
    const runbook = defineRunbook({
      id: '97-kube',
      title: 'kube',
      steps: [
        {
          id: 'T035',
          title: 'Scale beersystem to 0',
          risk: 'high',
          run: async (ctx) => {
            const deployment = await ctx.kube.deployment(NS, 'beersystem');
            seen.replicas = deployment?.replicas;
            seen.pods = (await ctx.kube.pods(NS, deployment?.selector ?? '')).length;
            await ctx.note('beersystem.replicas', deployment?.replicas);
            await ctx.kubectl`scale deployment beersystem -n ${NS} --replicas=0`;
            seen.gone = await ctx.waitFor('beersystem pods gone', (signal) =>
              ctx.kube.watchUntil(
                `/api/v1/namespaces/${NS}/pods`,
                { labelSelector: deployment?.selector ?? '' },
                (pods) => pods.length === 0,
                signal,
              ),
            );
          },
        },
      ],
    });
    const before = await replicas(cluster);
    const out = await execute(runbook, ['--dry-run']);
    t.equal(out.code, 0, out.stderr);
    t.equal(seen.replicas, before, 'the read ran in the dry run');
    t.ok((seen.pods as number) > 0);
    t.equal(seen.gone, undefined);
    t.match(
      out.stderr,
      /would run: kubectl .* scale deployment beersystem -n beersystem --replicas=0/,
    );
    t.match(out.stderr, /would wait for beersystem pods gone/);
    t.same(out.sent, [], 'the journal is empty');
    t.equal(await replicas(cluster), before);
  },
);

t.test('interrupting a wait on a ctx.kube watch exits 130 and closes the watch', async (t) => {
  const { execute } = await withSandbox(t);
  const controller = new AbortController();
  let watch: Promise<unknown> | undefined;
  let watchSettled = false;
  const runbook = defineRunbook({
    id: '97-kube-watch',
    title: 'kube watch',
    steps: [
      {
        id: 'P01',
        title: 'wait for a pod that never comes',
        risk: 'read',
        run: (ctx) =>
          ctx.waitFor('pod never', (signal) => {
            watch = ctx.kube.watchUntil(
              `/api/v1/namespaces/${NS}/pods`,
              { fieldSelector: 'metadata.name=never' },
              (pods) => pods.length > 0,
              signal,
            );
            watch.then(
              () => undefined,
              () => {
                watchSettled = true;
              },
            );
            // the interrupt arrives while the watch is open (or opening): either way it must close
            setImmediate(() => controller.abort());
            return watch as Promise<boolean>;
          }),
      },
    ],
  });
  const out = await execute(runbook, [], { signal: controller.signal });
  t.equal(out.code, 130, out.stderr);
  t.ok(watch, 'the watch was opened');
  t.ok(watchSettled, 'the watch was closed before the run ended');
  t.match(
    out.entries.find((e) => e.event === 'wait'),
    { outcome: 'interrupted' },
  );
  t.match(out.entries.at(-1), { event: 'run-end', outcome: 'interrupted' });
});
