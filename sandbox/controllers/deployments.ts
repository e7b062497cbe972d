// Deployment: one ReplicaSet per pod template (pod-template-hash); a changed template gets a new
// ReplicaSet scaled to spec.replicas while the old ones go to zero, and status counts what
// `kubectl rollout status` reads.
import type { KubeObject } from '../runtime.ts';
import { controllerRef, isPodActive, isPodReady, templateHash } from './ownership.ts';
import { type ControllerContext, OwnerController, typeOf } from './workload-base.ts';

const REVISION = 'deployment.kubernetes.io/revision';

/** The template's hash without its own label, so a template restored by `rollout undo` (which
 * copies the ReplicaSet's template, label included) finds its old ReplicaSet again. */
function podTemplateHash(template: KubeObject['spec']): string {
  const copy = structuredClone(template ?? {});
  if (copy.metadata?.labels) delete copy.metadata.labels['pod-template-hash'];
  return templateHash(copy);
}

export class DeploymentController extends OwnerController {
  private readonly rsType;
  private readonly podType;

  constructor(ctx: ControllerContext) {
    const rsType = typeOf(ctx.store, 'apps', 'ReplicaSet');
    super(ctx, typeOf(ctx.store, 'apps', 'Deployment'), [rsType]);
    this.rsType = rsType;
    this.podType = typeOf(ctx.store, '', 'Pod');
  }

  protected reconcile(dep: KubeObject): void {
    if (dep.metadata.deletionTimestamp) return;
    const { store, record } = this.ctx;
    const hash = podTemplateHash(dep.spec.template);
    const replicaSets = this.owned(dep, this.rsType);
    let newRs = replicaSets.find((rs) => rs.metadata.labels?.['pod-template-hash'] === hash);
    const want = dep.spec.replicas ?? 1;
    const maxRevision = Math.max(
      0,
      ...replicaSets.map((rs) => Number(rs.metadata.annotations?.[REVISION] ?? 0)),
    );
    if (!newRs && !dep.spec.paused) {
      const template = structuredClone(dep.spec.template ?? {});
      template.metadata = {
        ...(template.metadata ?? {}),
        labels: { ...(template.metadata?.labels ?? {}), 'pod-template-hash': hash },
      };
      newRs = store.create(this.rsType, {
        apiVersion: 'apps/v1',
        kind: 'ReplicaSet',
        metadata: {
          name: `${dep.metadata.name}-${hash}`,
          namespace: dep.metadata.namespace,
          labels: template.metadata.labels,
          annotations: {
            [REVISION]: String(maxRevision + 1),
            'deployment.kubernetes.io/desired-replicas': String(want),
          },
          ownerReferences: [controllerRef(dep)],
        },
        spec: {
          replicas: want,
          selector: {
            ...dep.spec.selector,
            matchLabels: { ...(dep.spec.selector?.matchLabels ?? {}), 'pod-template-hash': hash },
          },
          template,
        },
      });
      record(
        dep,
        'ScalingReplicaSet',
        `Scaled up replica set ${newRs.metadata.name} from 0 to ${want}`,
      );
    }
    if (newRs && !dep.spec.paused) {
      for (const rs of replicaSets) {
        const target = rs.metadata.uid === newRs.metadata.uid ? want : 0;
        if ((rs.spec.replicas ?? 0) === target) continue;
        const from = rs.spec.replicas ?? 0;
        store.mutate(this.rsType, rs.metadata.namespace, rs.metadata.name, (o) => {
          o.spec.replicas = target;
          if (target > 0)
            o.metadata.annotations = {
              ...o.metadata.annotations,
              'deployment.kubernetes.io/desired-replicas': String(want),
            };
        });
        record(
          dep,
          'ScalingReplicaSet',
          `Scaled ${target > from ? 'up' : 'down'} replica set ${rs.metadata.name} from ${from} to ${target}`,
        );
      }
      // A template that comes back (rollout undo) makes its old ReplicaSet the newest revision.
      let revision = Number(newRs.metadata.annotations?.[REVISION] ?? 0);
      if (revision < maxRevision) {
        revision = maxRevision + 1;
        store.mutate(this.rsType, newRs.metadata.namespace, newRs.metadata.name, (o) => {
          o.metadata.annotations = { ...o.metadata.annotations, [REVISION]: String(revision) };
        });
      }
      // `kubectl rollout history/undo` read and patch the revision on the Deployment itself.
      if (dep.metadata.annotations?.[REVISION] !== String(revision)) {
        store.mutate(this.type, dep.metadata.namespace, dep.metadata.name, (o) => {
          o.metadata.annotations = { ...o.metadata.annotations, [REVISION]: String(revision) };
        });
      }
    }
    this.writeStatus(dep, newRs, want);
  }

  private writeStatus(dep: KubeObject, newRs: KubeObject | undefined, want: number): void {
    const rsUids = new Set(this.owned(dep, this.rsType).map((rs) => rs.metadata.uid));
    const pods = this.ctx.store
      .list(this.podType, dep.metadata.namespace)
      .filter((p) => isPodActive(p) && p.metadata.ownerReferences?.some((o) => rsUids.has(o.uid)));
    const updated = pods.filter((p) =>
      p.metadata.ownerReferences?.some((o) => o.uid === newRs?.metadata.uid),
    );
    const ready = pods.filter(isPodReady).length;
    const available = ready;
    const complete = updated.length === want && pods.length === want && available >= want;
    this.ctx.store.mutate(
      this.type,
      dep.metadata.namespace,
      dep.metadata.name,
      (o) => {
        const previous: Array<{ type: string; status: string; lastTransitionTime?: string }> =
          o.status?.conditions ?? [];
        const condition = (type: string, status: boolean, reason: string, message: string) => {
          const old = previous.find((c) => c.type === type);
          const value = status ? 'True' : 'False';
          const since =
            old?.status === value
              ? old.lastTransitionTime
              : new Date().toISOString().replace(/\.\d+Z$/, 'Z');
          return {
            type,
            status: value,
            reason,
            message,
            lastUpdateTime: since,
            lastTransitionTime: since,
          };
        };
        o.status = {
          observedGeneration: o.metadata.generation,
          replicas: pods.length,
          updatedReplicas: updated.length,
          readyReplicas: ready,
          availableReplicas: available,
          ...(want - available > 0 ? { unavailableReplicas: want - available } : {}),
          conditions: [
            condition(
              'Available',
              available >= want,
              available >= want ? 'MinimumReplicasAvailable' : 'MinimumReplicasUnavailable',
              available >= want
                ? 'Deployment has minimum availability.'
                : 'Deployment does not have minimum availability.',
            ),
            condition(
              'Progressing',
              true,
              complete ? 'NewReplicaSetAvailable' : 'ReplicaSetUpdated',
              `ReplicaSet "${newRs?.metadata.name ?? dep.metadata.name}" ${complete ? 'has successfully progressed.' : 'is progressing.'}`,
            ),
          ],
        };
      },
      'status',
    );
  }

  // Pods change the Deployment's status too: follow them through their ReplicaSet.
  protected override onChange(change: Parameters<OwnerController['onChange']>[0]): void {
    super.onChange(change);
    if (change.resource !== this.podType) return;
    const rsName = change.object.metadata.ownerReferences?.find(
      (o) => o.kind === 'ReplicaSet',
    )?.name;
    if (!rsName) return;
    const rs = this.ctx.store.get(this.rsType, change.object.metadata.namespace, rsName);
    const owner = rs?.metadata.ownerReferences?.find((o) => o.kind === 'Deployment');
    if (owner) this.queue.add(`${change.object.metadata.namespace}/${owner.name}`);
  }
}
