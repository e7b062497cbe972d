// The OpenTofu code itself: it parses, it is formatted, and the objects it declares carry the
// names and settings the spec (and the sandbox's tofu stand-in) rely on.
import { access, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import t from 'tap';
import { tofuVars } from '../../lib/cluster/tofu-vars.ts';
import { loadConfig } from '../../lib/config.ts';
import { findTerraformBinary, needsBinary, runCli } from '../helpers/terraform-cli.ts';
import {
  block,
  type HclBody,
  type HclModule,
  listTfFiles,
  loadModule,
  MIGRATION_DIR,
  parseHclFile,
  REDIS_SHARED_DIR,
  REPO_ROOT,
  ROOT_MODULE_DIR,
  resolveValue,
  resource,
  TERRAFORM_DIR,
  variableDefaults,
} from '../helpers/terraform-hcl.ts';

const redisShared = await loadModule(REDIS_SHARED_DIR);
const migration = await loadModule(MIGRATION_DIR);
const root = await loadModule(ROOT_MODULE_DIR);
const defaults = variableDefaults(redisShared);
const bin = await findTerraformBinary();

t.test('every .tf file under terraform/ parses with @cdktf/hcl2json', async (t) => {
  const files = await listTfFiles(TERRAFORM_DIR);
  t.ok(files.length >= 15, `found ${files.length} .tf files`);
  for (const file of files) {
    await t.resolves(parseHclFile(file), relative(REPO_ROOT, file));
  }
});

t.test('a syntax error is reported with file and line', async (t) => {
  const missing = join(TERRAFORM_DIR, 'modules', 'redis-shared', 'does-not-exist.tf');
  await t.rejects(parseHclFile(missing), /ENOENT/);
  const dir = await mkdtemp(join(tmpdir(), 'hcl-syntax-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const broken = join(dir, 'broken.tf');
  await writeFile(broken, 'variable "x" {\n  default = \n}\n');
  const name = relative(REPO_ROOT, broken).replaceAll('.', '\\.');
  await t.rejects(parseHclFile(broken), new RegExp(`HCL syntax error: .*${name}:2,`));
});

t.test(
  'tofu fmt / terraform fmt -check -recursive terraform/ passes',
  needsBinary(bin),
  async (t) => {
    const cli = bin!;
    t.comment(`fmt check ran with ${cli.name} (${cli.path})`);
    const result = await runCli(cli, ['fmt', '-check', '-recursive', '-diff', 'terraform/'], {
      cwd: REPO_ROOT,
    });
    t.equal(result.code, 0, `${cli.name} fmt -check: ${result.stdout}${result.stderr}`);
  },
);

t.test('providers are pinned to ranges (T003)', async (t) => {
  for (const mod of [redisShared, migration, root]) {
    const providers = mod.terraform.flatMap(
      (b) => (b.required_providers ?? []) as Record<string, { source: string; version: string }>[],
    );
    t.ok(providers.length > 0, `${relative(REPO_ROOT, mod.dir)} declares required_providers`);
    for (const [name, req] of Object.entries(Object.assign({}, ...providers))) {
      const { source, version } = req as { source: string; version: string };
      t.match(source, /^hashicorp\//, `${name} source`);
      t.match(version, /^>= \d+\.\d+\.\d+, < \d+\.0\.0$/, `${name} is pinned to a major range`);
    }
  }
});

t.test(
  'the kubernetes provider ignores the pool annotation MetalLB writes, so a re-plan shows no diff',
  async (t) => {
    const patterns = (root.providers.kubernetes?.ignore_annotations ?? []) as string[];
    const matches = (key: string) => patterns.some((p) => new RegExp(p).test(key));
    t.ok(matches('metallb.io/ip-allocated-from-pool'), 'the current name');
    t.ok(matches('metallb.universe.tf/ip-allocated-from-pool'), 'the deprecated name');
    t.notOk(matches('metallb.io/loadBalancerIPs'), 'the annotations the module sets stay managed');
    t.notOk(matches('metallb.io/address-pool'), 'the pool the module asks for stays managed');
  },
);

t.test('FR-001: the module creates the "redis" namespace', async (t) => {
  const ns = resource(redisShared, 'kubernetes_namespace_v1', 'redis');
  const meta = block(ns, 'metadata');
  t.equal(resolveValue(redisShared, meta.name), 'redis');
  t.equal(defaults.namespace, 'redis');
});

t.test('FR-011/FR-012/FR-012a: one 32-character password, one Secret per namespace', async (t) => {
  t.same(Object.keys(redisShared.resources.random_password ?? {}), ['redis'], 'one password');
  const password = resource(redisShared, 'random_password', 'redis');
  t.equal(password.length, 32);

  const secret = resource(redisShared, 'kubernetes_secret_v1', 'credentials');
  t.equal(secret.for_each, `\${local.secret_namespaces}`);
  t.equal(
    redisShared.locals.secret_namespaces,
    `\${toset(concat([var.namespace], var.replica_namespaces))}`,
  );
  const namespaces = new Set([defaults.namespace, ...(defaults.replica_namespaces as string[])]);
  t.same([...namespaces].sort(), ['beersystem', 'redis'], 'two Secrets: redis and beersystem');

  const meta = block(secret, 'metadata');
  t.equal(resolveValue(redisShared, meta.name), 'redis-credentials');
  t.equal(meta.namespace, `\${each.key}`);
  const data = secret.data as Record<string, string>;
  t.same(Object.keys(data), [`\${(local.credentials_secret_key)}`], 'one key, named by a local');
  t.same(Object.values(data), [`\${random_password.redis.result}`], 'holding the password');
  t.equal(resolveValue(redisShared, `\${local.credentials_secret_key}`), 'redis-password');
  t.same(Object.keys(redisShared.resources.kubernetes_secret_v1 ?? {}), ['credentials']);
});

t.test('T012: helm_release "redis-shared" takes its values from values.yaml.tftpl', async (t) => {
  const release = resource(redisShared, 'helm_release', 'redis_shared');
  t.equal(resolveValue(redisShared, release.name), 'redis-shared');
  t.equal(release.chart, 'redis');
  t.equal(resolveValue(redisShared, release.version), '23.1.1');
  t.same(release.values, [
    `\${templatefile("\${path.module}/values.yaml.tftpl", local.values_template_vars)}`,
  ]);
  t.same(release.depends_on, [`\${kubernetes_secret_v1.credentials}`], 'Secret exists first');
});

t.test(
  'FR-004/FR-005: redis-shared-external is a LoadBalancer for the private network only',
  async (t) => {
    const svc = resource(redisShared, 'kubernetes_service_v1', 'external');
    const meta = block(svc, 'metadata');
    const spec = block(svc, 'spec');
    t.equal(meta.name, `\${var.release_name}-external`);
    t.equal(`${defaults.release_name}-external`, 'redis-shared-external');
    t.same(
      resolveValue(redisShared, meta.annotations),
      {
        'metallb.io/address-pool': 'eero-pool',
        'metallb.io/loadBalancerIPs': '192.168.4.203',
      },
      'address and pool as the current MetalLB annotations, no deprecated metallb.universe.tf/ names',
    );
    t.equal(spec.type, 'LoadBalancer');
    t.notOk(
      'load_balancer_ip' in spec,
      'no spec.loadBalancerIP: MetalLB refuses a Service that has it beside the annotation',
    );
    t.same(resolveValue(redisShared, spec.load_balancer_source_ranges), ['192.168.4.0/24']);
    t.equal(spec.external_traffic_policy, 'Local');
    t.equal(
      spec.allocate_load_balancer_node_ports,
      false,
      'no NodePort on every node, which the source ranges would not guard',
    );
    t.same(resolveValue(redisShared, spec.selector), {
      'app.kubernetes.io/name': 'redis',
      'app.kubernetes.io/instance': 'redis-shared',
      'app.kubernetes.io/component': 'master',
    });
    const [port] = spec.port as HclBody[];
    t.equal(port?.port, 6379);
    t.notOk('node_port' in (port ?? {}), 'no fixed nodePort');

    const services = Object.values(redisShared.resources.kubernetes_service_v1 ?? {});
    t.equal(services.length, 1, 'the only Service the module declares itself');
  },
);

t.test('SC-005: PrometheusRule and dashboard go to monitoring with the right labels', async (t) => {
  const rule = resource(redisShared, 'kubernetes_manifest', 'prometheus_rule');
  const manifest = rule.manifest as HclBody;
  t.equal(manifest.kind, 'PrometheusRule');
  const meta = manifest.metadata as HclBody;
  t.equal(meta.name, `\${var.release_name}`);
  t.equal(resolveValue(redisShared, meta.namespace), 'monitoring');
  t.match(String(meta.labels), /release = var\.prometheus_release_label/);
  t.equal(defaults.prometheus_release_label, 'kube-prometheus-stack');
  t.equal(
    manifest.spec,
    `\${yamldecode(templatefile("\${path.module}/alerts.yaml", local.alerts_template_vars))}`,
    'rules come from alerts.yaml',
  );

  const dashboard = resource(redisShared, 'kubernetes_config_map_v1', 'dashboard');
  const dmeta = block(dashboard, 'metadata');
  t.equal(dmeta.name, `\${var.release_name}-dashboard`);
  t.equal(resolveValue(redisShared, dmeta.namespace), 'monitoring');
  t.match(String(dmeta.labels), /grafana_dashboard = "1"/);
  t.same(dashboard.data, {
    'redis-shared.json': `\${file("\${path.module}/dashboards/redis-shared.json")}`,
  });
});

t.test(
  'US4: the migration sets REDIS_HOST, REDIS_PORT and REDIS_PASSWORD via secretKeyRef',
  async (t) => {
    const mdefaults = variableDefaults(migration);
    const env = resource(migration, 'kubernetes_env', 'beersystem_redis');
    t.equal(env.kind, 'Deployment');
    t.equal(env.api_version, 'apps/v1');
    t.equal(resolveValue(migration, env.container), 'beersystem');
    const meta = block(env, 'metadata');
    t.equal(resolveValue(migration, meta.name), 'beersystem');
    t.equal(resolveValue(migration, meta.namespace), 'beersystem');
    t.equal(env.force, true);

    const entries = env.env as HclBody[];
    t.same(
      entries.map((e) => e.name),
      ['REDIS_HOST', 'REDIS_PORT', 'REDIS_PASSWORD'],
    );
    t.equal(
      resolveValue(migration, entries[0]?.value),
      'redis-shared-master.redis.svc.cluster.local',
    );
    t.equal(entries[1]?.value, `\${tostring(var.redis_port)}`);
    t.equal(mdefaults.redis_port, 6379);
    const password = entries[2] as HclBody;
    t.notOk('value' in password, 'the password is never a literal value');
    const ref = block(block(password, 'value_from'), 'secret_key_ref');
    t.same(resolveValue(migration, ref), { name: 'redis-credentials', key: 'redis-password' });
  },
);

t.test('US4: the migration README says what to revert and what to scale back', async (t) => {
  const readme = await readFile(join(MIGRATION_DIR, 'README.md'), 'utf8');
  const rollback = readme.split(/^## Rollback$/m)[1] ?? '';
  t.ok(rollback, 'a Rollback section');
  t.match(rollback, /kubectl scale deployment beersystem -n beersystem --replicas=0/);
  t.match(rollback, /tofu apply -var enable_beersystem_migration=false/, 'revert by the switch');
  t.match(rollback, /kubectl set env deployment\/beersystem -n beersystem/, 'restore old values');
  t.match(rollback, /kubectl scale deployment redis -n beersystem --replicas=1/, 'old Redis up');
  t.ok(
    rollback.indexOf('kubectl set env') < rollback.indexOf('enable_beersystem_migration=false'),
    'the old values are restored before the switch releases the fields (false alone is refused)',
  );
});

t.test('US4: the module states what false does and what the rollback restores', async (t) => {
  const readme = await readFile(join(MIGRATION_DIR, 'README.md'), 'utf8');
  const contract = readme.split(/^## Contract$/m)[1]?.split(/^## /m)[0] ?? '';
  t.ok(contract, 'a Contract section');
  t.match(contract, /empty env list/, 'false: the provider applies an empty env');
  t.match(contract, /restores nothing/);
  t.match(contract, /05-migrate --rollback/, 'the rollback restores from the backup');
});

t.test('US4: a literal REDIS_PASSWORD fails the plan before anything is applied', async (t) => {
  const env = resource(migration, 'kubernetes_env', 'beersystem_redis');
  const data = migration.data.kubernetes_resource?.deployment;
  t.ok(data, 'data "kubernetes_resource" "deployment" reads the Deployment');
  t.equal(data?.kind, 'Deployment');
  t.equal(resolveValue(migration, block(data as HclBody, 'metadata').name), 'beersystem');
  const lifecycle = block(env, 'lifecycle');
  const precondition = block(lifecycle, 'precondition');
  t.equal(precondition.condition, `\${!local.password_is_literal}`);
  t.match(
    String(migration.locals.password_is_literal),
    /data\.kubernetes_resource\.deployment\.object/,
  );
  t.match(
    String(precondition.error_message),
    /literal value: the API refuses an env var with both value and valueFrom/,
  );
});

t.test(
  'destroy safety: the namespace and the Secret copies cannot be destroyed; the password can be replaced',
  async (t) => {
    for (const [type, name] of [
      ['kubernetes_namespace_v1', 'redis'],
      ['kubernetes_secret_v1', 'credentials'],
    ] as const) {
      const lifecycle = block(resource(redisShared, type, name), 'lifecycle');
      t.equal(lifecycle.prevent_destroy, true, `${type}.${name} has prevent_destroy`);
    }
    // rotate-password plans -replace of it, which prevent_destroy would refuse.
    t.notOk(
      resource(redisShared, 'random_password', 'redis').lifecycle,
      'random_password.redis can be replaced',
    );
    const readme = await readFile(join(REDIS_SHARED_DIR, 'README.md'), 'utf8');
    t.match(readme, /^## Teardown$/m, 'the README says how to tear it down on purpose');
  },
);

t.test('chart source: the OCI registry, which keeps every version', async (t) => {
  t.equal(defaults.chart_repository, 'oci://registry-1.docker.io/bitnamicharts');
  const release = resource(redisShared, 'helm_release', 'redis_shared');
  t.equal(release.repository, `\${var.chart_repository}`);
  t.equal(release.chart, 'redis');
  const readme = await readFile(join(REDIS_SHARED_DIR, 'README.md'), 'utf8');
  t.match(readme, /oci:\/\/registry-1\.docker\.io\/bitnamicharts/);
});

t.test('root module: the variable names and defaults the runbooks and sandbox use', async (t) => {
  const rdefaults = variableDefaults(root);
  t.same(Object.keys(root.variables).sort(), [
    'beersystem_container',
    'beersystem_deployment',
    'beersystem_namespace',
    'chart_version',
    'enable_beersystem_migration',
    'exporter_image_repository',
    'kube_context',
    'kubeconfig_path',
    'lb_ip',
    'metallb_pool',
    'metrics_interval',
    'monitoring_namespace',
    'private_cidr',
    'redis_image_repository',
    'redis_namespace',
    'redis_secret_key',
    'redis_secret_name',
    'release_name',
    'replica_count',
    'replica_namespaces',
    'runbook_base_url',
    'storage_class',
    'storage_size',
  ]);
  t.match(rdefaults, {
    redis_namespace: 'redis',
    release_name: 'redis-shared',
    lb_ip: '192.168.4.203',
    metallb_pool: 'eero-pool',
    private_cidr: '192.168.4.0/24',
    replica_namespaces: ['beersystem'],
    replica_count: 1,
    storage_class: 'local-path',
    storage_size: '10Gi',
    monitoring_namespace: 'monitoring',
    metrics_interval: '15s',
    enable_beersystem_migration: false,
    beersystem_namespace: 'beersystem',
    beersystem_deployment: 'beersystem',
    beersystem_container: 'beersystem',
    kube_context: 'chocolandiadc-mvp',
  });
  // Every root default equals the module default it feeds, so the two cannot disagree.
  const call = root.modules.redis_shared as HclBody;
  for (const [input, expr] of Object.entries(call)) {
    if (input === 'source') continue;
    t.same(resolveValue(root, expr), defaults[input], `redis_shared.${input}`);
  }
  const mdefaults = variableDefaults(migration);
  for (const [input, rootVar] of [
    ['namespace', 'beersystem_namespace'],
    ['deployment_name', 'beersystem_deployment'],
    ['container_name', 'beersystem_container'],
  ] as const) {
    t.equal(rdefaults[rootVar], mdefaults[input], `beersystem_migration.${input}`);
  }
});

t.test('root module: the migration is off by default and waits for redis-shared', async (t) => {
  const call = root.modules.beersystem_migration as HclBody;
  t.equal(call.count, `\${var.enable_beersystem_migration ? 1 : 0}`);
  t.same(call.depends_on, [`\${module.redis_shared}`]);
  t.equal(call.redis_host, `\${module.redis_shared.master_service_dns}`);
  t.equal(call.secret_name, `\${module.redis_shared.secret_name}`);
  const dns = resolveValue(
    redisShared,
    String(redisShared.outputs.master_service_dns?.value).replace(
      /\$\{var\.(\w+)\}/g,
      (_, name: string) => String(defaults[name]),
    ),
  );
  t.equal(dns, 'redis-shared-master.redis.svc.cluster.local');
});

t.test('root module: providers read the kubeconfig path and context variables', async (t) => {
  const k8s = root.providers.kubernetes as HclBody;
  t.equal(k8s.config_path, `\${pathexpand(var.kubeconfig_path)}`);
  t.equal(k8s.config_context, `\${var.kube_context}`);
  const helm = block(root.providers.helm as HclBody, 'kubernetes');
  t.equal(helm.config_context, `\${var.kube_context}`);
});

t.test('terraform.tfvars.example names only root variables, each at its default', async (t) => {
  const path = join(ROOT_MODULE_DIR, 'terraform.tfvars.example');
  const { parse } = await import('@cdktf/hcl2json');
  const example = (await parse('terraform.tfvars.example', await readFile(path, 'utf8'))) as Record<
    string,
    unknown
  >;
  const rdefaults = variableDefaults(root);
  for (const [name, value] of Object.entries(example)) {
    t.ok(name in root.variables, `${name} is a root variable`);
    t.same(value, rdefaults[name], `${name} shows the default`);
  }
  // The runbooks pass the pinned cluster and every value their checks read as -var: the
  // example leaves those out, so a copied file cannot appear to set them.
  const passed = [
    'kube_context',
    'kubeconfig_path',
    ...Object.keys(tofuVars(loadConfig({ envFile: '/dev/null', env: {} }), { migration: false })),
  ];
  t.same(
    Object.keys(example).filter((name) => passed.includes(name)),
    [],
    'no variable the runbooks pass',
  );
  t.same(
    [...Object.keys(example), ...passed].sort(),
    Object.keys(root.variables).sort(),
    'every other variable shown',
  );
});

t.test('outputs name the service DNS, LB address and Secret (T006)', async (t) => {
  for (const name of [
    'master_service_dns',
    'replicas_service_dns',
    'lb_ip',
    'secret_name',
    'secret_namespaces',
  ]) {
    t.ok(redisShared.outputs[name], `module output ${name}`);
  }
  for (const name of ['redis_master_service_dns', 'redis_lb_ip', 'redis_secret_name']) {
    t.ok(root.outputs[name], `root output ${name}`);
  }
});

/** What `tofu validate` would check without providers: every reference has a declaration. */
async function danglingReferences(mod: HclModule, children: Record<string, HclModule> = {}) {
  const text = (await Promise.all(mod.files.map((f) => readFile(join(mod.dir, f), 'utf8')))).join(
    '\n',
  );
  const problems: string[] = [];
  const used = (re: RegExp) => new Set([...text.matchAll(re)].map((m) => m[1] as string));
  const usedVars = used(/\bvar\.([A-Za-z_][\w-]*)/g);
  const usedLocals = used(/\blocal\.([A-Za-z_][\w-]*)/g);
  for (const v of usedVars) if (!(v in mod.variables)) problems.push(`var.${v} is not declared`);
  for (const v of Object.keys(mod.variables))
    if (!usedVars.has(v)) problems.push(`variable ${v} is unused`);
  for (const l of usedLocals) if (!(l in mod.locals)) problems.push(`local.${l} is not defined`);
  for (const l of Object.keys(mod.locals))
    if (!usedLocals.has(l)) problems.push(`local ${l} is unused`);
  for (const m of text.matchAll(
    /(?<!data\.)\b((?:kubernetes|helm|random)_[a-z0-9_]+)\.([a-z0-9_]+)\b/g,
  )) {
    const [, type, name] = m as unknown as [string, string, string];
    if (!mod.resources[type]?.[name]) problems.push(`${type}.${name} is not declared`);
  }
  for (const m of text.matchAll(/\bdata\.([a-z0-9_]+)\.([a-z0-9_]+)\b/g)) {
    const [, type, name] = m as unknown as [string, string, string];
    if (!mod.data[type]?.[name]) problems.push(`data.${type}.${name} is not declared`);
  }
  for (const m of text.matchAll(/\$\{path\.module\}\/([^"]+)"/g)) {
    await access(join(mod.dir, m[1] as string)).catch(() =>
      problems.push(`${m[1]} (read by file/templatefile) does not exist`),
    );
  }
  for (const [callName, call] of Object.entries(mod.modules)) {
    const child = children[callName];
    if (!child) {
      problems.push(`module ${callName} has no loaded source`);
      continue;
    }
    const meta = new Set(['source', 'count', 'depends_on', 'for_each', 'providers']);
    for (const input of Object.keys(call)) {
      if (!meta.has(input) && !(input in child.variables)) {
        problems.push(`module ${callName}: input ${input} is not a variable of the module`);
      }
    }
    for (const [name, variable] of Object.entries(child.variables)) {
      if (!('default' in variable) && !(name in call)) {
        problems.push(`module ${callName}: required variable ${name} is not set`);
      }
    }
    for (const m of text.matchAll(
      new RegExp(`module\\.${callName}(?:\\[\\d+\\])?\\.(\\w+)`, 'g'),
    )) {
      if (!(m[1] && m[1] in child.outputs)) {
        problems.push(`module.${callName}.${m[1]} is not an output of the module`);
      }
    }
  }
  return problems;
}

t.test('every var., local., resource, file and module output reference resolves', async (t) => {
  t.same(await danglingReferences(redisShared), [], 'modules/redis-shared');
  t.same(await danglingReferences(migration), [], 'modules/beersystem-migration');
  t.same(
    await danglingReferences(root, { redis_shared: redisShared, beersystem_migration: migration }),
    [],
    'environments/chocolandiadc-mvp',
  );
});

t.test('the reference check reports what validate would reject', async (t) => {
  const broken: HclModule = {
    ...migration,
    variables: { ...migration.variables, extra: {} },
    locals: { ...migration.locals, orphan: 'x' },
  };
  t.same((await danglingReferences(broken)).sort(), [
    'local orphan is unused',
    'variable extra is unused',
  ]);
  const call = { ...root, modules: { redis_shared: { source: 'x', bogus: 1 } } };
  t.match(await danglingReferences(call, { redis_shared: redisShared }), [
    /input bogus is not a variable/,
  ]);
});
