// An evaluator for the HCL expressions the modules' validation conditions and preconditions use
// (hcl2json hands them over as source text inside `${…}`): literals, string templates,
// references, operators, conditionals, `for` expressions, indexing and the functions listed in
// FUNCTIONS, with Terraform's rules where they differ from JavaScript's: `==` compares type and
// value, an error inside `can()`/`try()` is caught, regex() fails when nothing matches.
// test/sandbox/tofu-validation.test.ts holds each of them against `terraform console`.

import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { parse as parseYaml } from 'yaml';
import { renderTemplate } from './template.ts';

export type Value = unknown;
export type Scope = Record<string, Value>;

export class HclEvalError extends Error {}

type Node =
  | { t: 'lit'; v: Value }
  | { t: 'tpl'; parts: Array<string | Node> }
  | { t: 'ref'; name: string }
  | { t: 'attr'; obj: Node; name: string }
  | { t: 'index'; obj: Node; key: Node }
  | { t: 'call'; name: string; args: Node[] }
  | { t: 'unary'; op: string; x: Node }
  | { t: 'bin'; op: string; a: Node; b: Node }
  | { t: 'cond'; c: Node; a: Node; b: Node }
  | { t: 'list'; items: Node[] }
  | { t: 'object'; entries: Array<[Node, Node]> }
  | {
      t: 'for';
      object: boolean;
      keyVar?: string;
      valueVar: string;
      coll: Node;
      key?: Node;
      value: Node;
      cond?: Node;
    };

class Parser {
  private i = 0;
  constructor(private readonly src: string) {}

  parseAll(): Node {
    const node = this.expr();
    this.ws();
    if (this.i < this.src.length) this.fail(`unexpected "${this.src.slice(this.i, this.i + 10)}"`);
    return node;
  }

  private fail(message: string): never {
    throw new HclEvalError(`cannot parse expression: ${message} in ${this.src}`);
  }

  private ws(): void {
    while (this.i < this.src.length && /\s/.test(this.src[this.i] as string)) this.i++;
  }

  private peek(s: string): boolean {
    this.ws();
    return this.src.startsWith(s, this.i);
  }

  private eat(s: string): boolean {
    if (!this.peek(s)) return false;
    this.i += s.length;
    return true;
  }

  private expect(s: string): void {
    if (!this.eat(s)) this.fail(`expected "${s}"`);
  }

  private keyword(word: string): boolean {
    this.ws();
    const re = new RegExp(`^${word}(?![A-Za-z0-9_-])`);
    if (!re.test(this.src.slice(this.i))) return false;
    this.i += word.length;
    return true;
  }

  private ident(): string {
    this.ws();
    const m = /^[A-Za-z_][A-Za-z0-9_-]*/.exec(this.src.slice(this.i));
    if (!m) this.fail('expected a name');
    this.i += m[0].length;
    return m[0];
  }

  expr(): Node {
    const c = this.binary(0);
    if (this.eat('?')) {
      const a = this.expr();
      this.expect(':');
      const b = this.expr();
      return { t: 'cond', c, a, b };
    }
    return c;
  }

  private static readonly LEVELS = [
    ['||'],
    ['&&'],
    ['==', '!='],
    ['<=', '>=', '<', '>'],
    ['+', '-'],
    ['*', '/', '%'],
  ];

  private binary(level: number): Node {
    if (level >= Parser.LEVELS.length) return this.unary();
    let left = this.binary(level + 1);
    for (;;) {
      this.ws();
      const op = Parser.LEVELS[level]!.find((o) => this.src.startsWith(o, this.i));
      if (!op) return left;
      this.i += op.length;
      left = { t: 'bin', op, a: left, b: this.binary(level + 1) };
    }
  }

  private unary(): Node {
    if (this.eat('!')) return { t: 'unary', op: '!', x: this.unary() };
    if (this.peek('-') && !/\d/.test(this.src[this.i + 1] ?? '')) {
      this.i++;
      return { t: 'unary', op: '-', x: this.unary() };
    }
    return this.postfix(this.primary());
  }

  private postfix(node: Node): Node {
    for (;;) {
      if (this.peek('.') && !this.src.startsWith('...', this.i)) {
        this.i++;
        this.ws();
        const num = /^\d+/.exec(this.src.slice(this.i));
        if (num) {
          this.i += num[0].length;
          node = { t: 'index', obj: node, key: { t: 'lit', v: Number(num[0]) } };
        } else node = { t: 'attr', obj: node, name: this.ident() };
      } else if (this.peek('[') && !this.peekFor('[')) {
        this.i++;
        const key = this.expr();
        this.expect(']');
        node = { t: 'index', obj: node, key };
      } else return node;
    }
  }

  private peekFor(open: string): boolean {
    if (!this.peek(open)) return false;
    const save = this.i;
    this.i += open.length;
    const isFor = this.keyword('for');
    this.i = save;
    return isFor;
  }

  private primary(): Node {
    this.ws();
    const rest = this.src.slice(this.i);
    const num = /^-?\d+(\.\d+)?([eE][-+]?\d+)?/.exec(rest);
    if (num) {
      this.i += num[0].length;
      return { t: 'lit', v: Number(num[0]) };
    }
    if (rest.startsWith('"')) return this.template();
    if (this.eat('(')) {
      const e = this.expr();
      this.expect(')');
      return e;
    }
    if (this.peek('[')) return this.peekFor('[') ? this.forExpr(false) : this.list();
    if (this.peek('{')) return this.peekFor('{') ? this.forExpr(true) : this.object();
    const name = this.ident();
    if (name === 'true' || name === 'false') return { t: 'lit', v: name === 'true' };
    if (name === 'null') return { t: 'lit', v: null };
    if (this.eat('(')) {
      const args: Node[] = [];
      if (!this.eat(')')) {
        do args.push(this.expr());
        while (this.eat(','));
        this.eat('...');
        this.expect(')');
      }
      return { t: 'call', name, args };
    }
    return { t: 'ref', name };
  }

  private list(): Node {
    this.expect('[');
    const items: Node[] = [];
    while (!this.eat(']')) {
      items.push(this.expr());
      this.eat(',');
    }
    return { t: 'list', items };
  }

  private object(): Node {
    this.expect('{');
    const entries: Array<[Node, Node]> = [];
    while (!this.eat('}')) {
      this.ws();
      const key: Node = /^[A-Za-z_]/.test(this.src[this.i] ?? '')
        ? { t: 'lit', v: this.ident() }
        : this.expr();
      if (!this.eat('=')) this.expect(':');
      entries.push([key, this.expr()]);
      this.eat(',');
    }
    return { t: 'object', entries };
  }

  private forExpr(object: boolean): Node {
    this.expect(object ? '{' : '[');
    this.keyword('for');
    let valueVar = this.ident();
    let keyVar: string | undefined;
    if (this.eat(',')) {
      keyVar = valueVar;
      valueVar = this.ident();
    }
    if (!this.keyword('in')) this.fail('expected "in"');
    const coll = this.expr();
    this.expect(':');
    let key: Node | undefined;
    let value = this.expr();
    if (object) {
      this.expect('=>');
      key = value;
      value = this.expr();
      this.eat('...');
    }
    const cond = this.keyword('if') ? this.expr() : undefined;
    this.expect(object ? '}' : ']');
    return {
      t: 'for',
      object,
      valueVar,
      coll,
      value,
      ...(keyVar ? { keyVar } : {}),
      ...(key ? { key } : {}),
      ...(cond ? { cond } : {}),
    };
  }

  /** A template without quotes that runs to the end of the input (hcl2json's template text). */
  bareTemplate(): Node {
    return this.template(true);
  }

  private template(bare = false): Node {
    if (!bare) this.i++; // opening quote
    const parts: Array<string | Node> = [];
    let text = '';
    for (;;) {
      const ch = this.src[this.i];
      if (ch === undefined && bare) break;
      if (ch === undefined) this.fail('unterminated string');
      if (ch === '"' && !bare) {
        this.i++;
        break;
      }
      if (ch === '\\') {
        const next = this.src[this.i + 1] ?? '';
        const simple: Record<string, string> = { n: '\n', t: '\t', r: '\r', '"': '"', '\\': '\\' };
        if (next in simple) {
          text += simple[next];
          this.i += 2;
        } else if (next === 'u') {
          text += String.fromCharCode(Number.parseInt(this.src.slice(this.i + 2, this.i + 6), 16));
          this.i += 6;
        } else this.fail(`invalid escape \\${next}`);
        continue;
      }
      if (this.src.startsWith('$${', this.i) || this.src.startsWith('%%{', this.i)) {
        text += this.src.slice(this.i + 1, this.i + 3);
        this.i += 3;
        continue;
      }
      if (this.src.startsWith('${', this.i)) {
        if (text) parts.push(text);
        text = '';
        this.i += 2;
        parts.push(this.expr());
        this.expect('}');
        continue;
      }
      text += ch;
      this.i++;
    }
    if (text || parts.length === 0) parts.push(text);
    return { t: 'tpl', parts };
  }
}

const isObject = (v: Value): v is Record<string, Value> =>
  !!v && typeof v === 'object' && !Array.isArray(v);

function typeName(v: Value): string {
  if (v === null || v === undefined) return 'null';
  if (Array.isArray(v)) return 'tuple';
  return typeof v === 'object' ? 'object' : typeof v === 'boolean' ? 'bool' : typeof v;
}

function toStr(v: Value, what: string): string {
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  throw new HclEvalError(`${what}: a ${typeName(v)} value cannot be converted to string`);
}

function toNum(v: Value, what: string): number {
  if (typeof v === 'number') return v;
  if (typeof v === 'string' && /^-?\d+(\.\d+)?$/.test(v.trim())) return Number(v);
  throw new HclEvalError(`${what}: a number is required, got ${JSON.stringify(v)}`);
}

function toBool(v: Value, what: string): boolean {
  if (typeof v === 'boolean') return v;
  if (v === 'true' || v === 'false') return v === 'true';
  throw new HclEvalError(`${what}: a bool is required, got ${JSON.stringify(v)}`);
}

function toList(v: Value, what: string): Value[] {
  if (Array.isArray(v)) return v;
  throw new HclEvalError(`${what}: a list is required, got ${typeName(v)}`);
}

function readModuleFile(path: string, fn: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new HclEvalError(
      `Invalid function argument: ${fn}: no file exists at ${path} (${(err as NodeJS.ErrnoException).code})`,
    );
  }
}

function equal(a: Value, b: Value): boolean {
  return JSON.stringify(a ?? null) === JSON.stringify(b ?? null);
}

/** IPv4 `a.b.c.d/n` → [address as number, prefix length], or an error as cidrhost() gives it. */
function parseCidr(prefix: string): [number, number] {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/.exec(prefix);
  const octets = m ? m.slice(1, 5).map(Number) : [];
  const bits = m ? Number(m[5]) : -1;
  if (!m || octets.some((o) => o > 255) || bits > 32) {
    throw new HclEvalError(`invalid CIDR address: ${prefix}`);
  }
  return [octets.reduce((n, o) => n * 256 + o, 0), bits];
}

function cidrhost(prefix: string, hostnum: number): string {
  const [addr, bits] = parseCidr(prefix);
  const size = 2 ** (32 - bits);
  if (hostnum >= size || hostnum < -size) {
    throw new HclEvalError(`prefix of ${bits} bits cannot accommodate a host numbered ${hostnum}`);
  }
  const net = addr - (addr % size);
  const n = net + (hostnum < 0 ? size + hostnum : hostnum);
  return [24, 16, 8, 0].map((s) => Math.floor(n / 2 ** s) % 256).join('.');
}

/** RE2 patterns as the modules write them are valid JavaScript patterns with the same meaning. */
function regex(pattern: string, subject: string): Value {
  const m = new RegExp(pattern).exec(subject);
  if (!m) throw new HclEvalError('pattern did not match any part of the given string');
  if (m.groups) return { ...m.groups };
  return m.length > 1 ? m.slice(1) : m[0];
}

type Fn = (args: Node[], ev: (n: Node) => Value) => Value;

const strict =
  (f: (...values: Value[]) => Value): Fn =>
  (args, ev) =>
    f(...args.map(ev));

const FUNCTIONS: Record<string, Fn> = {
  can: (args, ev) => {
    try {
      ev(args[0] as Node);
      return true;
    } catch (err) {
      if (err instanceof HclEvalError) return false;
      throw err;
    }
  },
  try: (args, ev) => {
    for (const a of args) {
      try {
        return ev(a);
      } catch (err) {
        if (!(err instanceof HclEvalError)) throw err;
      }
    }
    throw new HclEvalError('no expression given to try() succeeded');
  },
  regex: strict((p, s) => regex(toStr(p, 'regex'), toStr(s, 'regex'))),
  cidrhost: strict((p, n) => cidrhost(toStr(p, 'cidrhost'), toNum(n, 'cidrhost'))),
  split: strict((sep, s) => toStr(s, 'split').split(toStr(sep, 'split'))),
  join: strict((sep, l) =>
    toList(l, 'join')
      .map((v) => toStr(v, 'join'))
      .join(toStr(sep, 'join')),
  ),
  alltrue: strict((l) => toList(l, 'alltrue').every((v) => toBool(v, 'alltrue'))),
  anytrue: strict((l) => toList(l, 'anytrue').some((v) => toBool(v, 'anytrue'))),
  contains: strict((l, v) => toList(l, 'contains').some((x) => equal(x, v))),
  length: strict((v) => {
    if (typeof v === 'string') return [...v].length;
    if (Array.isArray(v)) return v.length;
    if (isObject(v)) return Object.keys(v).length;
    throw new HclEvalError(`length: a ${typeName(v)} value has no length`);
  }),
  trimspace: strict((s) => toStr(s, 'trimspace').trim()),
  trimsuffix: strict((s, x) => {
    const str = toStr(s, 'trimsuffix');
    const suffix = toStr(x, 'trimsuffix');
    return suffix && str.endsWith(suffix) ? str.slice(0, -suffix.length) : str;
  }),
  lower: strict((s) => toStr(s, 'lower').toLowerCase()),
  upper: strict((s) => toStr(s, 'upper').toUpperCase()),
  floor: strict((n) => Math.floor(toNum(n, 'floor'))),
  tonumber: strict((v) => (v === null ? null : toNum(v, 'tonumber'))),
  tostring: strict((v) => (v === null ? null : toStr(v, 'tostring'))),
  tolist: strict((v) => (v === null ? null : toList(v, 'tolist'))),
  toset: strict((v) =>
    [...new Set(toList(v, 'toset').map((x) => JSON.stringify(x)))].map((x) => JSON.parse(x)),
  ),
  concat: strict((...ls) => ls.flatMap((l) => toList(l, 'concat'))),
  flatten: strict((l) => {
    const flat = (v: Value): Value[] => (Array.isArray(v) ? v.flatMap(flat) : [v]);
    return toList(l, 'flatten').flatMap(flat);
  }),
  merge: strict((...os) => {
    const out: Record<string, Value> = {};
    for (const o of os) {
      if (o === null) continue;
      if (!isObject(o)) throw new HclEvalError(`merge: an object is required, got ${typeName(o)}`);
      Object.assign(out, o);
    }
    return out;
  }),
  keys: strict((o) => {
    if (!isObject(o))
      throw new HclEvalError(`keys: a map or object is required, got ${typeName(o)}`);
    return Object.keys(o).sort();
  }),
  values: strict((o) => {
    if (!isObject(o))
      throw new HclEvalError(`values: a map or object is required, got ${typeName(o)}`);
    return Object.keys(o)
      .sort()
      .map((k) => o[k]);
  }),
  lookup: strict((o, k, d) => {
    if (!isObject(o)) throw new HclEvalError(`lookup: a map is required, got ${typeName(o)}`);
    const key = toStr(k, 'lookup');
    if (key in o) return o[key];
    if (d === undefined) throw new HclEvalError(`lookup: the given key "${key}" does not exist`);
    return d;
  }),
  sort: strict((l) =>
    toList(l, 'sort')
      .map((v) => toStr(v, 'sort'))
      .sort(),
  ),
  tomap: strict((o) => {
    if (!isObject(o)) throw new HclEvalError(`tomap: a map is required, got ${typeName(o)}`);
    return o;
  }),
  pathexpand: strict((p) => toStr(p, 'pathexpand').replace(/^~(?=\/|$)/, homedir())),
  file: strict((p) => readModuleFile(toStr(p, 'file'), 'file')),
  templatefile: strict((p, vars) => {
    if (!isObject(vars)) throw new HclEvalError('templatefile: vars must be an object');
    const path = toStr(p, 'templatefile');
    try {
      return renderTemplate(readModuleFile(path, 'templatefile'), vars);
    } catch (err) {
      if (err instanceof HclEvalError) throw err;
      throw new HclEvalError(
        `Error in function call: templatefile(${JSON.stringify(path)}): ${(err as Error).message}`,
      );
    }
  }),
  yamldecode: strict((s) => {
    try {
      return parseYaml(toStr(s, 'yamldecode')) ?? null;
    } catch (err) {
      throw new HclEvalError(`yamldecode: ${(err as Error).message}`);
    }
  }),
  jsonencode: strict((v) => JSON.stringify(v)),
  coalesce: strict((...vs) => {
    const found = vs.find((v) => v !== null && v !== undefined && v !== '');
    if (found === undefined) throw new HclEvalError('no non-null, non-empty-string arguments');
    return found;
  }),
};

function evalNode(node: Node, scope: Scope): Value {
  const ev = (n: Node) => evalNode(n, scope);
  switch (node.t) {
    case 'lit':
      return node.v;
    case 'tpl':
      if (node.parts.length === 1 && typeof node.parts[0] !== 'string') {
        return toStr(ev(node.parts[0] as Node), 'template');
      }
      return node.parts
        .map((p) => {
          if (typeof p === 'string') return p;
          const v = ev(p);
          if (v === null) throw new HclEvalError('Invalid template interpolation value: null');
          return toStr(v, 'template');
        })
        .join('');
    case 'ref':
      if (!(node.name in scope)) throw new HclEvalError(`Unknown reference: ${node.name}`);
      return scope[node.name];
    case 'attr': {
      const obj = ev(node.obj);
      if (obj === null || obj === undefined) {
        throw new HclEvalError(`Attempt to get attribute "${node.name}" from a null value`);
      }
      if (!isObject(obj) || !(node.name in obj)) {
        throw new HclEvalError(`Unsupported attribute "${node.name}"`);
      }
      return obj[node.name];
    }
    case 'index': {
      const obj = ev(node.obj);
      const key = ev(node.key);
      if (Array.isArray(obj)) {
        const i = toNum(key, 'index');
        if (i < 0 || i >= obj.length) throw new HclEvalError(`Invalid index ${i}: out of range`);
        return obj[i];
      }
      if (isObject(obj)) {
        const k = toStr(key, 'index');
        if (!(k in obj)) throw new HclEvalError(`Invalid index "${k}"`);
        return obj[k];
      }
      throw new HclEvalError(`Invalid index: a ${typeName(obj)} value cannot be indexed`);
    }
    case 'call': {
      const fn = FUNCTIONS[node.name];
      if (!fn) {
        throw new Error(
          `the sandbox's tofu cannot evaluate the function ${node.name}(): extend sandbox/tofu/hcl-expr.ts`,
        );
      }
      return fn(node.args, ev);
    }
    case 'unary': {
      const x = ev(node.x);
      return node.op === '!' ? !toBool(x, '!') : -toNum(x, '-');
    }
    case 'bin':
      return binary(node.op, node.a, node.b, ev);
    case 'cond':
      return toBool(ev(node.c), 'condition') ? ev(node.a) : ev(node.b);
    case 'list':
      return node.items.map(ev);
    case 'object':
      return Object.fromEntries(node.entries.map(([k, v]) => [toStr(ev(k), 'key'), ev(v)]));
    case 'for':
      return forExpression(node, scope);
  }
}

function binary(op: string, an: Node, bn: Node, ev: (n: Node) => Value): Value {
  if (op === '&&' || op === '||') {
    // HCL evaluates both sides (no short circuit): an error on either side is an error.
    const a = toBool(ev(an), op);
    const b = toBool(ev(bn), op);
    return op === '&&' ? a && b : a || b;
  }
  const a = ev(an);
  const b = ev(bn);
  if (op === '==') return equal(a, b);
  if (op === '!=') return !equal(a, b);
  const x = toNum(a, op);
  const y = toNum(b, op);
  switch (op) {
    case '<':
      return x < y;
    case '>':
      return x > y;
    case '<=':
      return x <= y;
    case '>=':
      return x >= y;
    case '+':
      return x + y;
    case '-':
      return x - y;
    case '*':
      return x * y;
    case '/':
      return x / y;
    default:
      return x % y;
  }
}

function forExpression(node: Extract<Node, { t: 'for' }>, scope: Scope): Value {
  const coll = evalNode(node.coll, scope);
  if (coll === null || coll === undefined) throw new HclEvalError('Iteration over null value');
  const pairs: Array<[Value, Value]> = Array.isArray(coll)
    ? coll.map((v, i) => [i, v])
    : isObject(coll)
      ? Object.entries(coll)
      : [];
  if (!Array.isArray(coll) && !isObject(coll)) {
    throw new HclEvalError(`Iteration over a ${typeName(coll)} value`);
  }
  const out: Value[] = [];
  const obj: Record<string, Value> = {};
  for (const [k, v] of pairs) {
    const inner = { ...scope, [node.valueVar]: v, ...(node.keyVar ? { [node.keyVar]: k } : {}) };
    if (node.cond && !toBool(evalNode(node.cond, inner), 'for condition')) continue;
    if (node.object)
      obj[toStr(evalNode(node.key as Node, inner), 'key')] = evalNode(node.value, inner);
    else out.push(evalNode(node.value, inner));
  }
  return node.object ? obj : out;
}

/** Evaluates an hcl2json value: `${expr}` as the expression, other strings as templates. */
export function evalHcl(raw: Value, scope: Scope): Value {
  if (Array.isArray(raw)) return raw.map((v) => evalHcl(v, scope));
  if (isObject(raw)) {
    // A key written as an expression, `(local.key) = …`, reaches us as `${(local.key)}`.
    return Object.fromEntries(
      Object.entries(raw).map(([k, v]) => [
        k.includes('${') ? toStr(evalHcl(k, scope), 'object key') : k,
        evalHcl(v, scope),
      ]),
    );
  }
  if (typeof raw !== 'string' || !raw.includes('${')) return raw;
  // hcl2json keeps expression source inside ${…} as written, escapes included: parse it as HCL.
  const whole = /^\$\{([\s\S]*)\}$/.exec(raw);
  if (whole && balanced(whole[1] as string)) return evalExpression(whole[1] as string, scope);
  return evalNode(new Parser(raw).bareTemplate(), scope);
}

/** True when `${…}` wraps one expression, not `${a}-${b}`. */
function balanced(inner: string): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < inner.length; i++) {
    const ch = inner[i];
    if (inString) {
      if (ch === '\\') i++;
      else if (ch === '"') inString = false;
      continue;
    }
    if (ch === '"') inString = true;
    else if (ch === '{') depth++;
    else if (ch === '}') {
      depth--;
      if (depth < 0) return false;
    }
  }
  return depth === 0;
}

export function evalExpression(source: string, scope: Scope): Value {
  return evalNode(new Parser(source).parseAll(), scope);
}
