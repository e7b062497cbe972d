// Reads the OpenTofu code the way the tests need it: every .tf file parsed by @cdktf/hcl2json
// (the HCL parser Terraform itself uses, compiled to WASM), merged per module, with the
// variables' defaults and simple `var.`/`local.` references resolved.
import { readdir, readFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from '@cdktf/hcl2json';

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const TERRAFORM_DIR = join(REPO_ROOT, 'terraform');
export const REDIS_SHARED_DIR = join(TERRAFORM_DIR, 'modules', 'redis-shared');
export const MIGRATION_DIR = join(TERRAFORM_DIR, 'modules', 'beersystem-migration');
export const ROOT_MODULE_DIR = join(TERRAFORM_DIR, 'environments', 'chocolandiadc-mvp');

/** A block body as hcl2json returns it: nested blocks are arrays of bodies. */
export type HclBody = Record<string, unknown>;

export interface HclVariable {
  default?: unknown;
  type?: string;
  description?: string;
  validation?: { condition: string; error_message: string }[];
}

/** One module directory: all its .tf files merged by block type. */
export interface HclModule {
  dir: string;
  files: string[];
  variables: Record<string, HclVariable>;
  locals: Record<string, unknown>;
  /** resources[type][name] = body */
  resources: Record<string, Record<string, HclBody>>;
  /** data[type][name] = body */
  data: Record<string, Record<string, HclBody>>;
  outputs: Record<string, HclBody>;
  modules: Record<string, HclBody>;
  providers: Record<string, HclBody>;
  terraform: HclBody[];
}

export async function listTfFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries
    .filter((e) => e.isFile() && e.name.endsWith('.tf') && !e.parentPath.includes('.terraform'))
    .map((e) => join(e.parentPath, e.name))
    .sort();
}

/** Parses one file; a syntax error names the file (relative to the repository) and line. */
export async function parseHclFile(path: string): Promise<HclBody> {
  const name = relative(REPO_ROOT, path);
  const text = await readFile(path, 'utf8');
  try {
    return (await parse(name, text)) as HclBody;
  } catch (err) {
    throw new Error(`HCL syntax error: ${String(err)}`);
  }
}

function firstBody(value: unknown): HclBody {
  return (Array.isArray(value) ? value[0] : value) as HclBody;
}

export async function loadModule(dir: string): Promise<HclModule> {
  const files = (await readdir(dir)).filter((f) => f.endsWith('.tf')).sort();
  const mod: HclModule = {
    dir,
    files,
    variables: {},
    locals: {},
    resources: {},
    data: {},
    outputs: {},
    modules: {},
    providers: {},
    terraform: [],
  };
  for (const file of files) {
    const body = await parseHclFile(join(dir, file));
    for (const [name, blocks] of Object.entries((body.variable ?? {}) as HclBody)) {
      mod.variables[name] = firstBody(blocks) as HclVariable;
    }
    for (const locals of (body.locals ?? []) as HclBody[]) Object.assign(mod.locals, locals);
    for (const [type, byName] of Object.entries((body.resource ?? {}) as HclBody)) {
      mod.resources[type] ??= {};
      for (const [name, blocks] of Object.entries(byName as HclBody)) {
        mod.resources[type][name] = firstBody(blocks);
      }
    }
    for (const [type, byName] of Object.entries((body.data ?? {}) as HclBody)) {
      mod.data[type] ??= {};
      for (const [name, blocks] of Object.entries(byName as HclBody)) {
        mod.data[type][name] = firstBody(blocks);
      }
    }
    for (const [name, blocks] of Object.entries((body.output ?? {}) as HclBody)) {
      mod.outputs[name] = firstBody(blocks);
    }
    for (const [name, blocks] of Object.entries((body.module ?? {}) as HclBody)) {
      mod.modules[name] = firstBody(blocks);
    }
    for (const [name, blocks] of Object.entries((body.provider ?? {}) as HclBody)) {
      mod.providers[name] = firstBody(blocks);
    }
    mod.terraform.push(...((body.terraform ?? []) as HclBody[]));
  }
  return mod;
}

export function resource(mod: HclModule, type: string, name: string): HclBody {
  const body = mod.resources[type]?.[name];
  if (!body)
    throw new Error(`resource ${type}.${name} not found in ${relative(REPO_ROOT, mod.dir)}`);
  return body;
}

/** The first body of a nested block (`spec`, `metadata`…), or throws naming the path. */
export function block(body: HclBody, name: string): HclBody {
  const value = body[name];
  if (!Array.isArray(value) || value.length === 0) throw new Error(`block "${name}" missing`);
  return value[0] as HclBody;
}

export function variableDefaults(mod: HclModule): Record<string, unknown> {
  const defaults: Record<string, unknown> = {};
  for (const [name, variable] of Object.entries(mod.variables)) {
    if ('default' in variable) defaults[name] = variable.default;
  }
  return defaults;
}

const REFERENCE = /^\$\{(var|local)\.([A-Za-z_][A-Za-z0-9_-]*)\}$/;

/**
 * Resolves a value that is a literal or a single `${var.x}` / `${local.y}` reference, taking the
 * variables from `vars` (defaults unless a test overrides them). Anything more complex throws:
 * the tests only render what they can evaluate honestly.
 */
export function resolveValue(
  mod: HclModule,
  value: unknown,
  vars: Record<string, unknown> = variableDefaults(mod),
): unknown {
  if (typeof value === 'string') {
    const ref = REFERENCE.exec(value);
    if (!ref) {
      if (value.includes(`\${`)) throw new Error(`cannot resolve expression ${value}`);
      return value;
    }
    const [, kind, name] = ref as unknown as [string, string, string];
    if (kind === 'var') {
      if (!(name in vars)) throw new Error(`variable ${name} has no default`);
      return vars[name];
    }
    if (!(name in mod.locals)) throw new Error(`local ${name} is not defined`);
    return resolveValue(mod, mod.locals[name], vars);
  }
  if (Array.isArray(value)) return value.map((v) => resolveValue(mod, v, vars));
  if (value && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value).map(([k, v]) => [k, resolveValue(mod, v, vars)]),
    );
  }
  return value;
}
