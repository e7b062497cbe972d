// The tofu stand-in behaves as OpenTofu with the kubernetes and helm providers does: it refreshes
// before planning, refuses to create what exists, removes what the configuration no longer
// sets, builds every object from the HCL, waits for LoadBalancer addresses and for the chart's
// workloads with the module's timeout, types kubernetes_manifest against its CRD, and holds the
// local backend's state lock.
import { execFile, spawn } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import t, { type Test } from 'tap';
import { type Sandbox, startSandbox } from '../../sandbox/server.ts';
import { REPO, sandboxVars, TOFU } from '../helpers/workloads-sandbox.ts';

const run = promisify(execFile);
t.setTimeout(600_000);

interface Run {
  stdout: string;
  stderr: string;
  code: number;
}

/** A sandbox, a copy of terraform/ the test may edit, and tofu with its state in `stateDir`. */
async function setup(t: Test, options: { podReadyDelayMs?: number; stateDir?: string } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'tofu-provider-'));
  const sandbox: Sandbox = await startSandbox({
    runDir: join(dir, 'sandbox'),
    podReadyDelayMs: options.podReadyDelayMs ?? 20,
  });
  t.teardown(async () => {
    await sandbox.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  const terraform = join(dir, 'terraform');
  cpSync(join(REPO, 'terraform'), terraform, { recursive: true });
  const moduleDir = join(terraform, 'modules', 'redis-shared');
  const stateDir = options.stateDir ?? join(dir, 'state');
  const env = {
    ...process.env,
    KUBECONFIG: sandbox.kubeconfigPath,
    SANDBOX_RUN_DIR: stateDir,
    KUBECACHEDIR: join(dir, 'kc'),
    TF_CLI_CONFIG_FILE: '/dev/null',
  };
  const sandboxVarArgs = sandboxVars(sandbox.network);
  const tofu = (args: string[], vars = sandboxVarArgs): Promise<Run> =>
    run(TOFU, [...args, ...vars], {
      env,
      cwd: join(terraform, 'environments', 'chocolandiadc-mvp'),
      maxBuffer: 16 << 20,
    }).then(
      (r) => ({ ...r, code: 0 }),
      (e: Run) => ({ stdout: e.stdout, stderr: e.stderr, code: e.code }),
    );
  const kubectl = async (args: string[]) =>
    JSON.parse((await run('kubectl', [...args, '-o', 'json'], { env })).stdout);
  const edit = (file: string, from: string | RegExp, to: string) => {
    const path = join(moduleDir, file);
    const text = readFileSync(path, 'utf8');
    const next = text.replace(from, to);
    if (next === text) throw new Error(`${file}: nothing to replace for ${from}`);
    writeFileSync(path, next);
  };
  return { sandbox, tofu, kubectl, edit, stateDir, dir, vars: sandboxVarArgs };
}

t.test('refresh: a new cluster under an old state is planned as creates and applied', async (t) => {
  const first = await setup(t);
  const applied = await first.tofu(['apply', '-auto-approve']);
  t.equal(applied.code, 0, applied.stderr);
  await first.sandbox.stop();
  // `npm run sandbox -- down`, `up`: a new, empty cluster; the tofu state is the old one.
  const second = await setup(t, { stateDir: first.stateDir });
  const plan = await second.tofu(['plan']);
  t.equal(plan.code, 0, plan.stderr);
  // random_password has nothing in the cluster: it stays, and the new Secrets get the same one.
  t.match(plan.stdout, /Plan: 7 to add, 0 to change, 0 to destroy\./);
  t.notMatch(plan.stdout, /random_password/);
  const again = await second.tofu(['apply', '-auto-approve']);
  t.equal(again.code, 0, again.stderr);
  t.match(again.stdout, /Apply complete! Resources: 7 added, 0 changed, 0 destroyed\./);
  const release = await second.kubectl([
    'get',
    'secret',
    '-n',
    'redis',
    'sh.helm.release.v1.redis-shared.v1',
  ]);
  t.equal(release.metadata.labels.status, 'deployed', 'the release is installed anew');
  t.match((await second.tofu(['plan'])).stdout, /No changes\./);

  await t.test('an object deleted behind tofu is planned as a create', async (t) => {
    await run('kubectl', ['delete', 'configmap', '-n', 'monitoring', 'redis-shared-dashboard'], {
      env: { ...process.env, KUBECONFIG: second.sandbox.kubeconfigPath },
    });
    const plan = await second.tofu(['plan']);
    t.match(plan.stdout, /kubernetes_config_map_v1\.dashboard will be created/);
    t.match(plan.stdout, /Plan: 1 to add, 0 to change, 0 to destroy\./);
  });
});

t.test('objects come from the HCL; an update removes what the configuration dropped', async (t) => {
  const { tofu, kubectl, edit } = await setup(t);
  t.equal((await tofu(['apply', '-auto-approve'])).code, 0);
  edit(
    'services.tf',
    '"metallb.io/loadBalancerIPs" = var.lb_ip',
    '"metallb.io/loadBalancerIPs" = var.lb_ip\n      "example.com/owner"          = "platform"',
  );
  edit(
    'services.tf',
    /(\n {4}port \{\n)/,
    '\n    port {\n      name        = "tcp-extra"\n      port        = 6380\n      target_port = "redis"\n      protocol    = "TCP"\n    }\n$1',
  );
  edit('monitoring.tf', '{ grafana_dashboard = "1" }', '{ grafana_dashboard = "2" }');
  edit('alerts.yaml', /for: 5m/, 'for: 7m');
  const changed = await tofu(['apply', '-auto-approve']);
  t.equal(changed.code, 0, changed.stderr);
  t.match(changed.stdout, /Resources: 0 added, 3 changed, 0 destroyed/);
  const svc = await kubectl(['get', 'service', '-n', 'redis', 'redis-shared-external']);
  t.equal(svc.metadata.annotations['example.com/owner'], 'platform', 'the extra annotation');
  t.same(
    svc.spec.ports.map((p: { port: number }) => p.port),
    [6380, 6379],
    'the extra port',
  );
  const dashboard = await kubectl([
    'get',
    'configmap',
    '-n',
    'monitoring',
    'redis-shared-dashboard',
  ]);
  t.equal(dashboard.metadata.labels.grafana_dashboard, '2', 'the changed label');
  const rule = await kubectl(['get', 'prometheusrule', '-n', 'monitoring', 'redis-shared']);
  const fors = rule.spec.groups.flatMap((g: { rules: Array<{ for?: string }> }) =>
    g.rules.map((r) => r.for),
  );
  t.equal(fors.filter((f: string) => f === '7m').length, 1, 'the changed alert for:');

  edit('services.tf', /\n {6}"example\.com\/owner" += "platform"/, '');
  edit(
    'monitoring.tf',
    'merge(local.common_labels, { grafana_dashboard = "2" })',
    'local.common_labels',
  );
  const removed = await tofu(['apply', '-auto-approve']);
  t.equal(removed.code, 0, removed.stderr);
  const svcAfter = await kubectl(['get', 'service', '-n', 'redis', 'redis-shared-external']);
  t.notOk('example.com/owner' in svcAfter.metadata.annotations, 'the annotation is removed');
  t.ok(
    'metallb.io/ip-allocated-from-pool' in svcAfter.metadata.annotations,
    "MetalLB's own annotation stays",
  );
  const dashAfter = await kubectl([
    'get',
    'configmap',
    '-n',
    'monitoring',
    'redis-shared-dashboard',
  ]);
  t.notOk('grafana_dashboard' in dashAfter.metadata.labels, 'the label is removed, not kept');
  t.match((await tofu(['plan'])).stdout, /No changes\./);
});

t.test("a create of an object that exists fails with the provider's error", async (t) => {
  const { tofu, stateDir } = await setup(t);
  t.equal((await tofu(['apply', '-auto-approve'])).code, 0);
  rmSync(join(stateDir, 'tofu', 'terraform.tfstate'));
  const again = await tofu(['apply', '-auto-approve']);
  t.equal(again.code, 1);
  // The API server's AlreadyExists message, as the provider returns it (diag.FromErr).
  t.match(
    again.stderr,
    /Error: (namespaces "redis"|configmaps "redis-shared-dashboard") already exists/,
  );
  t.notMatch(again.stdout, /Apply complete/);
});

t.test('kubernetes_service_v1 waits for its address and is tainted when none comes', async (t) => {
  const { tofu, edit, vars: sandboxVarArgs } = await setup(t);
  edit(
    'services.tf',
    '  depends_on = [helm_release.redis_shared]\n}',
    '  timeouts {\n    create = "2s"\n  }\n\n  depends_on = [helm_release.redis_shared]\n}',
  );
  // MetalLB has no pool of that name: no address comes.
  const vars = [...sandboxVarArgs, '-var', 'metallb_pool=no-such-pool'];
  const failed = await tofu(['apply', '-auto-approve'], vars);
  t.equal(failed.code, 1);
  t.match(
    failed.stderr,
    /Waiting for service "redis\/redis-shared-external" to assign IP\/hostname for a load balancer/,
  );
  const plan = await tofu(['plan'], vars);
  t.match(plan.stdout, /kubernetes_service_v1\.external is tainted, so must be replaced/);
  t.match(plan.stdout, /Plan: 1 to add, 0 to change, 1 to destroy\./);
  const fixed = await tofu(['apply', '-auto-approve']);
  t.equal(fixed.code, 0, fixed.stderr);
  t.match(fixed.stdout, /external: Creation complete/);
});

t.test(
  "helm_release waits with the module's timeout and, atomic, uninstalls on failure",
  async (t) => {
    // Pods that take far longer to turn Ready than the release may wait.
    const { tofu, edit, kubectl } = await setup(t, { podReadyDelayMs: 120_000 });
    edit('main.tf', 'timeout         = 600', 'timeout         = 3');
    const started = Date.now();
    const failed = await tofu(['apply', '-auto-approve']);
    t.equal(failed.code, 1);
    t.match(
      failed.stderr,
      /release redis-shared failed, and has been uninstalled due to atomic being set: timed out waiting for the condition/,
    );
    t.ok(Date.now() - started < 100_000, "it gave up after the module's timeout, not 300 s");
    const sets = await kubectl(['get', 'statefulsets', '-n', 'redis']);
    t.same(sets.items, [], 'the release is uninstalled');
    const plan = await tofu(['plan']);
    t.match(plan.stdout, /helm_release\.redis_shared will be created/);
  },
);

t.test(
  'helm_release with atomic rolls a failed upgrade back to the previous revision',
  async (t) => {
    // Pods turn Ready a few seconds after they start: an install given a minute succeeds, an
    // upgrade given one second does not.
    const { tofu, edit, kubectl } = await setup(t, { podReadyDelayMs: 4000 });
    edit('main.tf', 'timeout         = 600', 'timeout         = 60');
    const installed = await tofu(['apply', '-auto-approve']);
    t.equal(installed.code, 0, installed.stderr);
    edit('main.tf', 'timeout         = 60', 'timeout         = 1');
    edit('variables.tf', '"8.2.1-debian-12-r0"', '"8.2.1-debian-12-r1"');
    const failed = await tofu(['apply', '-auto-approve']);
    t.equal(failed.code, 1);
    t.match(
      failed.stderr,
      /release redis-shared failed, and has been rolled back due to atomic being set: timed out waiting for the condition/,
    );
    const master = await kubectl(['get', 'statefulset', '-n', 'redis', 'redis-shared-master']);
    t.match(
      master.spec.template.spec.containers[0].image,
      /:8\.2\.1-debian-12-r0$/,
      'the old image is back',
    );
    const status = async (n: number) =>
      (await kubectl(['get', 'secret', '-n', 'redis', `sh.helm.release.v1.redis-shared.v${n}`]))
        .metadata.labels.status;
    // As helm's rollback records it (pkg/action/rollback.go): the install and the failed
    // upgrade superseded, the rollback deployed.
    t.equal(await status(1), 'superseded');
    t.equal(await status(2), 'superseded');
    t.equal(await status(3), 'deployed', 'the rollback is the deployed revision');
    t.match((await tofu(['plan'])).stdout, /helm_release\.redis_shared will be updated in-place/);
  },
);

t.test('kubernetes_manifest is typed against its CRD at plan time', async (t) => {
  const { tofu, sandbox, edit } = await setup(t);
  const env = { ...process.env, KUBECONFIG: sandbox.kubeconfigPath };
  const crd = JSON.parse(
    (
      await run('kubectl', ['get', 'crd', 'prometheusrules.monitoring.coreos.com', '-o', 'json'], {
        env,
      })
    ).stdout,
  );
  // The schema of prometheus-operator's CRD, in the part this test needs: spec has groups only.
  crd.spec.versions[0].schema.openAPIV3Schema = {
    type: 'object',
    properties: {
      apiVersion: { type: 'string' },
      kind: { type: 'string' },
      metadata: { type: 'object' },
      spec: {
        type: 'object',
        properties: {
          groups: {
            type: 'array',
            items: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true },
          },
        },
      },
    },
  };
  for (const key of ['resourceVersion', 'uid', 'creationTimestamp', 'managedFields', 'generation'])
    delete crd.metadata[key];
  delete crd.status;
  const file = join(tmpdir(), `crd-${process.pid}.json`);
  writeFileSync(file, JSON.stringify(crd));
  t.teardown(() => rmSync(file, { force: true }));
  await run('kubectl', ['replace', '-f', file], { env });
  edit('alerts.yaml', /^groups:/m, 'partialResponseStrategy: warn\ngroups:');
  const unknown = await tofu(['plan']);
  t.equal(unknown.code, 1);
  t.match(unknown.stderr, /Manifest configuration incompatible with resource schema/);
  t.match(
    unknown.stderr,
    /Unable to find schema type for attribute:\nobject\[spec\]\[partialResponseStrategy\]/,
  );

  await run('kubectl', ['delete', 'crd', 'prometheusrules.monitoring.coreos.com'], { env });
  const missing = await tofu(['plan']);
  t.equal(missing.code, 1);
  t.match(
    missing.stderr,
    /API did not recognize GroupVersionKind from manifest \(CRD may not be installed\)[\s\S]*no matches for kind "PrometheusRule" in group "monitoring.coreos.com"/,
  );
});

t.test("plan and apply hold the local backend's state lock", async (t) => {
  const { tofu, stateDir } = await setup(t);
  const info = join(stateDir, 'tofu', '.terraform.tfstate.lock.info');
  // While an apply runs, its lock info is on disk with OpenTofu's fields.
  let seen: Record<string, unknown> | undefined;
  const watching = setInterval(() => {
    if (!seen && existsSync(info)) {
      try {
        seen = JSON.parse(readFileSync(info, 'utf8'));
      } catch {
        // Caught mid-write: the next tick reads it.
      }
    }
  }, 20);
  const applied = await tofu(['apply', '-auto-approve']);
  clearInterval(watching);
  t.equal(applied.code, 0, applied.stderr);
  t.same(Object.keys(seen ?? {}).sort(), [
    'Created',
    'ID',
    'Info',
    'Operation',
    'Path',
    'Version',
    'Who',
  ]);
  t.equal(seen?.Operation, 'OperationTypeApply');
  t.notOk(existsSync(info), 'released when the apply ends');

  // Another process holds it: a second run fails at once, as tofu does.
  const holder = spawn('sleep', ['60']);
  t.teardown(() => holder.kill());
  writeFileSync(join(stateDir, 'tofu', '.terraform.tfstate.lock'), `${holder.pid}\n`);
  writeFileSync(
    info,
    JSON.stringify({
      ID: 'b3d1a7a0-0000-4000-8000-000000000001',
      Operation: 'OperationTypeApply',
      Info: '',
      Who: 'operator@homelab',
      Version: '1.9.1',
      Created: '2026-12-06T04:00:00.000Z',
      Path: join(stateDir, 'tofu', 'terraform.tfstate'),
    }),
  );
  const blocked = await tofu(['plan']);
  t.equal(blocked.code, 1);
  t.match(blocked.stderr, /Error: Error acquiring the state lock/);
  t.match(
    blocked.stderr,
    /Error message: resource temporarily unavailable\nLock Info:\n {2}ID: +b3d1a7a0-0000-4000-8000-000000000001/,
  );
  t.match(blocked.stderr, /Operation: OperationTypeApply\n {2}Who: +operator@homelab/);
  t.match(blocked.stderr, /disable locking with the "-lock=false"/);
  t.notOk(/Plan:|No changes/.test(blocked.stdout), 'nothing was planned');

  // Released while a second run waits with -lock-timeout: it goes ahead.
  const waiting = tofu(['plan', '-lock-timeout=60s']);
  holder.kill();
  await new Promise((r) => holder.once('exit', r));
  const waited = await waiting;
  t.equal(waited.code, 0, waited.stderr);
  t.match(waited.stdout, /No changes\./, 'a holder that ended holds nothing, as with fcntl');
});
