// ReplicaSet: keeps spec.replicas pods from the template alive.
import type { KubeObject } from '../runtime.ts';
import { controllerRef, isPodActive, isPodReady, randomSuffix } from './ownership.ts';
import { type ControllerContext, OwnerController, typeOf } from './workload-base.ts';

export class ReplicaSetController extends OwnerController {
  private readonly podType;

  constructor(ctx: ControllerContext) {
    const podType = typeOf(ctx.store, '', 'Pod');
    super(ctx, typeOf(ctx.store, 'apps', 'ReplicaSet'), [podType]);
    this.podType = podType;
  }

  protected reconcile(rs: KubeObject): void {
    if (rs.metadata.deletionTimestamp) return;
    const { store, record } = this.ctx;
    const pods = this.owned(rs, this.podType);
    const active = pods.filter(isPodActive);
    const want = rs.spec.replicas ?? 1;
    if (active.length < want) {
      for (let i = active.length; i < want; i++) {
        const template = rs.spec.template ?? {};
        const pod = store.create(this.podType, {
          apiVersion: 'v1',
          kind: 'Pod',
          metadata: {
            ...(template.metadata ?? {}),
            name: `${rs.metadata.name}-${randomSuffix()}`,
            namespace: rs.metadata.namespace,
            ownerReferences: [controllerRef(rs)],
          },
          spec: structuredClone(template.spec ?? {}),
        });
        active.push(pod);
        record(rs, 'SuccessfulCreate', `Created pod: ${pod.metadata.name}`);
      }
    } else if (active.length > want) {
      // Not-ready and youngest pods go first, as the real controller ranks them.
      const victims = [...active]
        .sort(
          (a, b) =>
            Number(isPodReady(a)) - Number(isPodReady(b)) ||
            String(b.metadata.creationTimestamp).localeCompare(
              String(a.metadata.creationTimestamp),
            ),
        )
        .slice(0, active.length - want);
      for (const pod of victims) {
        store.delete(this.podType, pod.metadata.namespace, pod.metadata.name);
        record(rs, 'SuccessfulDelete', `Deleted pod: ${pod.metadata.name}`);
      }
    }
    const current = this.owned(rs, this.podType).filter(isPodActive);
    const ready = current.filter(isPodReady).length;
    store.mutate(
      this.type,
      rs.metadata.namespace,
      rs.metadata.name,
      (o) => {
        o.status = {
          replicas: current.length,
          fullyLabeledReplicas: current.length,
          readyReplicas: ready,
          availableReplicas: ready,
          observedGeneration: o.metadata.generation,
        };
      },
      'status',
    );
  }
}
