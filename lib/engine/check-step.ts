// Read-only check steps, in the two shapes the phase runbooks use. A check's post-condition is
// the check itself: when it holds the step is recorded verified-done, so a re-run after success
// is all verified-done; when it does not, run() reports it.
// - strict: the step fails with what was found and what to fix (02–04: a later step needs it).
// - deferred: the failure is collected and the run goes on, so every failed preflight check is
//   listed at once by the verdict step (01-setup: "all failures are listed at once").
import { formatFailures, type Judgement, type PreflightFailure } from './judgement.ts';
import type { Risk } from './risk.ts';
import type { StepDefinition } from './runbook.ts';
import type { StepContext } from './step-context.ts';

export type Check = (ctx: StepContext) => Promise<Judgement> | Judgement;

const FAILURES = 'checkStep.failures';

function cacheKey(id: string): string {
  return `checkStep.${id}`;
}

async function judged(ctx: StepContext, id: string, check: Check): Promise<Judgement> {
  const cached = ctx.state[cacheKey(id)] as Judgement | undefined;
  if (cached) return cached;
  // A check that cannot be made (an API error, a kind the cluster does not serve) has failed.
  const judgement = await Promise.resolve()
    .then(() => check(ctx))
    .catch((err: unknown): Judgement => {
      if (ctx.signal?.aborted) throw err; // an interrupt stops the run, it is no verdict
      return {
        ok: false,
        detail: `the check could not be made: ${err instanceof Error ? err.message : String(err)}`,
        fix: 'see the error; check the cluster is reachable and KUBE_CONTEXT is right',
      };
    });
  ctx.state[cacheKey(id)] = judgement;
  return judgement;
}

function printed(ctx: StepContext, j: Judgement): void {
  ctx.log.info(j.ok ? `  ✓ ${j.detail}` : `  ✗ ${j.detail}${j.fix ? `\n    fix: ${j.fix}` : ''}`);
}

export function failuresSoFar(ctx: StepContext): PreflightFailure[] {
  ctx.state[FAILURES] ??= [];
  return ctx.state[FAILURES] as PreflightFailure[];
}

interface CheckStepDefinition {
  id: string;
  title: string;
  check: Check;
  risk?: Risk;
  /** a reason when the check does not apply (recorded as skipped) */
  skip?: (ctx: StepContext) => string | undefined | Promise<string | undefined>;
}

/** A check that fails its step (and so the run) when it does not hold. */
export function strictCheck(def: CheckStepDefinition): StepDefinition {
  return {
    id: def.id,
    title: def.title,
    risk: def.risk ?? 'read',
    ...(def.skip ? { skip: def.skip } : {}),
    done: async (ctx) => {
      const j = await judged(ctx, def.id, def.check);
      if (j.ok) printed(ctx, j);
      return j.ok;
    },
    run: async (ctx) => {
      // done() saw it fail; judge again, things may have moved since.
      delete ctx.state[cacheKey(def.id)];
      const j = await judged(ctx, def.id, def.check);
      printed(ctx, j);
      if (!j.ok) throw new Error(`${j.detail}${j.fix ? `. Fix: ${j.fix}` : ''}`);
    },
  } as StepDefinition;
}

/** A check whose failure is collected for the verdict step instead of stopping the run. */
export function deferredCheck(def: CheckStepDefinition): StepDefinition {
  return {
    id: def.id,
    title: def.title,
    risk: def.risk ?? 'read',
    done: async (ctx) => {
      const j = await judged(ctx, def.id, def.check);
      if (j.ok) printed(ctx, j);
      return j.ok;
    },
    run: async (ctx) => {
      const j = await judged(ctx, def.id, def.check);
      printed(ctx, j);
      if (!j.ok) {
        failuresSoFar(ctx).push({ step: def.id, detail: j.detail, fix: j.fix ?? 'see above' });
      }
    },
    verify: () => true,
  } as StepDefinition;
}

/** The last step of a deferred series: fails with every collected failure at once. */
export function verdictStep(id: string, title: string): StepDefinition {
  return {
    id,
    title,
    risk: 'read',
    done: (ctx) => failuresSoFar(ctx).length === 0,
    run: (ctx) => {
      const failures = failuresSoFar(ctx);
      if (failures.length > 0)
        throw new Error(formatFailures(failures, `./runbooks/${ctx.runbook}.mts`));
    },
  };
}
