// Evidence of a criterion as the runbooks record it (ctx.evidence: the note `evidence.<id>` and
// one printed line), and the question a re-run asks before proving it again: was it proven?
// `--recheck` sets aside what earlier runs proved, never what this run just proved.
import type { EvidenceId } from '../names.ts';

/** The part of a StepContext this needs. */
export interface ProofContext {
  readonly state: Record<string, unknown>;
  readonly flags: Readonly<Record<string, string | boolean | undefined>>;
  recall<T = unknown>(key: string): Promise<T | undefined>;
  evidence(id: EvidenceId, line: string, data?: Record<string, unknown>): Promise<void>;
}

const key = (id: string) => `proof.${id}`;

/** Records the evidence; `data.met` says whether the criterion was met. */
export async function recordProof(
  ctx: ProofContext,
  id: EvidenceId,
  line: string,
  data: Record<string, unknown> & { met: boolean },
): Promise<void> {
  await ctx.evidence(id, line, data);
  ctx.state[key(id)] = data.met;
}

/** Every id met: in this run, or (without --recheck) in an earlier real run of this runbook. */
export async function proven(ctx: ProofContext, ...ids: string[]): Promise<boolean> {
  for (const id of ids) {
    const now = ctx.state[key(id)];
    if (now !== undefined) {
      if (now !== true) return false;
      continue;
    }
    if (ctx.flags.recheck) return false;
    const earlier = await ctx.recall<{ met?: boolean }>(`evidence.${id}`);
    if (earlier?.met !== true) return false;
  }
  return true;
}

/** The verdict of a criterion that is configured but that this run could not prove. */
export const NOT_PROVEN = 'not proven';

/**
 * Records evidence without claiming the criterion: `data.toProve` says what to set or do so a
 * later run proves it. The report shows it "not proven"; the step counts it as judged.
 */
export async function recordNotProven(
  ctx: ProofContext,
  id: EvidenceId,
  line: string,
  data: Record<string, unknown> & { toProve: string },
): Promise<void> {
  await ctx.evidence(id, line, { ...data, met: NOT_PROVEN });
  ctx.state[key(id)] = NOT_PROVEN;
}

/** Every id met or recorded "not proven" (never NOT met): in this run, or an earlier real one. */
export async function judged(ctx: ProofContext, ...ids: string[]): Promise<boolean> {
  for (const id of ids) {
    const now = ctx.state[key(id)];
    if (now !== undefined) {
      if (now !== true && now !== NOT_PROVEN) return false;
      continue;
    }
    if (ctx.flags.recheck) return false;
    const earlier = await ctx.recall<{ met?: unknown }>(`evidence.${id}`);
    if (earlier?.met !== true && earlier?.met !== NOT_PROVEN) return false;
  }
  return true;
}
