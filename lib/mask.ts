// Every secret the runbooks learn (the Redis password above all) is registered here first, so
// anything printed, audited or thrown can be passed through maskSecrets() before it leaves.
// A secret is masked in every form the project or the tools it runs may write it in: as is,
// URL-encoded, JSON-escaped, shell-quoted, hex, and base64 at any byte offset (a base64-encoded
// redis:// URL or JSON document holds the password at an offset the plain base64 does not match).

const MASK = '***';
export const MIN_SECRET_LENGTH = 4;
const BASE64_CHAR = /[A-Za-z0-9+/_-]/;

/** A secret too short to mask: its renderings would also match ordinary text, or be missed. */
export class SecretTooShortError extends Error {
  override name = 'SecretTooShortError';
}

const registered = new Set<string>();
/** forms matched exactly */
const literals = new Set<string>();
/** base64 runs that hold the secret's bytes at some offset; one neighbouring character each
 * side carries some of the secret's bits too, so it is masked with the run */
const base64Runs = new Set<string>();

/**
 * Registers a secret (undefined, null or '' mean "no secret" and are ignored). A secret of fewer
 * than MIN_SECRET_LENGTH characters is refused: masking it reliably is impossible.
 */
export function registerSecret(value: string | undefined | null): void {
  if (value === undefined || value === null || value === '') return;
  if ([...value].length < MIN_SECRET_LENGTH) {
    throw new SecretTooShortError(
      `a secret of fewer than ${MIN_SECRET_LENGTH} characters cannot be masked in output, so it is refused; use a longer password (the redis-shared module generates 32 characters)`,
    );
  }
  if (registered.has(value)) return;
  registered.add(value);
  const texts = textForms(value);
  for (const text of texts) literals.add(text);
  for (const text of texts) {
    const bytes = Buffer.from(text, 'utf8');
    literals.add(bytes.toString('hex'));
    literals.add(bytes.toString('hex').toUpperCase());
    literals.add(bytes.toString('base64'));
    for (const run of base64RunsOf(bytes)) base64Runs.add(run);
  }
  literals.delete('');
}

function textForms(value: string): string[] {
  const json = JSON.stringify(value).slice(1, -1);
  const asciiJson = json.replace(
    /[\u0080-\uffff]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
  return [
    value,
    ...urlForms(value),
    json,
    asciiJson,
    asciiJson.replace(/\\u[0-9a-f]{4}/g, (u) => u.toUpperCase().replace('\\U', '\\u')),
    JSON.stringify(json).slice(1, -1),
    value.replaceAll("'", `'\\''`),
    value.replace(/[\\"$`]/g, '\\$&'),
  ];
}

function urlForms(value: string): string[] {
  const component = encodeURIComponent(value);
  const strict = component.replace(
    /[!'()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
  const url = new URL('redis://host');
  url.password = value;
  const userinfo = url.password;
  const form = new URLSearchParams({ p: value }).toString().slice(2);
  const forms = [component, strict, userinfo, form, encodeURI(value)];
  return [...forms, ...forms.map((f) => f.replace(/%[0-9A-F]{2}/g, (m) => m.toLowerCase()))].filter(
    (f) => f !== value,
  );
}

/** The base64 characters fully determined by `bytes` when they start at byte offset 0, 1 or 2. */
function base64RunsOf(bytes: Buffer): string[] {
  const runs: string[] = [];
  for (const shift of [0, 1, 2]) {
    const shifted = Buffer.concat([Buffer.alloc(shift), bytes]);
    const start = Math.ceil((shift * 8) / 6);
    const end = Math.floor((shifted.length * 8) / 6);
    for (const alphabet of ['base64', 'base64url'] as const) {
      const run = shifted.toString(alphabet).slice(start, end);
      if (run.length >= MIN_SECRET_LENGTH) runs.push(run);
    }
  }
  return runs;
}

/** Replaces every registered secret, in every form, with ***; overlapping matches merge. */
export function maskSecrets(text: string): string {
  if (registered.size === 0 || text === '') return text;
  const spans: Array<[number, number]> = [];
  for (const literal of literals) {
    for (let at = text.indexOf(literal); at >= 0; at = text.indexOf(literal, at + 1)) {
      spans.push([at, at + literal.length]);
    }
  }
  for (const run of base64Runs) {
    for (let at = text.indexOf(run); at >= 0; at = text.indexOf(run, at + 1)) {
      let from = at;
      let to = at + run.length;
      if (from > 0 && BASE64_CHAR.test(text[from - 1] as string)) from -= 1;
      if (to < text.length && BASE64_CHAR.test(text[to] as string)) to += 1;
      while (text[to] === '=') to += 1;
      spans.push([from, to]);
    }
  }
  if (spans.length === 0) return text;
  spans.sort((a, b) => a[0] - b[0]);
  let out = '';
  let cursor = 0;
  let [from, to] = spans[0] as [number, number];
  for (const [start, end] of spans) {
    if (start <= to) {
      to = Math.max(to, end);
      continue;
    }
    out += text.slice(cursor, from) + MASK;
    cursor = to;
    from = start;
    to = end;
  }
  return out + text.slice(cursor, from) + MASK + text.slice(to);
}

/** Masks secrets in every string found inside a JSON-like value (for audit entries, results). */
export function maskDeep<T>(value: T): T {
  if (typeof value === 'string') return maskSecrets(value) as T;
  if (Array.isArray(value)) return value.map((v) => maskDeep(v)) as T;
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = maskDeep(v);
    return out as T;
  }
  return value;
}

/** An Error whose message and stack no longer carry any registered secret. */
export function maskError(err: unknown): Error {
  if (err instanceof Error) {
    const masked = new Error(maskSecrets(err.message));
    masked.name = err.name;
    if (err.stack) masked.stack = maskSecrets(err.stack);
    const code = (err as { code?: unknown }).code;
    if (code !== undefined) Object.assign(masked, { code });
    return masked;
  }
  return new Error(maskSecrets(String(err)));
}

/** Tests only: forget every registered secret. */
export function clearSecretsForTests(): void {
  registered.clear();
  literals.clear();
  base64Runs.clear();
}
