// A renderer for the part of Terraform's template language our templates use: `${a.b.c}`
// interpolation, `%{ for x in list }…%{ endfor }` and `%{ if name }…%{ else }…%{ endif }`, the
// `~` whitespace strip markers and the `$${` / `%%{` escapes. Anything else is an error, so a
// template that grows beyond this subset fails its test instead of rendering wrongly.

export type TemplateVars = Record<string, unknown>;

type Token =
  | { kind: 'text'; text: string }
  | { kind: 'interp'; expr: string }
  | { kind: 'directive'; words: string[] };

function tokenize(template: string): Token[] {
  const tokens: Token[] = [];
  let text = '';
  let i = 0;
  const pushText = () => {
    if (text) tokens.push({ kind: 'text', text });
    text = '';
  };
  while (i < template.length) {
    const two = template.slice(i, i + 2);
    const three = template.slice(i, i + 3);
    if (three === `$\${` || three === '%%{') {
      text += three.slice(1);
      i += 3;
      continue;
    }
    if (two === `\${` || two === '%{') {
      const end = template.indexOf('}', i + 2);
      if (end < 0) throw new Error(`unterminated ${two} at offset ${i}`);
      let inner = template.slice(i + 2, end);
      if (inner.startsWith('~')) {
        text = text.replace(/\s+$/, '');
        inner = inner.slice(1);
      }
      let stripAfter = false;
      if (inner.endsWith('~')) {
        stripAfter = true;
        inner = inner.slice(0, -1);
      }
      pushText();
      tokens.push(
        two === `\${`
          ? { kind: 'interp', expr: inner.trim() }
          : { kind: 'directive', words: inner.trim().split(/\s+/) },
      );
      i = end + 1;
      if (stripAfter) {
        while (i < template.length && /\s/.test(template[i] as string)) i++;
      }
      continue;
    }
    text += template[i];
    i++;
  }
  pushText();
  return tokens;
}

function lookup(expr: string, scope: TemplateVars): unknown {
  if (!/^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$/.test(expr)) {
    throw new Error(`unsupported template expression "${expr}" (only names and a.b.c paths)`);
  }
  const [head, ...path] = expr.split('.') as [string, ...string[]];
  if (!(head in scope)) throw new Error(`vars map does not contain key "${head}"`);
  let value = scope[head];
  for (const key of path) {
    if (!value || typeof value !== 'object' || !(key in value)) {
      throw new Error(`"${expr}": no attribute "${key}"`);
    }
    value = (value as Record<string, unknown>)[key];
  }
  return value;
}

function stringify(expr: string, value: unknown): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  throw new Error(`"${expr}" is not a string, number or bool and cannot be interpolated`);
}

interface Frame {
  tokens: Token[];
  pos: number;
}

/**
 * Renders tokens until one of the `stops` directives. With `evaluate` false it only walks past
 * the tokens (the body of a loop over an empty list, the branch not taken), like Terraform,
 * which never evaluates what it does not render.
 */
function renderUntil(
  frame: Frame,
  scope: TemplateVars,
  stops: string[],
  evaluate = true,
): [string, string] {
  let out = '';
  while (frame.pos < frame.tokens.length) {
    const token = frame.tokens[frame.pos++] as Token;
    if (token.kind === 'text') out += token.text;
    else if (token.kind === 'interp') {
      if (evaluate) out += stringify(token.expr, lookup(token.expr, scope));
    } else {
      const [word, ...rest] = token.words as [string, ...string[]];
      if (stops.includes(word)) return [out, word];
      if (word === 'for') {
        const [name, inWord, listExpr] = rest;
        if (!name || inWord !== 'in' || !listExpr || rest.length !== 3) {
          throw new Error(`unsupported directive "%{ ${token.words.join(' ')} }"`);
        }
        const list = evaluate ? lookup(listExpr, scope) : [];
        if (!Array.isArray(list)) throw new Error(`"${listExpr}" is not a list`);
        const bodyStart = frame.pos;
        renderUntil(frame, scope, ['endfor'], false);
        const bodyEnd = frame.pos;
        for (const item of list) {
          frame.pos = bodyStart;
          out += renderUntil(frame, { ...scope, [name]: item }, ['endfor'])[0];
        }
        frame.pos = bodyEnd;
      } else if (word === 'if') {
        if (rest.length !== 1) throw new Error(`unsupported condition "${rest.join(' ')}"`);
        const cond = evaluate ? lookup(rest[0] as string, scope) : false;
        if (typeof cond !== 'boolean') throw new Error(`"${rest[0]}" is not a bool`);
        const [thenPart, stop] = renderUntil(frame, scope, ['else', 'endif'], evaluate && cond);
        let elsePart = '';
        if (stop === 'else') [elsePart] = renderUntil(frame, scope, ['endif'], evaluate && !cond);
        out += cond ? thenPart : elsePart;
      } else {
        throw new Error(`unexpected directive "%{ ${token.words.join(' ')} }"`);
      }
    }
  }
  if (stops.length > 0) throw new Error(`missing %{ ${stops.join(' / ')} }`);
  return [out, ''];
}

/** Renders like Terraform's templatefile(path, vars) for the supported subset. */
export function renderTemplate(template: string, vars: TemplateVars): string {
  const frame: Frame = { tokens: tokenize(template), pos: 0 };
  return renderUntil(frame, vars, [])[0];
}

/** Names a template interpolates or loops over at top level (loop variables excluded). */
export function templateVariableNames(template: string): string[] {
  const names = new Set<string>();
  const loopVars = new Set<string>();
  for (const token of tokenize(template)) {
    if (token.kind === 'directive' && token.words[0] === 'for') {
      loopVars.add(token.words[1] as string);
      names.add((token.words[3] as string).split('.')[0] as string);
    } else if (token.kind === 'directive' && token.words[0] === 'if') {
      names.add((token.words[1] as string).split('.')[0] as string);
    } else if (token.kind === 'interp') {
      names.add(token.expr.split('.')[0] as string);
    }
  }
  return [...names].filter((n) => !loopVars.has(n)).sort();
}
