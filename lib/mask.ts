// Every secret the runbooks learn (the Redis password above all) is registered here first, so
// anything printed, audited or thrown can be passed through maskSecrets() before it leaves.

const MASK = '***';
const MIN_SECRET_LENGTH = 4;
const secrets = new Set<string>();

export function registerSecret(value: string | undefined | null): void {
  if (!value || value.length < MIN_SECRET_LENGTH) return;
  secrets.add(value);
  // Kubernetes hands secrets out base64-encoded; mask that form too.
  secrets.add(Buffer.from(value, 'utf8').toString('base64'));
}

export function maskSecrets(text: string): string {
  let out = text;
  // Longest first, so a secret that contains another is masked whole.
  for (const secret of [...secrets].sort((a, b) => b.length - a.length)) {
    out = out.split(secret).join(MASK);
  }
  return out;
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
  secrets.clear();
}
