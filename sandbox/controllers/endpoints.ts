// Endpoints of every Service with a selector: the Ready pods' addresses and the target ports.

import { labelSelectorMatcher } from '../api/selectors.ts';
import type { Store, StoreChange } from '../api/store.ts';
import type { KubeObject } from '../runtime.ts';
import { isPodActive, isPodReady } from './ownership.ts';
import { WorkQueue } from './queue.ts';
import type { Controller } from './workload-base.ts';
import { typeOf } from './workload-base.ts';

export class EndpointsController implements Controller {
  private readonly serviceType;
  private readonly podType;
  private readonly endpointsType;
  private readonly queue: WorkQueue;
  private unsubscribe: (() => void) | undefined;

  constructor(private readonly store: Store) {
    this.serviceType = typeOf(store, '', 'Service');
    this.podType = typeOf(store, '', 'Pod');
    this.endpointsType = typeOf(store, '', 'Endpoints');
    this.queue = new WorkQueue('Endpoints', (ns) => this.reconcileNamespace(ns));
  }

  start(): void {
    this.unsubscribe = this.store.subscribe((change) => this.onChange(change));
    for (const svc of this.store.list(this.serviceType)) this.queue.add(svc.metadata.namespace!);
  }

  stop(): void {
    this.unsubscribe?.();
    this.queue.stop();
  }

  private onChange(change: StoreChange): void {
    const ns = change.object.metadata.namespace;
    if (!ns) return;
    if (change.resource === this.serviceType && change.type === 'DELETED') {
      if (this.store.get(this.endpointsType, ns, change.object.metadata.name)) {
        this.store.remove(this.endpointsType, ns, change.object.metadata.name);
      }
      return;
    }
    if (change.resource === this.serviceType || change.resource === this.podType)
      this.queue.add(ns);
  }

  private reconcileNamespace(ns: string): void {
    const pods = this.store.list(this.podType, ns).filter((p) => isPodActive(p) && p.status?.podIP);
    for (const svc of this.store.list(this.serviceType, ns)) {
      if (!svc.spec?.selector || Object.keys(svc.spec.selector).length === 0) continue;
      const match = labelSelectorMatcher({ matchLabels: svc.spec.selector });
      const members = pods.filter(match);
      const address = (p: KubeObject) => ({
        ip: p.status.podIP,
        nodeName: p.spec?.nodeName,
        ...(p.spec?.hostname ? { hostname: p.spec.hostname } : {}),
        targetRef: { kind: 'Pod', namespace: ns, name: p.metadata.name, uid: p.metadata.uid },
      });
      const ready = members.filter(isPodReady).map(address);
      const notReady = members.filter((p) => !isPodReady(p)).map(address);
      const ports = (svc.spec.ports ?? []).map(
        (port: {
          name?: string;
          port: number;
          targetPort?: number | string;
          protocol?: string;
        }) => ({
          ...(port.name ? { name: port.name } : {}),
          port: resolveTargetPort(port, members[0]),
          protocol: port.protocol ?? 'TCP',
        }),
      );
      const subsets =
        ready.length + notReady.length === 0
          ? []
          : [
              {
                ...(ready.length ? { addresses: ready } : {}),
                ...(notReady.length ? { notReadyAddresses: notReady } : {}),
                ports,
              },
            ];
      const existing = this.store.get(this.endpointsType, ns, svc.metadata.name);
      if (!existing) {
        this.store.create(this.endpointsType, {
          apiVersion: 'v1',
          kind: 'Endpoints',
          metadata: { name: svc.metadata.name, namespace: ns, labels: svc.metadata.labels },
          subsets,
        });
      } else {
        existing.subsets = subsets;
        this.store.update(this.endpointsType, existing);
      }
    }
  }
}

function resolveTargetPort(
  port: { port: number; targetPort?: number | string },
  pod: KubeObject | undefined,
): number {
  const target = port.targetPort ?? port.port;
  if (typeof target === 'number') return target;
  if (/^\d+$/.test(target)) return Number(target);
  for (const c of pod?.spec?.containers ?? []) {
    for (const p of c.ports ?? []) if (p.name === target) return p.containerPort;
  }
  return port.port;
}
