// ClusterAccess for the workload half: the store seen through KindRefs, with merge-patch writes.
import type { ClusterAccess, KindRef, KubeObject, StoreEvent } from '../runtime.ts';
import { mergePatch } from './patch.ts';
import type { ProxyTargets } from './proxy-targets.ts';
import type { ResourceType } from './resources.ts';
import { labelSelectorMatcher } from './selectors.ts';
import type { Store } from './store.ts';

export function createClusterAccess(
  store: Store,
  proxyTargets: ProxyTargets,
  runDir: string,
): ClusterAccess {
  const typeOf = (kind: KindRef): ResourceType => {
    const type = store.registry.byKind(kind);
    if (!type) throw new Error(`sandbox: kind ${kind.group}/${kind.kind} is not served`);
    return type;
  };
  return {
    runDir,
    get(kind, namespace, name) {
      const type = store.registry.byKind(kind);
      return type ? store.get(type, namespace, name) : undefined;
    },
    list(kind, namespace, labelSelector) {
      const type = store.registry.byKind(kind);
      if (!type) return [];
      return store.list(
        type,
        namespace,
        labelSelector ? labelSelectorMatcher({ matchLabels: labelSelector }) : undefined,
      );
    },
    patchStatus(kind, namespace, name, status) {
      store.mutate(
        typeOf(kind),
        namespace,
        name,
        (o) => {
          o.status = mergePatch(o.status ?? {}, status) as KubeObject['status'];
        },
        'status',
      );
    },
    patch(kind, namespace, name, patch) {
      const type = typeOf(kind);
      const current = store.get(type, namespace, name);
      if (!current) return;
      const next = mergePatch(current, patch) as unknown as KubeObject;
      next.metadata.resourceVersion = current.metadata.resourceVersion;
      store.update(type, next);
    },
    subscribe(listener: (event: StoreEvent) => void) {
      // Each listener gets its own copy: the store's watch history must not change under it.
      return store.subscribe((change) =>
        listener({ type: change.type, object: structuredClone(change.object) }),
      );
    },
    setServiceProxyTarget(namespace, service, port, target) {
      proxyTargets.set(namespace, service, port, target);
    },
  };
}
