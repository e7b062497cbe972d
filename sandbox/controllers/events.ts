// core/v1 Events for what the controllers do, so `kubectl get events` and `kubectl describe`
// tell the same story they would on a cluster.
import type { Store } from '../api/store.ts';
import { nowTimestamp } from '../api/store.ts';
import type { KubeObject } from '../runtime.ts';
import { randomSuffix } from './ownership.ts';

export type EventRecorder = (
  involved: KubeObject,
  reason: string,
  message: string,
  type?: 'Normal' | 'Warning',
) => void;

/** Events kept per sandbox; the oldest go first, as a cluster's event TTL would remove them. */
export const MAX_EVENTS = 1000;

export function eventRecorder(store: Store, component: string): EventRecorder {
  const eventType = store.registry.byKind({ group: '', kind: 'Event' })!;
  const nsType = store.registry.byKind({ group: '', kind: 'Namespace' })!;
  return (involved, reason, message, type = 'Normal') => {
    if (store.countOf(eventType) >= MAX_EVENTS) {
      const existing = store.list(eventType);
      existing.sort(
        (a, b) => Number(a.metadata.resourceVersion) - Number(b.metadata.resourceVersion),
      );
      for (const old of existing.slice(0, existing.length - MAX_EVENTS + 1)) {
        store.remove(eventType, old.metadata.namespace, old.metadata.name);
      }
    }
    const namespace = involved.metadata.namespace ?? 'default';
    const ns = store.get(nsType, undefined, namespace);
    if (!ns || ns.metadata.deletionTimestamp) return;
    const now = nowTimestamp();
    store.create(eventType, {
      apiVersion: 'v1',
      kind: 'Event',
      metadata: {
        name: `${involved.metadata.name}.${randomSuffix(10)}`,
        namespace,
      },
      involvedObject: {
        apiVersion: involved.apiVersion,
        kind: involved.kind,
        name: involved.metadata.name,
        namespace: involved.metadata.namespace,
        uid: involved.metadata.uid,
        resourceVersion: involved.metadata.resourceVersion,
      },
      reason,
      message,
      type,
      source: { component },
      reportingComponent: component,
      reportingInstance: '',
      firstTimestamp: now,
      lastTimestamp: now,
      eventTime: null,
      count: 1,
    });
  };
}
