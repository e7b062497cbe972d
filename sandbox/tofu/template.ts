// templatefile() for the subset of Terraform's template language the modules use: `${a.b}`
// interpolation, `%{ for x in list }…%{ endfor }`, `%{ if x }…%{ else }…%{ endif }`, the `~`
// strip markers and the `$${` / `%%{` escapes. Anything else is an error, not a wrong rendering.

type Token = { text: string } | { interp: string } | { directive: string[] };

export function renderTemplate(template: string, vars: Record<string, unknown>): string {
  const tokens = tokenize(template);
  let at = 0;
  const render = (
    scope: Record<string, unknown>,
    until: string[],
  ): { out: string; end: string } => {
    let out = '';
    while (at < tokens.length) {
      const token = tokens[at++] as Token;
      if ('text' in token) out += token.text;
      else if ('interp' in token) out += scalar(token.interp, lookup(token.interp, scope));
      else {
        const [word = '', ...rest] = token.directive;
        if (until.includes(word)) return { out, end: word };
        if (word === 'for') {
          const [name = '', inWord, listExpr = ''] = rest;
          if (inWord !== 'in')
            throw new Error(`unsupported directive %{ ${token.directive.join(' ')} }`);
          const list = lookup(listExpr, scope);
          if (!Array.isArray(list)) throw new Error(`"${listExpr}" is not a list`);
          const bodyStart = at;
          if (list.length === 0) {
            skip(['endfor']);
            continue;
          }
          for (const item of list) {
            at = bodyStart;
            out += render({ ...scope, [name]: item }, ['endfor']).out;
          }
        } else if (word === 'if') {
          const condition = Boolean(lookup(rest.join(' '), scope));
          if (condition) {
            const branch = render(scope, ['else', 'endif']);
            out += branch.out;
            if (branch.end === 'else') skip(['endif']);
          } else {
            const end = skip(['else', 'endif']);
            if (end === 'else') out += render(scope, ['endif']).out;
          }
        } else {
          throw new Error(`unsupported directive %{ ${token.directive.join(' ')} }`);
        }
      }
    }
    if (until.length > 0) throw new Error(`missing %{ ${until.join(' or ')} }`);
    return { out, end: '' };
  };
  // Moves past a block without rendering it, honouring nested blocks.
  const skip = (until: string[]): string => {
    let depth = 0;
    while (at < tokens.length) {
      const token = tokens[at++] as Token;
      if (!('directive' in token)) continue;
      const word = token.directive[0] ?? '';
      if (word === 'for' || word === 'if') depth++;
      else if ((word === 'endfor' || word === 'endif') && depth > 0) depth--;
      else if (depth === 0 && until.includes(word)) return word;
    }
    throw new Error(`missing %{ ${until.join(' or ')} }`);
  };
  return render(vars, []).out;
}

function tokenize(template: string): Token[] {
  const tokens: Token[] = [];
  let text = '';
  let i = 0;
  while (i < template.length) {
    const three = template.slice(i, i + 3);
    const two = template.slice(i, i + 2);
    if (three === '$${' || three === '%%{') {
      text += three.slice(1);
      i += 3;
    } else if (two === '${' || two === '%{') {
      const end = template.indexOf('}', i + 2);
      if (end < 0) throw new Error(`unterminated ${two} at offset ${i}`);
      let inner = template.slice(i + 2, end);
      if (inner.startsWith('~')) {
        text = text.replace(/\s+$/, '');
        inner = inner.slice(1);
      }
      const stripAfter = inner.endsWith('~');
      if (stripAfter) inner = inner.slice(0, -1);
      if (text) tokens.push({ text });
      text = '';
      tokens.push(
        two === '${' ? { interp: inner.trim() } : { directive: inner.trim().split(/\s+/) },
      );
      i = end + 1;
      if (stripAfter) while (i < template.length && /\s/.test(template[i] as string)) i++;
    } else {
      text += template[i];
      i++;
    }
  }
  if (text) tokens.push({ text });
  return tokens;
}

function lookup(expr: string, scope: Record<string, unknown>): unknown {
  if (!/^[A-Za-z_]\w*(\.\w+)*$/.test(expr))
    throw new Error(`unsupported template expression "${expr}"`);
  const [head = '', ...path] = expr.split('.');
  if (!(head in scope)) throw new Error(`vars map does not contain key "${head}"`);
  let value = scope[head];
  for (const key of path) {
    if (!value || typeof value !== 'object' || !(key in value))
      throw new Error(`"${expr}": no attribute "${key}"`);
    value = (value as Record<string, unknown>)[key];
  }
  return value;
}

function scalar(expr: string, value: unknown): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  throw new Error(`"${expr}" is not a string, number or bool`);
}
