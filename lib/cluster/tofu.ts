// OpenTofu as the runbooks use it: init, validate, fmt -check, a saved plan summarised from
// `show -json`, the apply of exactly that saved plan, and outputs. Every call goes through the
// step's ctx.tofu, so dry run, audit and masking apply as for any command: plan is a read and
// runs in a dry run; apply is a mutation and is only printed there.
import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { isAbsolute, join, resolve } from 'node:path';
import type { Config } from '../config.ts';
import { registerSecret } from '../mask.ts';

/** The part of a StepContext this module needs (lib/engine/step-context.ts). */
export interface TofuContext {
  readonly cfg: Pick<Config, 'tofu' | 'kubeContext' | 'kubeconfig'>;
  tofu(
    args: readonly string[],
    options?: { retries?: number; env?: Record<string, string | undefined> },
  ): Promise<{ stdout: string }>;
}

export type TofuAction = 'create' | 'update' | 'delete' | 'replace' | 'no-op' | 'read';

export interface TofuChange {
  address: string;
  type: string;
  action: TofuAction;
}

export interface TofuPlan {
  /** absolute path of the saved plan */
  file: string;
  /** sha256 of the saved plan file, hex: what the operator confirms and apply checks */
  sha256: string;
  /** every managed resource the plan touches or keeps, in plan order */
  changes: TofuChange[];
  /** `7 to add, 0 to change, 0 to destroy`, counted as tofu counts (a replace adds and destroys) */
  summary: string;
}

/** What the plan would change: its changes without the no-ops. */
export function pendingChanges(plan: Pick<TofuPlan, 'changes'>): TofuChange[] {
  return plan.changes.filter((c) => c.action !== 'no-op');
}

export interface PlanOptions {
  out: string;
  vars?: Record<string, string>;
  targets?: string[];
  /** `-replace=ADDRESS`: resource instances to plan as a replace even when unchanged */
  replace?: string[];
}

/**
 * The saved plan cannot be applied as it was confirmed (unreadable, changed, or stale against the
 * state): nothing was applied.
 */
export class TofuPlanChangedError extends Error {
  override readonly name = 'TofuPlanChangedError';
}

// tofu must reach the cluster the run pinned and checked. OpenTofu ranks variable values
// -var/-var-file > *.auto.tfvars > terraform.tfvars > TF_VAR_* > defaults
// (https://opentofu.org/docs/language/values/variables/#variable-definition-precedence), so a
// TF_VAR_kube_context would lose to a copied terraform.tfvars: the context and kubeconfig go on
// the plan's command line as -var (neither is secret), and a tfvars file that names another
// context stops the run before any plan. init and validate read no cluster; they get the same
// values as TF_VAR_* so nothing falls back to the defaults there either.
function pinnedCluster(ctx: TofuContext): Record<string, string> {
  return {
    kube_context: ctx.cfg.kubeContext,
    // As kubectl does without KUBECONFIG.
    kubeconfig_path: ctx.cfg.kubeconfig ?? '~/.kube/config',
  };
}

function pinEnv(ctx: TofuContext): Record<string, string | undefined> {
  return Object.fromEntries(
    Object.entries(pinnedCluster(ctx)).map(([name, value]) => [`TF_VAR_${name}`, value]),
  );
}

/** A tfvars file of the environment names a context other than the pinned one. */
export class TofuContextMismatchError extends Error {
  override readonly name = 'TofuContextMismatchError';
}

/** The tfvars files OpenTofu loads by itself, in its order. */
async function autoVarFiles(dir: string): Promise<string[]> {
  const names = await readdir(dir).catch(() => [] as string[]);
  return [
    ...['terraform.tfvars', 'terraform.tfvars.json'].filter((n) => names.includes(n)),
    ...names.filter((n) => /\.auto\.tfvars(\.json)?$/.test(n)).sort(),
  ];
}

/** `kube_context` as a tfvars file sets it (HCL or JSON), if it does. */
export function tfvarsContext(file: string, text: string): string | undefined {
  if (file.endsWith('.json')) {
    const value = (JSON.parse(text) as Record<string, unknown>).kube_context;
    return value === undefined ? undefined : String(value);
  }
  const line = text
    .split('\n')
    .map((l) => l.replace(/(^|\s)(#|\/\/).*$/, ''))
    .find((l) => /^\s*kube_context\s*=/.test(l));
  return line
    ?.replace(/^\s*kube_context\s*=\s*/, '')
    .trim()
    .replace(/^"(.*)"$/, '$1');
}

/**
 * Refuses before any plan when a tfvars file in the environment names a context other than the
 * pinned one: the -var overrides it, but the file says the operator meant another cluster.
 */
export async function assertTfvarsContext(ctx: TofuContext): Promise<void> {
  for (const file of await autoVarFiles(ctx.cfg.tofu.dir)) {
    const named = tfvarsContext(file, await readFile(join(ctx.cfg.tofu.dir, file), 'utf8'));
    if (named !== undefined && named !== ctx.cfg.kubeContext) {
      throw new TofuContextMismatchError(
        `${join(ctx.cfg.tofu.dir, file)} sets kube_context = "${named}", but this run is pinned to context "${ctx.cfg.kubeContext}" (KUBE_CONTEXT) and checked that cluster; nothing was planned. Remove kube_context from ${file} (the runbooks pass the pinned context themselves), or set KUBE_CONTEXT=${named} if that is the cluster you mean`,
      );
    }
  }
}

export async function tofuInit(ctx: TofuContext): Promise<void> {
  await ctx.tofu(['init', '-input=false', '-no-color'], { env: pinEnv(ctx) });
}

export async function tofuValidate(ctx: TofuContext): Promise<void> {
  await ctx.tofu(['validate', '-no-color'], { env: pinEnv(ctx) });
}

/** The files `fmt` would rewrite; empty when everything is formatted. */
export async function tofuFmtCheck(ctx: TofuContext): Promise<string[]> {
  try {
    await ctx.tofu(['fmt', '-check', '-recursive', '-no-color']);
    return [];
  } catch (err) {
    // fmt -check exits 3 and lists the files; anything else is a real failure.
    const e = err as { exitCode?: number; stdout?: string };
    if (e.exitCode !== 3) throw err;
    return (e.stdout ?? '').split('\n').filter(Boolean);
  }
}

export async function tofuPlan(ctx: TofuContext, options: PlanOptions): Promise<TofuPlan> {
  await assertTfvarsContext(ctx);
  const file = isAbsolute(options.out) ? options.out : resolve(ctx.cfg.tofu.dir, options.out);
  const vars = Object.entries({ ...options.vars, ...pinnedCluster(ctx) }).flatMap(([k, v]) => [
    '-var',
    `${k}=${v}`,
  ]);
  const targets = (options.targets ?? []).map((t) => `-target=${t}`);
  const replace = (options.replace ?? []).map((r) => `-replace=${r}`);
  await ctx.tofu([
    'plan',
    '-input=false',
    '-no-color',
    `-out=${file}`,
    ...vars,
    ...targets,
    ...replace,
  ]);
  const sha256 = await fileSha256(file);
  const shown = await ctx.tofu(['show', '-json', '-no-color', file]);
  const changes = summariseChanges(JSON.parse(shown.stdout) as ShowJson);
  return { file, sha256, changes, summary: planSummary(changes) };
}

/**
 * Applies exactly the saved plan that was confirmed: refused when the file's hash differs (it
 * was re-planned or edited since), and never tried twice — a half-applied plan needs a person.
 */
export async function tofuApply(
  ctx: TofuContext,
  plan: Pick<TofuPlan, 'file' | 'sha256'>,
): Promise<void> {
  const now = await fileSha256(plan.file).catch((err: NodeJS.ErrnoException) => {
    throw new TofuPlanChangedError(
      `the confirmed plan ${plan.file} cannot be read (${err.code ?? err.message}); nothing was applied. Run the plan step again and confirm the new plan`,
    );
  });
  if (now !== plan.sha256) {
    throw new TofuPlanChangedError(
      `the plan ${plan.file} changed after it was confirmed (sha256 ${short(plan.sha256)}… confirmed, ${short(now)}… now); nothing was applied. Run the plan step again and confirm the new plan`,
    );
  }
  // The saved plan carries its variables, the pinned context among them (tofu refuses -var here).
  await ctx.tofu(['apply', '-input=false', '-no-color', plan.file], { retries: 0 }).catch((err) => {
    // OpenTofu checks a saved plan against the state before it applies anything
    // (internal/backend/local/backend_apply.go: "Saved plan is stale").
    if (
      /Saved plan is stale/.test(
        `${(err as Error).message}\n${(err as { stderr?: string }).stderr ?? ''}`,
      )
    ) {
      throw new TofuPlanChangedError(
        `the plan ${plan.file} is stale: the state changed since it was made, and OpenTofu refuses it; nothing was applied. Run the plan step again and confirm the new plan`,
      );
    }
    throw err;
  });
}

/** Each output's value; sensitive string values are registered for masking first. */
export async function tofuOutputs(ctx: TofuContext): Promise<Record<string, unknown>> {
  const { stdout } = await ctx.tofu(['output', '-json', '-no-color']);
  const outputs = JSON.parse(stdout || '{}') as Record<
    string,
    { value: unknown; sensitive?: boolean }
  >;
  const values: Record<string, unknown> = {};
  for (const [name, output] of Object.entries(outputs)) {
    if (output.sensitive) registerStrings(output.value);
    values[name] = output.value;
  }
  return values;
}

interface ShowJson {
  resource_changes?: {
    address: string;
    mode?: string;
    type: string;
    change: { actions: string[] };
  }[];
}

export function summariseChanges(show: ShowJson): TofuChange[] {
  return (show.resource_changes ?? [])
    .filter((c) => c.mode !== 'data')
    .map((c) => ({ address: c.address, type: c.type, action: actionOf(c.change.actions) }));
}

function actionOf(actions: string[]): TofuAction {
  if (actions.includes('create') && actions.includes('delete')) return 'replace';
  const [first] = actions;
  if (first === 'create' || first === 'update' || first === 'delete' || first === 'read') {
    return first;
  }
  return 'no-op';
}

export function planSummary(changes: TofuChange[]): string {
  const count = (...actions: TofuAction[]) =>
    changes.filter((c) => actions.includes(c.action)).length;
  return `${count('create', 'replace')} to add, ${count('update')} to change, ${count('delete', 'replace')} to destroy`;
}

async function fileSha256(path: string): Promise<string> {
  return createHash('sha256')
    .update(await readFile(path))
    .digest('hex');
}

const short = (hash: string) => hash.slice(0, 12);

function registerStrings(value: unknown): void {
  if (typeof value === 'string') registerSecret(value);
  else if (value && typeof value === 'object')
    for (const v of Object.values(value)) registerStrings(v);
}
