// Evidence of a criterion as the runbooks record it (ctx.evidence: the note `evidence.<id>` and
// one printed line), and the question a re-run asks before proving it again: was it proven?
// `--recheck` sets aside what earlier runs proved, never what this run just proved.

/** The part of a StepContext this needs. */
export interface ProofContext {
  readonly state: Record<string, unknown>;
  readonly flags: Readonly<Record<string, string | boolean | undefined>>;
  recall<T = unknown>(key: string): Promise<T | undefined>;
  evidence(id: string, line: string, data?: Record<string, unknown>): Promise<void>;
}

const key = (id: string) => `proof.${id}`;

/** Records the evidence; `data.met` says whether the criterion was met. */
export async function recordProof(
  ctx: ProofContext,
  id: string,
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
