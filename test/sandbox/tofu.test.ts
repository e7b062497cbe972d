// The tofu stand-in: its object list cross-checked against the HCL in terraform/, its template
// rendering against the reference renderer, and the commands that need no cluster.
// test/sandbox/tofu-apply.test.ts applies it to the sandbox's API half.
import { execFile } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import { parse as parseYaml } from 'yaml';
import { loadModule, loadRoot, moduleInputs, moduleLocals } from '../../sandbox/tofu/config.ts';
import { declaredResources, desiredState, SUPPORTED_TYPES } from '../../sandbox/tofu/resources.ts';
import { renderTemplate } from '../../sandbox/tofu/template.ts';
import { ENVIRONMENT_DIR, REPO, TOFU } from '../helpers/workloads-sandbox.ts';

const run = promisify(execFile);
const MODULES_DIR = join(REPO, 'terraform', 'modules');

t.test('the stand-in creates the Kubernetes objects the modules declare', async (t) => {
  if (!existsSync(MODULES_DIR)) {
    t.fail(
      `terraform/modules is missing (looked in ${MODULES_DIR}): the stand-in is checked against it`,
    );
    return;
  }
  const modules = readdirSync(MODULES_DIR).filter((d) =>
    statSync(join(MODULES_DIR, d)).isDirectory(),
  );
  for (const module of modules) {
    const source = await loadModule(join(MODULES_DIR, module));
    const types = declaredResources(source.blocks).map((r) => r.split('.')[0] as string);
    t.same(
      types.filter((type) => !(SUPPORTED_TYPES as readonly string[]).includes(type)),
      [],
      `module ${module}: every resource type it declares is one the stand-in plans`,
    );
  }

  const root = await loadRoot(ENVIRONMENT_DIR, [
    { kind: 'var', text: 'enable_beersystem_migration=true' },
  ]);
  const desired = desiredState(root);
  const objects = desired.resources.flatMap((r) =>
    r.objects.map((o) => `${o.kind} ${o.metadata.namespace ?? ''}/${o.metadata.name}`),
  );
  // Every kubernetes_* resource's metadata, evaluated with the module's inputs, names an object
  // the stand-in creates.
  const call = root.calls.redis_shared!;
  const inputs = moduleInputs(call, { vars: root.vars });
  const locals = moduleLocals(call.source, inputs);
  const kinds: Record<string, string> = {
    kubernetes_namespace_v1: 'Namespace',
    kubernetes_secret_v1: 'Secret',
    kubernetes_service_v1: 'Service',
    kubernetes_config_map_v1: 'ConfigMap',
  };
  for (const [type, byName] of Object.entries(
    call.source.blocks.resource as Record<
      string,
      Record<
        string,
        Array<{
          metadata?: Array<{ name: string; namespace?: string }>;
          manifest?: { kind: string; metadata: { name: string; namespace: string } };
        }>
      >
    >,
  )) {
    for (const [name, [block]] of Object.entries(byName)) {
      const meta = block?.metadata?.[0] ?? block?.manifest?.metadata;
      const kind = kinds[type] ?? block?.manifest?.kind;
      if (!meta || !kind) continue;
      const resolved = (v: string | undefined) =>
        (v ?? '')
          .replace(/\$\{var\.(\w+)\}/g, (_, n: string) => String(inputs[n]))
          .replace(
            /\$\{kubernetes_namespace_v1\.redis\.metadata\[0\]\.name\}/,
            String(inputs.namespace),
          )
          .replace(/\$\{local\.(\w+)\}/g, (_, n: string) => String(locals[n]));
      const objectName = resolved(meta.name);
      const namespace =
        type === 'kubernetes_secret_v1'
          ? String(inputs.namespace)
          : kind === 'Namespace'
            ? ''
            : resolved(meta.namespace);
      t.ok(
        objects.includes(`${kind} ${namespace}/${objectName}`),
        `${type}.${name} → ${kind} ${namespace}/${objectName}`,
      );
    }
  }
  // The chart's objects carry the names FACTS.md gives for release redis-shared.
  for (const expected of [
    'Service redis/redis-shared-master',
    'Service redis/redis-shared-replicas',
    'Service redis/redis-shared-headless',
    'Service redis/redis-shared-metrics',
    'StatefulSet redis/redis-shared-master',
    'StatefulSet redis/redis-shared-replicas',
    'ServiceMonitor monitoring/redis-shared',
    'PrometheusRule monitoring/redis-shared',
    'ConfigMap monitoring/redis-shared-dashboard',
    'Secret beersystem/redis-credentials',
  ]) {
    t.ok(objects.includes(expected), expected);
  }
  const chart = desired.resources.find((r) => r.type === 'helm_release')!.objects;
  const metrics = chart.find(
    (o) => o.kind === 'Service' && o.metadata.name === 'redis-shared-metrics',
  )!;
  t.same(metrics.spec.ports[0], {
    name: 'http-metrics',
    port: 9121,
    targetPort: 'metrics',
    protocol: 'TCP',
  });
  const monitor = chart.find((o) => o.kind === 'ServiceMonitor')!;
  t.equal(monitor.metadata.labels.release, 'kube-prometheus-stack');
  t.equal(monitor.spec.endpoints[0].interval, '15s', 'SC-005: scraped every 15 s at most');
  const replicas = chart.find(
    (o) => o.kind === 'StatefulSet' && o.metadata.name === 'redis-shared-replicas',
  )!;
  t.equal(replicas.spec.replicas, 1, 'replica_count');
  t.same(replicas.spec.volumeClaimTemplates[0].spec.resources.requests.storage, '10Gi');
  t.equal(replicas.spec.volumeClaimTemplates[0].spec.storageClassName, 'local-path');
  const rule = desired.resources.find((r) => r.type === 'kubernetes_manifest')!.objects[0]!;
  const alerts = parseYaml(
    readFileSync(join(MODULES_DIR, 'redis-shared', 'alerts.yaml'), 'utf8').replace(
      /\$\{(\w+)\}/g,
      (_, n: string) =>
        String(
          locals.alerts_template_vars && (locals.alerts_template_vars as Record<string, string>)[n],
        ),
    ),
  );
  t.same(rule.spec, alerts, 'the PrometheusRule carries the rules of alerts.yaml');
  const env = desired.resources.find((r) => r.type === 'kubernetes_env')!.envPatch!;
  t.same(env.env, [
    { name: 'REDIS_HOST', value: 'redis-shared-master.redis.svc.cluster.local' },
    { name: 'REDIS_PORT', value: '6379' },
    {
      name: 'REDIS_PASSWORD',
      valueFrom: { secretKeyRef: { name: 'redis-credentials', key: 'redis-password' } },
    },
  ]);
});

t.test('values.yaml.tftpl renders as the reference renderer renders it', async (t) => {
  const root = await loadRoot(ENVIRONMENT_DIR, []);
  const call = root.calls.redis_shared!;
  const locals = moduleLocals(call.source, moduleInputs(call, { vars: root.vars }));
  const template = readFileSync(join(MODULES_DIR, 'redis-shared', 'values.yaml.tftpl'), 'utf8');
  const vars = locals.values_template_vars as Record<string, unknown>;
  t.doesNotThrow(() => renderTemplate(template, vars), 'the values template renders');
  t.throws(() => renderTemplate('$' + '{a + 1}', { a: 1 }), /unsupported template expression/);
  t.equal(renderTemplate('%{ if on }yes%{ else }no%{ endif }', { on: false }), 'no');
});

t.test('tofu stand-in: version, init, validate, fmt -check', async (t) => {
  const tofu = (args: string[]) =>
    run(TOFU, args, { cwd: ENVIRONMENT_DIR }).then(
      (r) => ({ ...r, code: 0 }),
      (e: { stdout: string; stderr: string; code: number }) => ({
        stdout: e.stdout,
        stderr: e.stderr,
        code: e.code,
      }),
    );
  t.match((await tofu(['version'])).stdout, /^OpenTofu v1\.9\.\d+/);
  t.match((await tofu(['init', '-input=false'])).stdout, /successfully initialized/);
  t.match((await tofu(['validate'])).stdout, /Success! The configuration is valid\./);
  t.equal((await tofu(['fmt', '-check', '-recursive'])).code, 0, 'the configuration is formatted');
  const bad = await tofu(['plan', '-var', 'no_such_variable=1']);
  t.equal(bad.code, 1);
  t.match(bad.stderr, /undeclared variable "no_such_variable"/);
});
