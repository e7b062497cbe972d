// OpenTofu as the runbooks use it: init, validate, fmt -check, a saved plan summarised from
// `show -json`, the apply of exactly that saved plan, and outputs. Every call goes through the
// step's ctx.tofu, so dry run, audit and masking apply as for any command: plan is a read and
// runs in a dry run; apply is a mutation and is only printed there.
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { isAbsolute, resolve } from 'node:path';
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

export interface PlanOptions {
  out: string;
  vars?: Record<string, string>;
  targets?: string[];
}

/** The saved plan differs from the one that was confirmed: nothing was applied. */
export class TofuPlanChangedError extends Error {
  override readonly name = 'TofuPlanChangedError';
}

// The providers reach the same cluster the run is pinned to, whatever the tfvars say about it;
// as TF_VAR_* they stay out of argv and below -var/-var-file in tofu's precedence.
function pinEnv(ctx: TofuContext): Record<string, string | undefined> {
  return {
    TF_VAR_kube_context: ctx.cfg.kubeContext,
    ...(ctx.cfg.kubeconfig ? { TF_VAR_kubeconfig_path: ctx.cfg.kubeconfig } : {}),
  };
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
  const file = isAbsolute(options.out) ? options.out : resolve(ctx.cfg.tofu.dir, options.out);
  const vars = Object.entries(options.vars ?? {}).flatMap(([k, v]) => ['-var', `${k}=${v}`]);
  const targets = (options.targets ?? []).map((t) => `-target=${t}`);
  await ctx.tofu(['plan', '-input=false', '-no-color', `-out=${file}`, ...vars, ...targets], {
    env: pinEnv(ctx),
  });
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
  await ctx.tofu(['apply', '-input=false', '-no-color', plan.file], {
    retries: 0,
    env: pinEnv(ctx),
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
