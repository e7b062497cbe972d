// StatefulSet: pods `<name>-<ordinal>` created in order, each with its own PVCs from the claim
// templates (kept when the pod goes, so data survives); scale-down and rolling updates go from
// the highest ordinal down, one pod at a time.
import type { KubeObject } from '../runtime.ts';
import { controllerRef, isPodActive, isPodReady, templateHash } from './ownership.ts';
import { type ControllerContext, OwnerController, typeOf } from './workload-base.ts';

const REVISION_LABEL = 'controller-revision-hash';

export class StatefulSetController extends OwnerController {
  private readonly podType;
  private readonly pvcType;

  constructor(ctx: ControllerContext) {
    const podType = typeOf(ctx.store, '', 'Pod');
    super(ctx, typeOf(ctx.store, 'apps', 'StatefulSet'), [podType]);
    this.podType = podType;
    this.pvcType = typeOf(ctx.store, '', 'PersistentVolumeClaim');
  }

  protected reconcile(sts: KubeObject): void {
    if (sts.metadata.deletionTimestamp) return;
    const revision = `${sts.metadata.name}-${templateHash(sts.spec.template)}`;
    this.step(sts, revision);
    this.writeStatus(sts, revision);
  }

  /** One step towards spec.replicas pods at the current revision (one pod at a time when ordered). */
  private step(sts: KubeObject, revision: string): void {
    const name = sts.metadata.name;
    const ns = sts.metadata.namespace!;
    const want: number = sts.spec.replicas ?? 1;
    const ordered = sts.spec.podManagementPolicy !== 'Parallel';
    const pods = new Map<number, KubeObject>();
    for (const pod of this.owned(sts, this.podType)) {
      const ordinal = Number(pod.metadata.name.slice(name.length + 1));
      if (Number.isInteger(ordinal)) pods.set(ordinal, pod);
    }
    const anyTerminating = [...pods.values()].some((p) => p.metadata.deletionTimestamp);

    for (let i = 0; i < want; i++) {
      const pod = pods.get(i);
      if (pod) {
        if (pod.status?.phase === 'Failed' || pod.status?.phase === 'Succeeded') {
          this.ctx.store.delete(this.podType, ns, pod.metadata.name);
          return;
        }
        if (ordered && (!isPodReady(pod) || pod.metadata.deletionTimestamp)) {
          return;
        }
        continue;
      }
      if (ordered && anyTerminating) return;
      this.createPod(sts, i, revision);
      if (ordered) return;
    }

    const extra = [...pods.keys()].filter((i) => i >= want).sort((a, b) => b - a);
    if (extra.length) {
      const victims = ordered ? extra.slice(0, 1) : extra;
      if (!(ordered && anyTerminating)) {
        for (const i of victims) {
          const pod = pods.get(i)!;
          if (!pod.metadata.deletionTimestamp) {
            this.ctx.store.delete(this.podType, ns, pod.metadata.name);
            this.ctx.record(
              sts,
              'SuccessfulDelete',
              `delete Pod ${pod.metadata.name} in StatefulSet ${name} successful`,
            );
          }
        }
      }
      return;
    }

    // Rolling update: replace the highest outdated pod once every other pod is Ready.
    const partition = sts.spec.updateStrategy?.rollingUpdate?.partition ?? 0;
    if (sts.spec.updateStrategy?.type !== 'OnDelete' && !anyTerminating) {
      const all = [...pods.entries()].sort((a, b) => b[0] - a[0]);
      if (all.every(([, p]) => isPodReady(p))) {
        const outdated = all.find(
          ([i, p]) => i >= partition && p.metadata.labels?.[REVISION_LABEL] !== revision,
        );
        if (outdated) {
          this.ctx.store.delete(this.podType, ns, outdated[1].metadata.name);
        }
      }
    }
  }

  private createPod(sts: KubeObject, ordinal: number, revision: string): void {
    const { store, record } = this.ctx;
    const name = `${sts.metadata.name}-${ordinal}`;
    const ns = sts.metadata.namespace!;
    const template = structuredClone(sts.spec.template ?? {});
    const spec = template.spec ?? {};
    const volumes: Array<{ name: string }> = spec.volumes ?? [];
    for (const claim of sts.spec.volumeClaimTemplates ?? []) {
      const claimName = `${claim.metadata.name}-${name}`;
      if (!store.get(this.pvcType, ns, claimName)) {
        store.create(this.pvcType, {
          apiVersion: 'v1',
          kind: 'PersistentVolumeClaim',
          metadata: {
            name: claimName,
            namespace: ns,
            labels: { ...(sts.spec.selector?.matchLabels ?? {}), ...(claim.metadata.labels ?? {}) },
            annotations: claim.metadata.annotations,
          },
          spec: structuredClone(claim.spec ?? {}),
        });
        record(
          sts,
          'SuccessfulCreate',
          `create Claim ${claimName} Pod ${name} in StatefulSet ${sts.metadata.name} success`,
        );
      }
      if (!volumes.some((v) => v.name === claim.metadata.name)) {
        volumes.push({ name: claim.metadata.name, persistentVolumeClaim: { claimName } } as {
          name: string;
        });
      }
    }
    spec.volumes = volumes;
    spec.hostname = name;
    if (sts.spec.serviceName) spec.subdomain = sts.spec.serviceName;
    store.create(this.podType, {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {
        ...(template.metadata ?? {}),
        name,
        namespace: ns,
        labels: {
          ...(template.metadata?.labels ?? {}),
          [REVISION_LABEL]: revision,
          'statefulset.kubernetes.io/pod-name': name,
          'apps.kubernetes.io/pod-index': String(ordinal),
        },
        ownerReferences: [controllerRef(sts)],
      },
      spec,
    });
    record(
      sts,
      'SuccessfulCreate',
      `create Pod ${name} in StatefulSet ${sts.metadata.name} successful`,
    );
  }

  private writeStatus(sts: KubeObject, revision: string): void {
    const pods = this.owned(sts, this.podType).filter(isPodActive);
    const ready = pods.filter(isPodReady).length;
    const updated = pods.filter((p) => p.metadata.labels?.[REVISION_LABEL] === revision).length;
    const want = sts.spec.replicas ?? 1;
    this.ctx.store.mutate(
      this.type,
      sts.metadata.namespace,
      sts.metadata.name,
      (o) => {
        const done = updated === want && ready === want && pods.length === want;
        const currentRevision =
          done || !o.status?.currentRevision ? revision : o.status.currentRevision;
        o.status = {
          observedGeneration: o.metadata.generation,
          replicas: pods.length,
          readyReplicas: ready,
          availableReplicas: ready,
          currentReplicas: currentRevision === revision ? updated : pods.length - updated,
          updatedReplicas: updated,
          currentRevision,
          updateRevision: revision,
          collisionCount: 0,
        };
      },
      'status',
    );
  }
}
