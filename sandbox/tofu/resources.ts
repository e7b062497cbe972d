// The resources the modules declare, turned into the Kubernetes objects applying them gives:
// one entry per resource address, as `tofu plan` lists them. The helm_release stands for the
// objects the Bitnami chart renders (chart.ts) from the module's values template.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { type ChartRelease, chartObjects } from './chart.ts';
import { evaluate, moduleInputs, moduleLocals, type RootConfig } from './config.ts';
import type { Manifest } from './kube-client.ts';
import { renderTemplate } from './template.ts';

/** Every resource type.name the stand-in knows how to create, per module directory name. */
export const SUPPORTED_RESOURCES: Record<string, string[]> = {
  'redis-shared': [
    'kubernetes_namespace_v1.redis',
    'random_password.redis',
    'kubernetes_secret_v1.credentials',
    'helm_release.redis_shared',
    'kubernetes_service_v1.external',
    'kubernetes_manifest.prometheus_rule',
    'kubernetes_config_map_v1.dashboard',
  ],
  'beersystem-migration': ['kubernetes_env.beersystem_redis'],
};

/** Changes the env of one container of a Deployment (kubernetes_env). */
export interface EnvPatch {
  namespace: string;
  deployment: string;
  container: string;
  // biome-ignore lint/suspicious/noExplicitAny: env entries as the API stores them
  env: any[];
}

export interface DesiredResource {
  address: string;
  type: string;
  name: string;
  index?: string;
  moduleAddress: string;
  objects: Manifest[];
  envPatch?: EnvPatch;
  /** helm_release: the release the engine records in Helm's release Secret. */
  release?: ChartRelease;
  /** Holds the generated password (random_password). */
  password?: boolean;
  /** Changes when what this resource would write changes. */
  digest: string;
  /** A summary without secret values, for the plan and `show -json`. */
  after: Record<string, unknown>;
}

export interface DesiredState {
  resources: DesiredResource[];
  outputs: Record<string, unknown>;
  /** Input values of every module instance, by call name. */
  inputs: Record<string, Record<string, unknown>>;
}

/** Stands for the password in planned Secrets; apply puts the generated one in its place. */
export const PASSWORD_MARKER = 'sandbox-tofu:random_password.redis.result';

/** The module directory name of a call (`../../modules/redis-shared` → `redis-shared`). */
function moduleKind(source: string): string {
  return source.replace(/\/+$/, '').split('/').pop() ?? source;
}

export function desiredState(root: RootConfig): DesiredState {
  const resources: DesiredResource[] = [];
  const moduleOutputs: Record<string, Record<string, unknown> | undefined> = {};
  const inputsByCall: Record<string, Record<string, unknown>> = {};
  // A call that reads another module's outputs comes after it.
  const calls = Object.entries(root.calls).sort(
    ([, a], [, b]) =>
      Number(JSON.stringify(a.args).includes('module.')) -
      Number(JSON.stringify(b.args).includes('module.')),
  );
  for (const [callName, call] of calls) {
    const kind = moduleKind(call.args.source);
    const declared = declaredResources(call.source.blocks);
    const unknown = declared.filter((r) => !(SUPPORTED_RESOURCES[kind] ?? []).includes(r));
    if (unknown.length > 0) {
      throw new Error(
        `module.${callName} declares ${unknown.join(', ')}, which the sandbox's tofu does not create: extend sandbox/tofu/resources.ts`,
      );
    }
    const count =
      call.args.count === undefined ? 1 : Number(evaluate(call.args.count, { vars: root.vars }));
    if (count === 0) continue;
    const inputs = moduleInputs(call, { vars: root.vars, modules: moduleOutputs });
    inputsByCall[callName] = inputs;
    const moduleAddress =
      call.args.count === undefined ? `module.${callName}` : `module.${callName}[0]`;
    if (kind === 'redis-shared') {
      resources.push(...redisShared(moduleAddress, call.source.dir, call.source.blocks, inputs));
    } else if (kind === 'beersystem-migration') {
      resources.push(beersystemMigration(moduleAddress, inputs));
    }
    moduleOutputs[callName] = moduleOutputValues(call.source.blocks, call.source.dir, inputs);
  }
  const outputs: Record<string, unknown> = {};
  for (const [name, [block]] of Object.entries(
    (root.blocks.output ?? {}) as Record<string, Array<{ value: unknown }>>,
  )) {
    outputs[name] = evaluate(block?.value, { vars: root.vars, modules: moduleOutputs });
  }
  return { resources, outputs, inputs: inputsByCall };
}

// biome-ignore lint/suspicious/noExplicitAny: hcl2json blocks
export function declaredResources(blocks: Record<string, any>): string[] {
  return Object.entries((blocks.resource ?? {}) as Record<string, object>).flatMap(
    ([type, byName]) => Object.keys(byName).map((name) => `${type}.${name}`),
  );
}

function redisShared(
  moduleAddress: string,
  dir: string,
  // biome-ignore lint/suspicious/noExplicitAny: hcl2json blocks
  blocks: Record<string, any>,
  inputs: Record<string, unknown>,
): DesiredResource[] {
  const locals = moduleLocals({ dir, blocks }, inputs);
  const namespace = String(inputs.namespace);
  const release = String(inputs.release_name);
  const common = locals.common_labels as Record<string, string>;
  const secretName = String(locals.credentials_secret_name);
  const secretKey = String(locals.credentials_secret_key);
  const secretNamespaces = [
    ...new Set([namespace, ...((inputs.replica_namespaces as string[]) ?? [])]),
  ].sort();
  const out: DesiredResource[] = [];
  const add = (
    type: string,
    name: string,
    objects: Manifest[],
    index?: string,
    extra: Partial<DesiredResource> = {},
  ) => out.push(resource(moduleAddress, type, name, objects, index, extra));

  add('kubernetes_namespace_v1', 'redis', [
    {
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: { name: namespace, labels: { ...common, name: namespace, type: 'shared-service' } },
    },
  ]);
  add('random_password', 'redis', [], undefined, { password: true });
  for (const ns of secretNamespaces) {
    add(
      'kubernetes_secret_v1',
      'credentials',
      [
        {
          apiVersion: 'v1',
          kind: 'Secret',
          type: 'Opaque',
          metadata: { name: secretName, namespace: ns, labels: common },
          data: { [secretKey]: PASSWORD_MARKER },
        },
      ],
      ns,
    );
  }
  const valuesVars = locals.values_template_vars as Record<string, unknown>;
  const values = parseYaml(
    renderTemplate(readFileSync(join(dir, 'values.yaml.tftpl'), 'utf8'), valuesVars),
  );
  const chartRelease = {
    name: release,
    namespace,
    chartVersion: String(inputs.chart_version),
    values,
  };
  add('helm_release', 'redis_shared', chartObjects(chartRelease), undefined, {
    release: chartRelease,
  });
  const lbIP = String(inputs.lb_ip);
  add('kubernetes_service_v1', 'external', [
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: {
        name: `${release}-external`,
        namespace,
        labels: { ...common, 'app.kubernetes.io/component': 'external' },
        // As services.tf: the metallb.io annotations only, no spec.loadBalancerIP.
        annotations: {
          'metallb.io/address-pool': String(inputs.metallb_pool),
          'metallb.io/loadBalancerIPs': lbIP,
        },
      },
      spec: {
        type: 'LoadBalancer',
        loadBalancerSourceRanges: [String(inputs.private_cidr)],
        externalTrafficPolicy: 'Local',
        allocateLoadBalancerNodePorts: false,
        selector: locals.master_pod_selector,
        ports: [{ name: 'tcp-redis', port: 6379, targetPort: 'redis', protocol: 'TCP' }],
      },
    },
  ]);
  const alertsVars = locals.alerts_template_vars as Record<string, unknown>;
  add('kubernetes_manifest', 'prometheus_rule', [
    {
      apiVersion: 'monitoring.coreos.com/v1',
      kind: 'PrometheusRule',
      metadata: {
        name: release,
        namespace: String(inputs.monitoring_namespace),
        labels: { ...common, release: String(inputs.prometheus_release_label) },
      },
      spec: parseYaml(renderTemplate(readFileSync(join(dir, 'alerts.yaml'), 'utf8'), alertsVars)),
    },
  ]);
  add('kubernetes_config_map_v1', 'dashboard', [
    {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: {
        name: `${release}-dashboard`,
        namespace: String(inputs.monitoring_namespace),
        labels: { ...common, grafana_dashboard: '1' },
      },
      data: {
        'redis-shared.json': readFileSync(join(dir, 'dashboards', 'redis-shared.json'), 'utf8'),
      },
    },
  ]);
  return out;
}

function beersystemMigration(
  moduleAddress: string,
  inputs: Record<string, unknown>,
): DesiredResource {
  const envPatch: EnvPatch = {
    namespace: String(inputs.namespace),
    deployment: String(inputs.deployment_name),
    container: String(inputs.container_name),
    env: [
      { name: 'REDIS_HOST', value: String(inputs.redis_host) },
      { name: 'REDIS_PORT', value: String(inputs.redis_port) },
      {
        name: 'REDIS_PASSWORD',
        valueFrom: {
          secretKeyRef: { name: String(inputs.secret_name), key: String(inputs.secret_key) },
        },
      },
    ],
  };
  return resource(moduleAddress, 'kubernetes_env', 'beersystem_redis', [], undefined, { envPatch });
}

function resource(
  moduleAddress: string,
  type: string,
  name: string,
  objects: Manifest[],
  index: string | undefined,
  extra: Partial<DesiredResource>,
): DesiredResource {
  const address = `${moduleAddress}.${type}.${name}${index === undefined ? '' : `["${index}"]`}`;
  const hashed = { objects, envPatch: extra.envPatch };
  return {
    address,
    type,
    name,
    index,
    moduleAddress,
    objects,
    digest: createHash('sha256').update(JSON.stringify(hashed)).digest('hex'),
    after: summary(objects, extra),
    ...extra,
  };
}

/** What the plan shows of a resource: its objects' identities and, for env, the variables. */
function summary(objects: Manifest[], extra: Partial<DesiredResource>): Record<string, unknown> {
  if (extra.password) return { length: 32, special: false, result: '(sensitive value)' };
  if (extra.envPatch) {
    return {
      metadata: [{ name: extra.envPatch.deployment, namespace: extra.envPatch.namespace }],
      container: extra.envPatch.container,
      env: extra.envPatch.env,
    };
  }
  return {
    objects: objects.map((o) => ({
      apiVersion: o.apiVersion,
      kind: o.kind,
      namespace: o.metadata?.namespace,
      name: o.metadata?.name,
      ...(o.kind === 'Secret' ? { data: '(sensitive value)' } : {}),
    })),
  };
}

function moduleOutputValues(
  // biome-ignore lint/suspicious/noExplicitAny: hcl2json blocks
  blocks: Record<string, any>,
  dir: string,
  inputs: Record<string, unknown>,
): Record<string, unknown> {
  const locals = moduleLocals({ dir, blocks }, inputs);
  const out: Record<string, unknown> = {};
  for (const [name, [block]] of Object.entries(
    (blocks.output ?? {}) as Record<string, Array<{ value: unknown }>>,
  )) {
    try {
      out[name] = evaluate(block?.value, { vars: inputs, locals, pathModule: dir });
    } catch {
      // Outputs of resource attributes are filled in below from what the resources are.
    }
  }
  if (inputs.release_name !== undefined) {
    out.namespace ??= inputs.namespace;
    out.release_name ??= inputs.release_name;
    out.external_service_name ??= `${inputs.release_name}-external`;
    out.secret_namespaces ??= [
      ...new Set([inputs.namespace, ...((inputs.replica_namespaces as string[]) ?? [])]),
    ].sort();
  }
  return out;
}
