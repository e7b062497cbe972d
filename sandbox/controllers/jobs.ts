// Job: runs pods until `completions` succeed or more than `backoffLimit` fail, then sets the
// Complete or Failed condition that `kubectl wait --for=condition=complete` reads.
import { nowTimestamp } from '../api/store.ts';
import type { KubeObject } from '../runtime.ts';
import { controllerRef, isPodActive, randomSuffix } from './ownership.ts';
import { type ControllerContext, OwnerController, typeOf } from './workload-base.ts';

function hasCondition(job: KubeObject, type: string): boolean {
  return !!job.status?.conditions?.some(
    (c: { type: string; status: string }) => c.type === type && c.status === 'True',
  );
}

export class JobController extends OwnerController {
  private readonly podType;

  constructor(ctx: ControllerContext) {
    const podType = typeOf(ctx.store, '', 'Pod');
    super(ctx, typeOf(ctx.store, 'batch', 'Job'), [podType]);
    this.podType = podType;
  }

  protected reconcile(job: KubeObject): void {
    if (job.metadata.deletionTimestamp) return;
    if (hasCondition(job, 'Complete') || hasCondition(job, 'Failed')) return;
    const { store, record } = this.ctx;
    const pods = this.owned(job, this.podType);
    const active = pods.filter(isPodActive);
    const succeeded = pods.filter((p) => p.status?.phase === 'Succeeded').length;
    const failed = pods.filter((p) => p.status?.phase === 'Failed').length;
    const completions = job.spec.completions ?? 1;
    const now = nowTimestamp();
    let finished: 'Complete' | 'Failed' | undefined;
    let failReason = '';
    if (succeeded >= completions) finished = 'Complete';
    else if (failed > (job.spec.backoffLimit ?? 6)) {
      finished = 'Failed';
      failReason = 'BackoffLimitExceeded';
    }
    if (finished) {
      for (const pod of active)
        store.delete(this.podType, pod.metadata.namespace, pod.metadata.name);
    } else if (!job.spec.suspend) {
      const room = Math.min(job.spec.parallelism ?? 1, completions - succeeded) - active.length;
      for (let i = 0; i < room; i++) {
        const template = job.spec.template ?? {};
        const pod = store.create(this.podType, {
          apiVersion: 'v1',
          kind: 'Pod',
          metadata: {
            ...(template.metadata ?? {}),
            name: `${job.metadata.name}-${randomSuffix()}`,
            namespace: job.metadata.namespace,
            ownerReferences: [controllerRef(job)],
          },
          spec: structuredClone(template.spec ?? {}),
        });
        active.push(pod);
        record(job, 'SuccessfulCreate', `Created pod: ${pod.metadata.name}`);
      }
    }
    store.mutate(
      this.type,
      job.metadata.namespace,
      job.metadata.name,
      (o) => {
        const status: Record<string, unknown> = {
          startTime: o.status?.startTime ?? now,
          active: finished ? 0 : active.length,
          ready: 0,
          terminating: 0,
          uncountedTerminatedPods: {},
          ...(succeeded ? { succeeded } : {}),
          ...(failed ? { failed } : {}),
        };
        if (!finished) {
          status.active = active.length;
        } else if (finished === 'Complete') {
          status.completionTime = now;
          status.conditions = [
            {
              type: 'SuccessCriteriaMet',
              status: 'True',
              reason: 'CompletionsReached',
              message: 'Reached expected number of succeeded pods',
              lastProbeTime: now,
              lastTransitionTime: now,
            },
            {
              type: 'Complete',
              status: 'True',
              reason: 'CompletionsReached',
              message: 'Reached expected number of succeeded pods',
              lastProbeTime: now,
              lastTransitionTime: now,
            },
          ];
        } else {
          status.conditions = [
            {
              type: 'FailureTarget',
              status: 'True',
              reason: failReason,
              message: 'Job has reached the specified backoff limit',
              lastProbeTime: now,
              lastTransitionTime: now,
            },
            {
              type: 'Failed',
              status: 'True',
              reason: failReason,
              message: 'Job has reached the specified backoff limit',
              lastProbeTime: now,
              lastTransitionTime: now,
            },
          ];
        }
        o.status = status;
      },
      'status',
    );
    if (finished === 'Complete') record(job, 'Completed', 'Job completed');
    if (finished === 'Failed')
      record(job, 'BackoffLimitExceeded', 'Job has reached the specified backoff limit', 'Warning');
  }
}
