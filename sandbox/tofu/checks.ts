// The checks real tofu makes before it changes anything, with the modules' own conditions and
// messages: variable `validation` blocks (root and every called module), resource
// `lifecycle.precondition` blocks (with the `kubernetes_resource` data sources they read) and
// `lifecycle.prevent_destroy`. Summaries and wording follow OpenTofu's diagnostics.
import type { RootConfig } from './config.ts';
import { evalHcl, HclEvalError, type Scope } from './hcl-expr.ts';
import type { KubeClient, Manifest } from './kube-client.ts';
import { type DesiredResource, evalLocals } from './resources.ts';
import type { PlannedChange } from './state.ts';

// biome-ignore lint/suspicious/noExplicitAny: hcl2json blocks
type Hcl = Record<string, any>;

export class TofuDiagnostics extends Error {
  constructor(readonly diagnostics: string[]) {
    super(diagnostics.join('\n\nError: '));
  }
}

interface Validation {
  condition: unknown;
  error_message: unknown;
}

function show(value: unknown): string {
  return JSON.stringify(value);
}

/**
 * Each failing validation of one module's variables (given their values): variable, message.
 * As in OpenTofu, a variable that fails its own validation is unknown to the others' conditions,
 * so a condition that reads it is not evaluated (lb_ip's check against an invalid private_cidr).
 */
export function validationFailures(
  blocks: Hcl,
  vars: Record<string, unknown>,
): Array<{ variable: string; message: string }> {
  const rules = Object.entries((blocks.variable ?? {}) as Record<string, Hcl[]>).flatMap(
    ([name, [decl]]) => ((decl?.validation ?? []) as Validation[]).map((rule) => ({ name, rule })),
  );
  const reads = (rule: Validation) =>
    [...String(rule.condition).matchAll(/\bvar\.(\w+)/g)].map((m) => m[1] as string);
  const judge = (rule: Validation): string | undefined => {
    try {
      if (evalHcl(rule.condition, { var: vars }) === true) return undefined;
    } catch (err) {
      if (!(err instanceof HclEvalError)) throw err;
      return err.message;
    }
    return String(evalHcl(rule.error_message, { var: vars }));
  };
  const invalid = new Set(
    rules
      .filter(({ name, rule }) => reads(rule).every((v) => v === name) && judge(rule) !== undefined)
      .map(({ name }) => name),
  );
  const out: Array<{ variable: string; message: string }> = [];
  for (const { name, rule } of rules) {
    if (reads(rule).some((v) => v !== name && invalid.has(v))) continue;
    const message = judge(rule);
    if (message !== undefined) out.push({ variable: name, message });
  }
  return out;
}

function failedValidations(blocks: Hcl, vars: Record<string, unknown>, where: string): string[] {
  return validationFailures(blocks, vars).map(
    ({ variable, message }) =>
      `Invalid value for variable\n\n  ${where}var.${variable} is ${show(vars[variable])}\n\n${message}`,
  );
}

/**
 * Every variable validation of the root and of each module instance (`inputsByCall`: the
 * instances' input values, as desiredState() computed them), as `tofu validate/plan` runs them.
 */
export function checkVariables(
  root: RootConfig,
  inputsByCall: Record<string, Record<string, unknown>>,
): void {
  const failures = failedValidations(root.blocks, root.vars, '');
  for (const [callName, inputs] of Object.entries(inputsByCall)) {
    const call = root.calls[callName];
    if (call)
      failures.push(...failedValidations(call.source.blocks, inputs, `module.${callName}.`));
  }
  if (failures.length > 0) throw new TofuDiagnostics(failures);
}

/** The `kubernetes_resource` data sources of a module, read from the cluster. */
async function readData(
  blocks: Hcl,
  vars: Record<string, unknown>,
  client: KubeClient,
): Promise<Scope> {
  const data: Record<string, Record<string, unknown>> = {};
  for (const [name, [decl]] of Object.entries(
    (blocks.data?.kubernetes_resource ?? {}) as Record<string, Hcl[]>,
  )) {
    const meta = (evalHcl(decl?.metadata?.[0] ?? {}, { var: vars }) ?? {}) as Hcl;
    const apiVersion = String(evalHcl(decl?.api_version, { var: vars }));
    const kind = String(evalHcl(decl?.kind, { var: vars }));
    const object = await client.get(apiVersion, kind, meta.namespace, meta.name);
    // The provider reports a missing object as null, as the data source's `object`.
    data.kubernetes_resource ??= {};
    data.kubernetes_resource[name] = { object: object ?? null };
  }
  return data;
}

/**
 * The preconditions of every resource the configuration keeps (created, updated or unchanged:
 * OpenTofu checks them on every plan), evaluated against the cluster as it is now (what the
 * module's data sources read).
 */
export async function checkPreconditions(
  root: RootConfig,
  changes: PlannedChange[],
  client: KubeClient,
  moduleInputsByCall: Record<string, Record<string, unknown>>,
): Promise<void> {
  const failures: string[] = [];
  for (const [callName, call] of Object.entries(root.calls)) {
    const inputs = moduleInputsByCall[callName];
    if (!inputs) continue;
    const resources = (call.source.blocks.resource ?? {}) as Record<string, Record<string, Hcl[]>>;
    let scope: Scope | undefined;
    for (const [type, byName] of Object.entries(resources)) {
      for (const [name, [decl]] of Object.entries(byName)) {
        const rules = (decl?.lifecycle?.[0]?.precondition ?? []) as Validation[];
        if (rules.length === 0) continue;
        const kept = changes.some(
          (c) =>
            c.type === type &&
            c.name === name &&
            c.moduleAddress.replace(/\[\d+\]$/, '') === `module.${callName}` &&
            !c.actions.includes('delete'),
        );
        if (!kept) continue;
        if (!scope) {
          const base: Scope = {
            var: inputs,
            data: await readData(call.source.blocks, inputs, client),
            path: { module: call.source.dir },
          };
          scope = { ...base, local: evalLocals(call.source.blocks, base) };
        }
        for (const rule of rules) {
          let ok: unknown;
          try {
            ok = evalHcl(rule.condition, scope);
          } catch (err) {
            if (!(err instanceof HclEvalError)) throw err;
            ok = err.message;
          }
          if (ok !== true) {
            failures.push(
              `Resource precondition failed\n\n  in resource "${type}" "${name}" of module.${callName}\n\n${typeof ok === 'string' ? ok : String(evalHcl(rule.error_message, scope))}`,
            );
          }
        }
      }
    }
  }
  if (failures.length > 0) throw new TofuDiagnostics(failures);
}

/** `module.x.type.name` of every resource whose lifecycle sets prevent_destroy. */
export function protectedResources(root: RootConfig): Set<string> {
  const out = new Set<string>();
  for (const [callName, call] of Object.entries(root.calls)) {
    const resources = (call.source.blocks.resource ?? {}) as Record<string, Record<string, Hcl[]>>;
    for (const [type, byName] of Object.entries(resources)) {
      for (const [name, [decl]] of Object.entries(byName)) {
        if (decl?.lifecycle?.[0]?.prevent_destroy === true)
          out.add(`module.${callName}.${type}.${name}`);
      }
    }
  }
  return out;
}

/** Fails a plan that would destroy an instance of a resource with prevent_destroy. */
export function checkPreventDestroy(changes: PlannedChange[], guarded: Set<string>): void {
  const failures = changes
    .filter((c) => c.actions.includes('delete'))
    .filter((c) => guarded.has(`${c.moduleAddress.replace(/\[\d+\]$/, '')}.${c.type}.${c.name}`))
    .map(
      (c) =>
        `Instance cannot be destroyed\n\nResource ${c.address} has lifecycle.prevent_destroy set, but the plan calls for this resource to be destroyed. To avoid this error and continue with the plan, either disable lifecycle.prevent_destroy or reduce the scope of the plan using the -target option.`,
    );
  if (failures.length > 0) throw new TofuDiagnostics(failures);
}

/**
 * kubernetes_manifest is typed against the cluster at plan time (terraform-provider-kubernetes
 * v2.38.0, manifest/provider/plan.go): a kind no API serves fails with "API did not recognize
 * GroupVersionKind from manifest (CRD may not be installed)"; a manifest with an attribute the
 * CRD's schema lacks fails with "Manifest configuration incompatible with resource schema",
 * each such attribute reported as morph.ValueToType does ("Attribute not found in schema").
 * The schema is the CRD's openAPIV3Schema as the API server holds it.
 */
export async function checkManifestSchemas(
  resources: DesiredResource[],
  client: KubeClient,
): Promise<void> {
  const failures: string[] = [];
  for (const r of resources.filter((r) => r.type === 'kubernetes_manifest')) {
    const manifest = r.objects[0] as Manifest;
    const [group, version] = String(manifest.apiVersion).includes('/')
      ? String(manifest.apiVersion).split('/')
      : ['', manifest.apiVersion];
    // Built-in kinds (core, apps, *.k8s.io) have no CRD.
    if (!group?.includes('.') || group.endsWith('.k8s.io')) continue;
    const crd = await client.crdFor(group, manifest.kind);
    const served = crd?.spec?.versions?.find(
      (v: Manifest) => v.name === version && v.served !== false,
    );
    if (!served) {
      failures.push(
        `API did not recognize GroupVersionKind from manifest (CRD may not be installed)\n\n  with ${r.address}\n\n${
          crd
            ? `no matches for kind "${manifest.kind}" in version "${manifest.apiVersion}"`
            : `no matches for kind "${manifest.kind}" in group "${group}"`
        }`,
      );
      continue;
    }
    const schema = served.schema?.openAPIV3Schema as Manifest | undefined;
    if (!schema) continue;
    const { apiVersion: _a, kind: _k, metadata: _m, ...body } = manifest;
    const unknown = unknownAttributes(body, schema, 'object');
    if (unknown.length > 0) {
      failures.push(
        [
          `Manifest configuration incompatible with resource schema\n\n  with ${r.address}\n\nDetailed descriptions of errors will follow below.`,
          ...unknown.map(
            (path) =>
              `Warning: Attribute not found in schema\n\n  with ${r.address}\n\nUnable to find schema type for attribute:\n${path}`,
          ),
        ].join('\n\n'),
      );
    }
  }
  if (failures.length > 0) throw new TofuDiagnostics(failures);
}

/** Paths (as the provider's attributePathSummary writes them) of values the schema lacks. */
function unknownAttributes(value: unknown, schema: Manifest, path: string): string[] {
  if (!schema || schema['x-kubernetes-preserve-unknown-fields'] === true) return [];
  if (Array.isArray(value)) {
    return schema.items
      ? value.flatMap((v, i) => unknownAttributes(v, schema.items, `${path}[${i}]`))
      : [];
  }
  if (!value || typeof value !== 'object') return [];
  const properties = schema.properties as Record<string, Manifest> | undefined;
  const additional = schema.additionalProperties;
  return Object.entries(value).flatMap(([key, v]) => {
    const inner = `${path}[${key}]`;
    if (properties && key in properties)
      return unknownAttributes(v, properties[key] as Manifest, inner);
    if (additional && typeof additional === 'object')
      return unknownAttributes(v, additional, inner);
    if (additional === true || !properties) return [];
    return [inner];
  });
}
