// Owner references and generated names, as the real controllers write them.
import { createHash, randomBytes } from 'node:crypto';
import type { KubeObject } from '../runtime.ts';

export type OwnerReference = NonNullable<KubeObject['metadata']['ownerReferences']>[number];

export function controllerRef(owner: KubeObject): OwnerReference {
  return {
    apiVersion: owner.apiVersion,
    kind: owner.kind,
    name: owner.metadata.name,
    uid: owner.metadata.uid!,
    controller: true,
    blockOwnerDeletion: true,
  } as OwnerReference;
}

export function controllerOf(obj: KubeObject): OwnerReference | undefined {
  return obj.metadata.ownerReferences?.find((o) => o.controller);
}

// The alphabet the API server uses for generated suffixes (no vowels, no look-alikes).
const SAFE = 'bcdfghjklmnpqrstvwxz2456789';

export function randomSuffix(length = 5): string {
  const bytes = randomBytes(length);
  return [...bytes].map((b) => SAFE[b % SAFE.length]).join('');
}

/** JSON with sorted keys and without nulls: equal templates hash equal however they were written. */
function canonical(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(canonical);
  if (value && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value)
        .filter(([, v]) => v !== null && v !== undefined)
        .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
        .map(([k, v]) => [k, canonical(v)]),
    );
  }
  return value;
}

/** A stable short hash of a pod template (pod-template-hash, controller-revision-hash). */
export function templateHash(template: unknown): string {
  const digest = createHash('sha256')
    .update(JSON.stringify(canonical(template ?? {})))
    .digest();
  return [...digest.subarray(0, 10)].map((b) => SAFE[b % SAFE.length]).join('');
}

export function isPodActive(pod: KubeObject): boolean {
  return (
    !pod.metadata.deletionTimestamp &&
    pod.status?.phase !== 'Succeeded' &&
    pod.status?.phase !== 'Failed'
  );
}

export function isPodReady(pod: KubeObject): boolean {
  return !!pod.status?.conditions?.some(
    (c: { type: string; status: string }) => c.type === 'Ready' && c.status === 'True',
  );
}
