// The shared frame of the controllers: follow the kinds a controller cares about, queue the
// owning object's key, reconcile from the store.
import type { ResourceType } from '../api/resources.ts';
import type { Store, StoreChange } from '../api/store.ts';
import type { KubeObject } from '../runtime.ts';
import type { EventRecorder } from './events.ts';
import { controllerOf } from './ownership.ts';
import { objectKey, splitKey, WorkQueue } from './queue.ts';

export interface ControllerContext {
  store: Store;
  record: EventRecorder;
}

export interface Controller {
  start(): void;
  stop(): void;
}

export function typeOf(store: Store, group: string, kind: string): ResourceType {
  const type = store.registry.byKind({ group, kind });
  if (!type) throw new Error(`sandbox: kind ${group}/${kind} is not registered`);
  return type;
}

/**
 * A controller for one kind: reconciles an object when it changes, and when an object it
 * controls (by controller ownerReference of `ownedKind`) changes.
 */
export abstract class OwnerController implements Controller {
  protected readonly queue: WorkQueue;
  private unsubscribe: (() => void) | undefined;

  constructor(
    protected readonly ctx: ControllerContext,
    protected readonly type: ResourceType,
    private readonly ownedKinds: ResourceType[],
  ) {
    this.queue = new WorkQueue(type.kind, (key) => {
      const [ns, name] = splitKey(key);
      const obj = this.ctx.store.get(this.type, ns || undefined, name);
      if (obj) this.reconcile(obj);
    });
  }

  start(): void {
    this.unsubscribe = this.ctx.store.subscribe((change) => this.onChange(change));
    for (const obj of this.ctx.store.list(this.type)) {
      this.queue.add(objectKey(obj.metadata.namespace, obj.metadata.name));
    }
  }

  stop(): void {
    this.unsubscribe?.();
    this.queue.stop();
  }

  protected onChange(change: StoreChange): void {
    const obj = change.object;
    if (change.resource === this.type) {
      if (change.type !== 'DELETED')
        this.queue.add(objectKey(obj.metadata.namespace, obj.metadata.name));
      return;
    }
    if (!this.ownedKinds.includes(change.resource)) return;
    const owner = controllerOf(obj);
    if (owner?.kind === this.type.kind)
      this.queue.add(objectKey(obj.metadata.namespace, owner.name));
  }

  protected owned(owner: KubeObject, kind: ResourceType): KubeObject[] {
    return this.ctx.store
      .list(kind, owner.metadata.namespace)
      .filter((o) => controllerOf(o)?.uid === owner.metadata.uid);
  }

  protected abstract reconcile(obj: KubeObject): void;
}
