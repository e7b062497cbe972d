// Shared by the drills of 03-access and 04-monitoring (not a runbook): a drill that scales a
// StatefulSet down notes what it stopped first, so the drill's own failure path, or the next
// run's first step after an interruption, scales it back.
import type { StepDefinition } from '../engine/runbook.ts';
import type { StepContext } from '../engine/step-context.ts';

export interface Stopped {
  namespace: string;
  statefulSet: string;
  replicas: number;
}

const NOTE = 'drill.stopped';

/** Scales the StatefulSet to 0 after noting how many replicas to give back. */
export async function stopForDrill(ctx: StepContext, namespace: string, statefulSet: string) {
  const sts = await ctx.kube.statefulSet(namespace, statefulSet);
  const replicas = sts?.replicas || 1;
  await ctx.note(NOTE, { namespace, statefulSet, replicas } satisfies Stopped);
  await ctx.kubectl`scale statefulset ${statefulSet} -n ${namespace} --replicas=0`;
}

/** Gives back what stopForDrill took; a no-op when nothing is noted as stopped. */
export async function restoreAfterDrill(ctx: StepContext): Promise<Stopped | undefined> {
  const stopped = await ctx.recall<Stopped | null>(NOTE);
  if (!stopped) return undefined;
  const { namespace, statefulSet, replicas } = stopped;
  await ctx.kubectl`scale statefulset ${statefulSet} -n ${namespace} --replicas=${String(replicas)}`;
  await ctx.note(NOTE, null);
  return stopped;
}

/** What an earlier, interrupted drill left stopped (its StatefulSet still has fewer replicas). */
async function leftStopped(ctx: StepContext): Promise<Stopped | undefined> {
  const stopped = await ctx.recall<Stopped | null>(NOTE);
  if (!stopped) return undefined;
  const sts = await ctx.kube.statefulSet(stopped.namespace, stopped.statefulSet);
  return sts && sts.replicas < stopped.replicas ? stopped : undefined;
}

/** The first step of a runbook with drills: the resume restores what an interrupted drill stopped. */
export function restoreStep(id: string): StepDefinition {
  return {
    id,
    title: 'Restore what an interrupted drill left stopped (nothing, normally)',
    risk: 'change',
    impact: 'scales the StatefulSet an interrupted drill stopped back to its noted replica count',
    done: async (ctx) => (await leftStopped(ctx)) === undefined,
    run: async (ctx) => {
      const restored = await restoreAfterDrill(ctx);
      if (restored) {
        ctx.log.info(
          `restored ${restored.namespace}/${restored.statefulSet} to ${restored.replicas} replica(s)`,
        );
      }
    },
  };
}
