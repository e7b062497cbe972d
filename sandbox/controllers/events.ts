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

export function eventRecorder(store: Store, component: string): EventRecorder {
  const eventType = store.registry.byKind({ group: '', kind: 'Event' })!;
  const nsType = store.registry.byKind({ group: '', kind: 'Namespace' })!;
  return (involved, reason, message, type = 'Normal') => {
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
