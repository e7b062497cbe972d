// A short-lived Job run to its end for a step: created (or applied), waited for until its pod
// runs when the caller acts then, waited for until it finishes, its log read, and always deleted
// after, so that a Job left by a timeout does not keep loading production. After an interrupt
// no command runs: the Job's ttlSecondsAfterFinished removes it.
import type { StepContext } from '../engine/step-context.ts';

export interface JobRun {
  log: string;
  succeeded: boolean;
}

export interface JobRunOptions {
  /** `kubectl apply --server-side` instead of `create` (a Job of the same name may be there) */
  apply?: boolean;
  /** called once the Job's pod runs (or has already finished) */
  onStarted?: () => Promise<void>;
  intervalMs?: number;
}

interface JobStatus {
  status?: { succeeded?: number; failed?: number };
}

/** The Job's log and whether it succeeded; undefined in a dry run, where nothing was created. */
export async function runJobToEnd(
  ctx: StepContext,
  job: { name: string; namespace: string; manifest: object },
  options: JobRunOptions = {},
): Promise<JobRun | undefined> {
  const { name, namespace, manifest } = job;
  const intervalMs = options.intervalMs ?? 500;
  const input = JSON.stringify(manifest);
  if (options.apply) await ctx.kubectl({ input })`apply --server-side -f -`;
  else await ctx.kubectl({ input })`create -f -`;
  try {
    if (options.onStarted) {
      const running = await ctx.waitFor(
        `Job ${namespace}/${name} running`,
        async () => {
          const pods = await ctx.kube.pods(namespace, `job-name=${name}`);
          return pods.find((p) => p.phase === 'Running' || p.phase === 'Succeeded');
        },
        { intervalMs },
      );
      if (!running) return undefined;
      await options.onStarted();
    }
    const ended = await ctx.waitFor(
      `Job ${namespace}/${name} finished`,
      async () => {
        const s = (await ctx.kube.get<JobStatus>('batch/v1', 'Job', name, namespace))?.status;
        return s?.succeeded ? 'succeeded' : s?.failed ? 'failed' : undefined;
      },
      { intervalMs },
    );
    if (!ended) return undefined;
    return { log: await ctx.kube.jobLogs(namespace, name), succeeded: ended === 'succeeded' };
  } finally {
    if (!ctx.dryRun && !ctx.signal.aborted) {
      await ctx.kubectl`delete job ${name} -n ${namespace} --ignore-not-found`;
    }
  }
}
