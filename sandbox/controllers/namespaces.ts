// Every namespace gets its `default` ServiceAccount, as the service account controller does.
import type { Store } from '../api/store.ts';
import { WorkQueue } from './queue.ts';
import type { Controller } from './workload-base.ts';
import { typeOf } from './workload-base.ts';

export class ServiceAccountController implements Controller {
  private readonly nsType;
  private readonly saType;
  private readonly queue: WorkQueue;
  private unsubscribe: (() => void) | undefined;

  constructor(private readonly store: Store) {
    this.nsType = typeOf(store, '', 'Namespace');
    this.saType = typeOf(store, '', 'ServiceAccount');
    this.queue = new WorkQueue('ServiceAccount', (ns) => this.ensure(ns));
  }

  start(): void {
    this.unsubscribe = this.store.subscribe((change) => {
      if (change.resource === this.nsType && change.type === 'ADDED')
        this.queue.add(change.object.metadata.name);
      if (change.resource === this.saType && change.type === 'DELETED')
        this.queue.add(change.object.metadata.namespace!);
    });
    for (const ns of this.store.list(this.nsType)) this.queue.add(ns.metadata.name);
  }

  stop(): void {
    this.unsubscribe?.();
    this.queue.stop();
  }

  private ensure(namespace: string): void {
    const ns = this.store.get(this.nsType, undefined, namespace);
    if (!ns || ns.metadata.deletionTimestamp) return;
    if (this.store.get(this.saType, namespace, 'default')) return;
    this.store.create(this.saType, {
      apiVersion: 'v1',
      kind: 'ServiceAccount',
      metadata: { name: 'default', namespace },
    });
  }
}
