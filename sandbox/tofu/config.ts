// Reads an OpenTofu root module (and the modules it calls) the way the stand-in needs it: the
// variables and their values (defaults, TF_VAR_*, terraform.tfvars(.json), *.auto.tfvars(.json),
// -var-file and -var), module calls and their arguments, locals, resources and outputs, with a small
// evaluator for the expressions these files use. Parsing is @cdktf/hcl2json (real HCL).
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseHclValue, parseModuleFile } from './hcl-parse.ts';

// biome-ignore lint/suspicious/noExplicitAny: hcl2json output
type Hcl = Record<string, any>;

export interface ModuleSource {
  dir: string;
  /** hcl2json blocks merged across the directory's .tf files. */
  blocks: Hcl;
}

export interface RootConfig extends ModuleSource {
  vars: Record<string, unknown>;
  /** Module call name → its source and raw arguments. */
  calls: Record<string, { source: ModuleSource; args: Hcl }>;
}

export type VarAssignment = { kind: 'var'; text: string } | { kind: 'var-file'; path: string };

export async function loadModule(dir: string): Promise<ModuleSource> {
  if (!existsSync(dir)) throw new Error(`no such directory: ${dir}`);
  const files = readdirSync(dir)
    .filter((f) => f.endsWith('.tf'))
    .sort();
  const blocks: Hcl = {};
  for (const file of files) {
    const path = join(dir, file);
    const parsed = await parseModuleFile(path, readFileSync(path, 'utf8'));
    for (const [kind, value] of Object.entries(parsed)) {
      if (Array.isArray(value)) blocks[kind] = [...(blocks[kind] ?? []), ...value];
      else blocks[kind] = deepMerge(blocks[kind] ?? {}, value);
    }
  }
  return { dir, blocks };
}

export async function loadRoot(dir: string, assignments: VarAssignment[]): Promise<RootConfig> {
  const root = await loadModule(dir);
  if (Object.keys(root.blocks).length === 0) {
    throw new Error(
      `no configuration files in ${dir}: run tofu in terraform/environments/chocolandiadc-mvp`,
    );
  }
  const vars = await variableValues(root, assignments);
  const calls: RootConfig['calls'] = {};
  for (const [name, [args]] of Object.entries(
    (root.blocks.module ?? {}) as Record<string, Hcl[]>,
  )) {
    calls[name] = { source: await loadModule(resolve(dir, args?.source)), args: args ?? {} };
  }
  return { ...root, vars, calls };
}

/**
 * The variables' values, loaded in OpenTofu's order, each source over the ones before it:
 * defaults, TF_VAR_* environment variables, terraform.tfvars, terraform.tfvars.json, every
 * *.auto.tfvars and *.auto.tfvars.json in lexical order of their names, then -var and -var-file
 * in the order given ("Variable Definition Precedence",
 * https://opentofu.org/docs/language/values/variables/#variable-definition-precedence).
 */
async function variableValues(
  root: ModuleSource,
  assignments: VarAssignment[],
): Promise<Record<string, unknown>> {
  const declared = (root.blocks.variable ?? {}) as Record<string, Hcl[]>;
  const values: Record<string, unknown> = {};
  for (const [name, [decl]] of Object.entries(declared))
    if (decl && 'default' in decl) values[name] = decl.default;
  const set = async (name: string, raw: string, source: string) => {
    const decl = declared[name]?.[0];
    if (!decl) throw new Error(`Value for undeclared variable "${name}" (from ${source})`);
    values[name] = await typedValue(name, raw, decl.type);
  };
  for (const [key, raw] of Object.entries(process.env)) {
    if (key.startsWith('TF_VAR_') && raw !== undefined && declared[key.slice(7)])
      await set(key.slice(7), raw, key);
  }
  const files = ['terraform.tfvars', 'terraform.tfvars.json']
    .map((f) => join(root.dir, f))
    .filter(existsSync);
  files.push(
    ...readdirSync(root.dir)
      .filter((f) => /\.auto\.tfvars(\.json)?$/.test(f))
      .sort()
      .map((f) => join(root.dir, f)),
  );
  const fromFile = async (path: string) => {
    const text = readFileSync(path, 'utf8');
    const parsed = path.endsWith('.json')
      ? (JSON.parse(text) as Record<string, unknown>)
      : await parseHclValue(path, text);
    for (const [name, value] of Object.entries(parsed)) {
      if (!declared[name]) throw new Error(`Value for undeclared variable "${name}" (in ${path})`);
      values[name] = value;
    }
  };
  for (const file of files) await fromFile(file);
  for (const a of assignments) {
    if (a.kind === 'var-file') {
      const path = resolve(root.dir, a.path);
      if (!existsSync(path)) throw new Error(`Given variables file ${a.path} does not exist.`);
      await fromFile(path);
    } else {
      const eq = a.text.indexOf('=');
      if (eq <= 0) throw new Error(`-var "${a.text}": the argument must be NAME=VALUE`);
      await set(a.text.slice(0, eq).trim(), a.text.slice(eq + 1), '-var');
    }
  }
  const missing = Object.keys(declared).filter((name) => !(name in values));
  if (missing.length > 0)
    throw new Error(`No value for required variable(s): ${missing.join(', ')}`);
  return values;
}

async function typedValue(
  name: string,
  raw: string,
  hclType: string | undefined,
): Promise<unknown> {
  // hcl2json gives a type constraint as an expression string: `${list(string)}`.
  const type = hclType?.replace(/^\$\{(.*)\}$/, '$1');
  if (!type || type === 'string') return raw;
  if (type === 'number') {
    const n = Number(raw);
    if (Number.isNaN(n)) throw new Error(`variable "${name}": "${raw}" is not a number`);
    return n;
  }
  if (type === 'bool') {
    if (raw !== 'true' && raw !== 'false')
      throw new Error(`variable "${name}": "${raw}" is not true or false`);
    return raw === 'true';
  }
  const parsed = await parseHclValue(`${name}.tfvars`, `${name} = ${raw}`);
  return parsed[name];
}

function deepMerge(a: Hcl, b: Hcl): Hcl {
  const out: Hcl = { ...a };
  for (const [k, v] of Object.entries(b)) {
    out[k] =
      out[k] && typeof out[k] === 'object' && !Array.isArray(out[k]) && typeof v === 'object'
        ? deepMerge(out[k], v)
        : v;
  }
  return out;
}

export interface EvalScope {
  vars: Record<string, unknown>;
  locals?: Record<string, unknown>;
  modules?: Record<string, Record<string, unknown> | undefined>;
  pathModule?: string;
}

/** Evaluates an hcl2json value: literals, `${expr}` and strings with interpolations. */
export function evaluate(raw: unknown, scope: EvalScope): unknown {
  if (Array.isArray(raw)) return raw.map((v) => evaluate(v, scope));
  if (raw && typeof raw === 'object') {
    return Object.fromEntries(Object.entries(raw).map(([k, v]) => [k, evaluate(v, scope)]));
  }
  if (typeof raw !== 'string' || !raw.includes('${')) return raw;
  const whole = /^\$\{([^{}]*)\}$/.exec(raw);
  if (whole) return expression(whole[1] ?? '', scope);
  return raw.replace(/\$\{([^{}]*)\}/g, (_, expr: string) => String(expression(expr, scope)));
}

function expression(text: string, scope: EvalScope): unknown {
  const expr = text.trim();
  const conditional = /^(.+?)\s\?\s(.+?)\s:\s(.+)$/.exec(expr);
  if (conditional) {
    return expression(conditional[1] ?? '', scope)
      ? expression(conditional[2] ?? '', scope)
      : expression(conditional[3] ?? '', scope);
  }
  if (expr === 'null') return null;
  if (expr === 'true' || expr === 'false') return expr === 'true';
  if (/^-?\d+(\.\d+)?$/.test(expr)) return Number(expr);
  if (/^"[^"]*"$/.test(expr)) return expr.slice(1, -1);
  if (expr === 'path.module') return scope.pathModule ?? '.';
  let m = /^var\.(\w+)$/.exec(expr);
  if (m) {
    if (!(m[1]! in scope.vars)) throw new Error(`Reference to undeclared input variable "${m[1]}"`);
    return scope.vars[m[1]!];
  }
  m = /^local\.(\w+)$/.exec(expr);
  if (m && scope.locals && m[1]! in scope.locals) return scope.locals[m[1]!];
  m = /^module\.(\w+)(?:\[0\])?\.(\w+)$/.exec(expr);
  if (m && scope.modules?.[m[1]!]) return scope.modules[m[1]!]![m[2]!];
  throw new Error(`the sandbox's tofu cannot evaluate \${${expr}}: extend sandbox/tofu/config.ts`);
}

/** A module's locals, each evaluated when its expression is one the stand-in can evaluate. */
export function moduleLocals(
  source: ModuleSource,
  vars: Record<string, unknown>,
): Record<string, unknown> {
  const raw: Hcl = Object.assign({}, ...((source.blocks.locals ?? []) as Hcl[]));
  const locals: Record<string, unknown> = {};
  // Locals may refer to locals: a few passes settle the ones the stand-in can evaluate.
  for (let pass = 0; pass < 3; pass++) {
    for (const [name, value] of Object.entries(raw)) {
      if (name in locals) continue;
      try {
        locals[name] = evaluate(value, { vars, locals, pathModule: source.dir });
      } catch {
        // Functions such as toset(concat(…)) are computed by the stand-in's own code.
      }
    }
  }
  return locals;
}

/** A called module's input values: its defaults, overridden by the call's arguments. */
export function moduleInputs(
  call: { source: ModuleSource; args: Hcl },
  scope: EvalScope,
): Record<string, unknown> {
  const inputs: Record<string, unknown> = {};
  for (const [name, [decl]] of Object.entries(
    (call.source.blocks.variable ?? {}) as Record<string, Hcl[]>,
  )) {
    if (decl && 'default' in decl) inputs[name] = decl.default;
  }
  for (const [name, raw] of Object.entries(call.args)) {
    if (['source', 'count', 'depends_on', 'for_each', 'providers'].includes(name)) continue;
    inputs[name] = evaluate(raw, scope);
  }
  return inputs;
}
