// The resources the modules declare, turned into what applying them writes: one entry per
// resource instance, as `tofu plan` lists them. Every object is built from its resource block,
// evaluated like OpenTofu evaluates it (hcl-expr.ts: variables, locals, other resources'
// attributes, templatefile/yamldecode/merge…), then mapped from the provider's schema
// (snake_case blocks) to the Kubernetes object the provider sends, so a change to a module is
// what the sandbox applies. The helm_release stands for the objects the Bitnami chart renders
// (chart.ts) from the values the release block passes.
import { createHash } from 'node:crypto';
import { parse as parseYaml } from 'yaml';
import { type ChartRelease, type ChartValues, chartObjects } from './chart.ts';
import { evaluate, moduleInputs, type RootConfig } from './config.ts';
import { evalHcl, HclEvalError, type Scope } from './hcl-expr.ts';
import type { Manifest } from './kube-client.ts';

// biome-ignore lint/suspicious/noExplicitAny: hcl2json blocks and evaluated attributes
type Hcl = Record<string, any>;

/** The resource types the stand-in can plan and apply, each as its provider does. */
export const SUPPORTED_TYPES = [
  'kubernetes_namespace_v1',
  'kubernetes_secret_v1',
  'kubernetes_config_map_v1',
  'kubernetes_service_v1',
  'kubernetes_manifest',
  'kubernetes_env',
  'helm_release',
  'random_password',
] as const;

/** Changes the env of one container of a Deployment (kubernetes_env). */
export interface EnvPatch {
  namespace: string;
  deployment: string;
  container: string;
  // biome-ignore lint/suspicious/noExplicitAny: env entries as the API stores them
  env: any[];
}

/** helm_release: the chart release and the install/upgrade settings the block gives. */
export interface ReleaseSettings extends ChartRelease {
  /** `timeout`, in seconds (the provider's default 300). */
  timeoutSeconds: number;
  /** `wait` (default true): every workload the chart renders is ready before it completes. */
  wait: boolean;
  /** `atomic` (default false): a failed install is uninstalled, a failed upgrade rolled back. */
  atomic: boolean;
}

/** kubernetes_service_v1 of type LoadBalancer: what its create waits for. */
export interface LoadBalancerWait {
  /** `timeouts { create }`, in milliseconds (the provider's default 10 minutes). */
  timeoutMs: number;
}

export interface DesiredResource {
  address: string;
  type: string;
  name: string;
  index?: string;
  moduleAddress: string;
  /** The objects the resource writes, as the provider sends them. */
  objects: Manifest[];
  envPatch?: EnvPatch;
  release?: ReleaseSettings;
  loadBalancerWait?: LoadBalancerWait;
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

const META_ARGUMENTS = ['depends_on', 'lifecycle', 'for_each', 'count', 'provider', 'provisioner'];

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
    const unknown = declaredResources(call.source.blocks).filter(
      (r) => !(SUPPORTED_TYPES as readonly string[]).includes(r.split('.')[0] as string),
    );
    if (unknown.length > 0) {
      throw new Error(
        `module.${callName} declares ${unknown.join(', ')}, whose type the sandbox's tofu does not create: extend sandbox/tofu/resources.ts`,
      );
    }
    const count =
      call.args.count === undefined ? 1 : Number(evaluate(call.args.count, { vars: root.vars }));
    if (count === 0) continue;
    const inputs = moduleInputs(call, { vars: root.vars, modules: moduleOutputs });
    inputsByCall[callName] = inputs;
    const moduleAddress =
      call.args.count === undefined ? `module.${callName}` : `module.${callName}[0]`;
    const evaluated = evaluateModule(call.source.dir, call.source.blocks, inputs);
    for (const instance of evaluated.instances) {
      resources.push(build(moduleAddress, instance));
    }
    moduleOutputs[callName] = evaluated.outputs;
  }
  const outputs: Record<string, unknown> = {};
  for (const [name, [block]] of Object.entries(
    (root.blocks.output ?? {}) as Record<string, Array<{ value: unknown }>>,
  )) {
    outputs[name] = evaluate(block?.value, { vars: root.vars, modules: moduleOutputs });
  }
  return { resources, outputs, inputs: inputsByCall };
}

export function declaredResources(blocks: Hcl): string[] {
  return Object.entries((blocks.resource ?? {}) as Record<string, object>).flatMap(
    ([type, byName]) => Object.keys(byName).map((name) => `${type}.${name}`),
  );
}

interface Instance {
  type: string;
  name: string;
  index?: string;
  attrs: Hcl;
}

/** Locals evaluated in as many passes as their references need; ones that fail stay unset. */
export function evalLocals(blocks: Hcl, scope: Scope): Record<string, unknown> {
  const raw: Hcl = Object.assign({}, ...((blocks.locals ?? []) as Hcl[]));
  const locals: Record<string, unknown> = {};
  for (let pass = 0; pass < Object.keys(raw).length + 1; pass++) {
    for (const [name, value] of Object.entries(raw)) {
      if (name in locals) continue;
      try {
        locals[name] = evalHcl(value, { ...scope, local: locals });
      } catch (err) {
        // A local that needs another one not known yet, or data the plan reads from the cluster.
        if (!(err instanceof HclEvalError)) throw err;
      }
    }
  }
  return locals;
}

/**
 * Every resource instance of one module, evaluated in dependency order: a block that refers to
 * a resource not evaluated yet fails with an unknown reference and is tried again after the
 * others, as OpenTofu's graph walk orders them.
 */
function evaluateModule(
  dir: string,
  blocks: Hcl,
  inputs: Record<string, unknown>,
): { instances: Instance[]; outputs: Record<string, unknown> } {
  const base: Scope = { var: inputs, path: { module: dir } };
  const scope: Scope = { ...base, local: evalLocals(blocks, base) };
  const pending = Object.entries((blocks.resource ?? {}) as Record<string, Record<string, Hcl[]>>)
    .flatMap(([type, byName]) =>
      Object.entries(byName).map(([name, [block]]) => ({ type, name, block: block ?? {} })),
    )
    .sort((a, b) => `${a.type}.${a.name}`.localeCompare(`${b.type}.${b.name}`));
  const instances: Instance[] = [];
  let lastError: Error | undefined;
  while (pending.length > 0) {
    const before = pending.length;
    for (let i = 0; i < pending.length; i++) {
      const { type, name, block } = pending[i] as (typeof pending)[number];
      try {
        const made = evaluateResource(type, name, block, scope);
        scope[type] ??= {};
        const byType = scope[type] as Record<string, unknown>;
        byType[name] =
          block.for_each === undefined
            ? made[0]?.attrs
            : Object.fromEntries(made.map((m) => [m.index, m.attrs]));
        instances.push(...made);
        pending.splice(i--, 1);
      } catch (err) {
        if (!(err instanceof HclEvalError)) throw err;
        lastError = new Error(`${type}.${name}: ${err.message}`);
      }
    }
    if (pending.length === before) throw lastError;
  }
  const outputs: Record<string, unknown> = {};
  for (const [name, [block]] of Object.entries(
    (blocks.output ?? {}) as Record<string, Array<{ value: unknown }>>,
  )) {
    outputs[name] = evalHcl(block?.value, scope);
  }
  // Plan order: the order the blocks are written in the module's files does not matter to
  // OpenTofu; dependencies first, then by address, keeps the apply order valid.
  return { instances: orderByDependencies(instances, blocks), outputs };
}

function evaluateResource(type: string, name: string, block: Hcl, scope: Scope): Instance[] {
  const attrsOf = (inner: Scope): Hcl => {
    const body = Object.fromEntries(
      Object.entries(block).filter(([k]) => !META_ARGUMENTS.includes(k)),
    );
    const attrs = evalHcl(body, inner) as Hcl;
    // Attributes the provider computes, as references see them at plan time.
    if (type === 'random_password') attrs.result = PASSWORD_MARKER;
    return attrs;
  };
  if (block.for_each === undefined) return [{ type, name, attrs: attrsOf(scope) }];
  const each = evalHcl(block.for_each, scope);
  const entries: Array<[string, unknown]> = Array.isArray(each)
    ? each.map((k) => [String(k), k])
    : Object.entries((each ?? {}) as Record<string, unknown>);
  return entries
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([key, value]) => ({
      type,
      name,
      index: key,
      attrs: attrsOf({ ...scope, each: { key, value } }),
    }));
}

/** Instances whose resource another one names in `depends_on` or refers to come first. */
function orderByDependencies(instances: Instance[], blocks: Hcl): Instance[] {
  const resources = (blocks.resource ?? {}) as Record<string, Record<string, Hcl[]>>;
  const deps = (type: string, name: string): string[] => {
    const text = JSON.stringify(resources[type]?.[name]?.[0] ?? {});
    return declaredResources(blocks).filter(
      (r) => r !== `${type}.${name}` && new RegExp(`\\b${r.replace('.', '\\.')}\\b`).test(text),
    );
  };
  const placed: Instance[] = [];
  const done = new Set<string>();
  const visit = (key: string, seen: Set<string>) => {
    if (done.has(key) || seen.has(key)) return;
    seen.add(key);
    const [type = '', name = ''] = key.split('.');
    for (const dep of deps(type, name)) visit(dep, seen);
    done.add(key);
    placed.push(...instances.filter((i) => `${i.type}.${i.name}` === key));
  };
  for (const key of [...new Set(instances.map((i) => `${i.type}.${i.name}`))]) {
    visit(key, new Set());
  }
  return placed;
}

function build(moduleAddress: string, instance: Instance): DesiredResource {
  const { type, name, index, attrs } = instance;
  const make = BUILDERS[type as (typeof SUPPORTED_TYPES)[number]];
  return resource(moduleAddress, type, name, index, make(attrs));
}

type Built = Partial<DesiredResource> & { objects: Manifest[] };

const BUILDERS: Record<(typeof SUPPORTED_TYPES)[number], (a: Hcl) => Built> = {
  kubernetes_namespace_v1: (a) => ({
    objects: [{ apiVersion: 'v1', kind: 'Namespace', metadata: metadataOf(a, false) }],
  }),
  kubernetes_secret_v1: (a) => ({
    objects: [
      compact({
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: metadataOf(a, true),
        // The provider takes `data` as plain text and sends it base64-encoded; the password
        // is encoded when apply puts it in place of the marker.
        data: mapValues(a.data, (v) => (v === PASSWORD_MARKER ? v : base64(String(v)))),
        binaryData: a.binary_data,
        type: a.type ?? 'Opaque',
        immutable: a.immutable,
      }),
    ],
  }),
  kubernetes_config_map_v1: (a) => ({
    objects: [
      compact({
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: metadataOf(a, true),
        data: a.data,
        binaryData: a.binary_data,
        immutable: a.immutable,
      }),
    ],
  }),
  kubernetes_service_v1: (a) => {
    const spec = serviceSpec(a.spec?.[0] ?? {});
    // wait_for_load_balancer defaults to true and the create timeout to 10 minutes
    // (terraform-provider-kubernetes v2.38.0, kubernetes/resource_kubernetes_service_v1.go).
    const waits = spec.type === 'LoadBalancer' && a.wait_for_load_balancer !== false;
    return {
      objects: [{ apiVersion: 'v1', kind: 'Service', metadata: metadataOf(a, true), spec }],
      ...(waits
        ? { loadBalancerWait: { timeoutMs: durationMs(a.timeouts?.[0]?.create, 600_000) } }
        : {}),
    };
  },
  kubernetes_manifest: (a) => ({ objects: [a.manifest as Manifest] }),
  kubernetes_env: (a) => {
    const meta = a.metadata?.[0] ?? {};
    if (a.api_version !== 'apps/v1' || a.kind !== 'Deployment') {
      throw new Error(
        `kubernetes_env: the sandbox's tofu patches apps/v1 Deployments only, not ${a.api_version} ${a.kind}`,
      );
    }
    return {
      objects: [],
      envPatch: {
        namespace: String(meta.namespace ?? 'default'),
        deployment: String(meta.name),
        container: String(a.container),
        env: ((a.env ?? []) as Hcl[]).map(envVar),
      },
    };
  },
  helm_release: (a) => {
    if (a.chart !== 'redis') {
      throw new Error(
        `helm_release: the sandbox renders the Bitnami redis chart only, not ${a.chart}`,
      );
    }
    if (a.set || a.set_sensitive || a.set_list) {
      throw new Error('helm_release: the sandbox reads values only, not set blocks');
    }
    // Values files merge in order, later keys over earlier ones (helm's coalesce).
    const values = ((a.values ?? []) as string[]).reduce<ChartValues>(
      (merged, text) => deepMerge(merged, (parseYaml(text) ?? {}) as ChartValues),
      {},
    );
    // Defaults as terraform-provider-helm 2.17 declares them (helm/resource_release.go):
    // timeout 300, wait true, atomic false.
    const release: ReleaseSettings = {
      name: String(a.name),
      namespace: String(a.namespace ?? 'default'),
      chartVersion: String(a.version),
      values,
      timeoutSeconds: Number(a.timeout ?? 300),
      wait: a.wait ?? true,
      atomic: a.atomic ?? false,
    };
    return { objects: chartObjects(release), release };
  },
  random_password: () => ({ objects: [], password: true }),
};

/** `metadata { … }` as ObjectMeta; a namespaced object without a namespace goes to default. */
function metadataOf(a: Hcl, namespaced: boolean): Manifest {
  const m = (a.metadata?.[0] ?? {}) as Hcl;
  return compact({
    name: m.name,
    generateName: m.generate_name,
    namespace: namespaced ? (m.namespace ?? 'default') : undefined,
    labels: m.labels,
    annotations: m.annotations,
  });
}

const SERVICE_FIELDS: Record<string, string> = {
  cluster_ip: 'clusterIP',
  cluster_ips: 'clusterIPs',
  external_ips: 'externalIPs',
  load_balancer_ip: 'loadBalancerIP',
};

/** expandServiceSpec of the provider: snake_case attributes, `port` blocks → `ports`. */
function serviceSpec(spec: Hcl): Manifest {
  const out: Manifest = {};
  for (const [key, value] of Object.entries(spec)) {
    if (value === null || value === undefined) continue;
    if (key === 'port') {
      out.ports = (value as Hcl[]).map((p) =>
        compact({
          name: p.name,
          port: p.port,
          targetPort: intOrString(p.target_port),
          protocol: p.protocol ?? 'TCP',
          nodePort: p.node_port,
          appProtocol: p.app_protocol,
        }),
      );
    } else out[SERVICE_FIELDS[key] ?? camel(key)] = value;
  }
  return out;
}

// biome-ignore lint/suspicious/noExplicitAny: an env entry as the API stores it
function envVar(e: Hcl): any {
  if (e.value_from === undefined) return { name: e.name, value: e.value ?? '' };
  const from = (e.value_from as Hcl[])[0] ?? {};
  const ref = (block: Hcl[] | undefined) => (block?.[0] ? compact(camelKeys(block[0])) : undefined);
  return {
    name: e.name,
    valueFrom: compact({
      secretKeyRef: ref(from.secret_key_ref),
      configMapKeyRef: ref(from.config_map_key_ref),
      fieldRef: ref(from.field_ref),
      resourceFieldRef: ref(from.resource_field_ref),
    }),
  };
}

function intOrString(v: unknown): unknown {
  return typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : v;
}

const camel = (s: string) => s.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());

function camelKeys(o: Hcl): Hcl {
  return Object.fromEntries(Object.entries(o).map(([k, v]) => [camel(k), v]));
}

/** Drops absent attributes and empty maps, as the provider leaves them out of the object. */
function compact<T extends Record<string, unknown>>(o: T): T {
  return Object.fromEntries(
    Object.entries(o).filter(
      ([, v]) =>
        v !== undefined &&
        v !== null &&
        !(typeof v === 'object' && !Array.isArray(v) && Object.keys(v as object).length === 0),
    ),
  ) as T;
}

function mapValues(
  o: Record<string, unknown> | undefined,
  f: (v: unknown) => unknown,
): Record<string, unknown> | undefined {
  return o && Object.fromEntries(Object.entries(o).map(([k, v]) => [k, f(v)]));
}

const base64 = (s: string) => Buffer.from(s).toString('base64');

function deepMerge(a: ChartValues, b: ChartValues): ChartValues {
  const out: ChartValues = { ...a };
  for (const [k, v] of Object.entries(b)) {
    const cur = out[k];
    out[k] =
      cur &&
      typeof cur === 'object' &&
      !Array.isArray(cur) &&
      v &&
      typeof v === 'object' &&
      !Array.isArray(v)
        ? deepMerge(cur, v)
        : v;
  }
  return out;
}

/** A Go duration as the provider's timeouts take it: `30s`, `10m`, `1h30m`. */
export function durationMs(text: unknown, fallback: number): number {
  if (typeof text !== 'string' || !text) return fallback;
  const units: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  let total = 0;
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h)/gy;
  let consumed = 0;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    total += Number(m[1]) * (units[m[2] as string] as number);
    consumed = re.lastIndex;
  }
  if (consumed !== text.length)
    throw new Error(`timeouts: "${text}" is not a duration such as 10m`);
  return total;
}

function resource(
  moduleAddress: string,
  type: string,
  name: string,
  index: string | undefined,
  built: Built,
): DesiredResource {
  const address = `${moduleAddress}.${type}.${name}${index === undefined ? '' : `["${index}"]`}`;
  const hashed = {
    objects: built.objects,
    envPatch: built.envPatch,
    release: built.release && { ...built.release, values: undefined },
  };
  return {
    address,
    type,
    name,
    ...(index !== undefined ? { index } : {}),
    moduleAddress,
    digest: createHash('sha256').update(JSON.stringify(hashed)).digest('hex'),
    after: summary(built),
    ...built,
  };
}

/** What the plan shows of a resource: its objects' identities and, for env, the variables. */
function summary(built: Built): Record<string, unknown> {
  if (built.password) return { length: 32, special: false, result: '(sensitive value)' };
  if (built.envPatch) {
    return {
      metadata: [{ name: built.envPatch.deployment, namespace: built.envPatch.namespace }],
      container: built.envPatch.container,
      env: built.envPatch.env,
    };
  }
  return {
    objects: built.objects.map((o) => ({
      apiVersion: o.apiVersion,
      kind: o.kind,
      namespace: o.metadata?.namespace,
      name: o.metadata?.name,
      ...(o.kind === 'Secret' ? { data: '(sensitive value)' } : {}),
    })),
  };
}
