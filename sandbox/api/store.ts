// The cluster state: every object by resource type, namespace and name, a global resourceVersion,
// and a bounded history of changes so watches can resume from a list's resourceVersion.
import { randomUUID } from 'node:crypto';
import type { KubeObject, StoreEventType } from '../runtime.ts';
import { admit } from './admission.ts';
import { recordUpdate } from './managed-fields.ts';
import { apiVersionOf, type ResourceRegistry, type ResourceType } from './resources.ts';
import type { Matcher } from './selectors.ts';
import { ApiError, alreadyExists, conflict, notFound } from './status.ts';

export interface StoreChange {
  type: StoreEventType;
  object: KubeObject;
  resource: ResourceType;
  resourceVersion: number;
}

export type DeletePropagation = 'Background' | 'Foreground' | 'Orphan';

export interface WriteOptions {
  dryRun?: boolean;
  /**
   * The field manager of a client's write: its changes are recorded in managedFields as an
   * Update. `'as-given'`: the input's managedFields are already computed (server-side apply).
   * Absent (the controllers' own writes): managedFields stay as they were.
   */
  manager?: string;
  managedFields?: 'as-given';
}

export interface DeleteOptions extends WriteOptions {
  propagationPolicy?: DeletePropagation;
  gracePeriodSeconds?: number;
}

export const nowTimestamp = (): string => new Date().toISOString().replace(/\.\d+Z$/, 'Z');

const keyOf = (type: ResourceType) => `${type.group}/${type.plural}`;
const nameKey = (ns: string | undefined, name: string) => `${ns ?? ''}/${name}`;

export class Store {
  private rv = 0;
  private readonly objects = new Map<string, Map<string, KubeObject>>();
  private readonly history: StoreChange[] = [];
  private readonly listeners = new Set<(change: StoreChange) => void>();
  private closed = false;
  /** Owners deleted in the foreground, waiting for their dependents (by uid). */
  private readonly foreground = new Map<string, ResourceType>();
  /**
   * Decides whether a deleted object lingers with a deletionTimestamp until its owner removes it
   * (a running pod stays until its processes have stopped, as a kubelet would keep it).
   */
  holdOnDelete: (type: ResourceType, obj: KubeObject) => boolean = () => false;

  constructor(
    readonly registry: ResourceRegistry,
    private readonly historySize = 5000,
  ) {}

  get resourceVersion(): number {
    return this.rv;
  }

  /** The oldest resourceVersion a watch can still resume from. */
  get oldestResumable(): number {
    return this.history.length === 0 ? this.rv : this.history[0]!.resourceVersion - 1;
  }

  changesSince(rv: number): StoreChange[] {
    // History is ordered by resourceVersion: binary search for the first newer change.
    let lo = 0;
    let hi = this.history.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.history[mid]!.resourceVersion <= rv) lo = mid + 1;
      else hi = mid;
    }
    return this.history.slice(lo);
  }

  subscribe(listener: (change: StoreChange) => void): () => void {
    if (this.closed) return () => undefined;
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private bucket(type: ResourceType): Map<string, KubeObject> {
    let bucket = this.objects.get(keyOf(type));
    if (!bucket) {
      bucket = new Map();
      this.objects.set(keyOf(type), bucket);
    }
    return bucket;
  }

  /**
   * Ends every subscription: once the sandbox has stopped, no late write (a plugin's last status
   * update, a pending reconcile) may wake a listener that writes again and keeps the process busy.
   */
  close(): void {
    this.closed = true;
    this.listeners.clear();
  }

  private emit(type: StoreEventType, resource: ResourceType, object: KubeObject): void {
    const change: StoreChange = {
      type,
      object: structuredClone(object),
      resource,
      resourceVersion: this.rv,
    };
    this.history.push(change);
    if (this.history.length > this.historySize) this.history.shift();
    for (const listener of [...this.listeners]) {
      try {
        listener(change);
      } catch (err) {
        console.error(`sandbox: a store listener failed: ${(err as Error).stack ?? err}`);
      }
    }
  }

  get(type: ResourceType, ns: string | undefined, name: string): KubeObject | undefined {
    const obj = this.objects.get(keyOf(type))?.get(nameKey(type.namespaced ? ns : undefined, name));
    return obj ? structuredClone(obj) : undefined;
  }

  mustGet(type: ResourceType, ns: string | undefined, name: string): KubeObject {
    const obj = this.get(type, ns, name);
    if (!obj) throw notFound(type.plural, type.group, name);
    return obj;
  }

  list(type: ResourceType, ns?: string, matcher?: Matcher): KubeObject[] {
    const out: KubeObject[] = [];
    for (const obj of this.objects.get(keyOf(type))?.values() ?? []) {
      if (ns && type.namespaced && obj.metadata.namespace !== ns) continue;
      if (matcher && !matcher(obj)) continue;
      out.push(structuredClone(obj));
    }
    return out.sort((a, b) =>
      nameKey(a.metadata.namespace, a.metadata.name).localeCompare(
        nameKey(b.metadata.namespace, b.metadata.name),
      ),
    );
  }

  /** Every stored object (for namespace cleanup, garbage collection and the benchmark). */
  *allObjects(): Generator<[ResourceType, KubeObject]> {
    for (const type of this.registry.all()) {
      for (const obj of this.objects.get(keyOf(type))?.values() ?? []) yield [type, obj];
    }
  }

  countOf(type: ResourceType): number {
    return this.objects.get(keyOf(type))?.size ?? 0;
  }

  count(): number {
    let n = 0;
    for (const bucket of this.objects.values()) n += bucket.size;
    return n;
  }

  create(type: ResourceType, input: KubeObject, opts: WriteOptions = {}): KubeObject {
    const obj = structuredClone(input);
    obj.apiVersion = apiVersionOf(type.group, type.versions[0]!);
    obj.kind = type.kind;
    obj.metadata = { ...(obj.metadata ?? {}) } as KubeObject['metadata'];
    if (!type.namespaced) delete obj.metadata.namespace;
    if (!obj.metadata.name && obj.metadata.generateName) {
      obj.metadata.name = `${obj.metadata.generateName}${randomUUID().replace(/-/g, '').slice(0, 5)}`;
    }
    if (!obj.metadata.name) {
      throw new ApiError(
        422,
        'Invalid',
        `${type.kind} "" is invalid: metadata.name: Required value: name or generateName is required`,
      );
    }
    const ns = obj.metadata.namespace;
    if (type.namespaced) {
      if (!ns)
        throw new ApiError(
          400,
          'BadRequest',
          'the namespace of the provided object does not match the namespace sent on the request',
        );
      this.assertNamespaceOpen(ns);
    }
    const bucket = this.bucket(type);
    const key = nameKey(ns, obj.metadata.name);
    if (bucket.has(key)) throw alreadyExists(type.plural, type.group, obj.metadata.name);
    obj.metadata.uid = randomUUID();
    admit(type, obj, undefined, this);
    if (opts.manager && opts.managedFields !== 'as-given') {
      obj.metadata.managedFields = recordUpdate(undefined, obj, opts.manager);
    }
    obj.metadata.creationTimestamp = nowTimestamp();
    if (obj.spec !== undefined && type.kind !== 'Namespace') obj.metadata.generation = 1;
    delete obj.metadata.deletionTimestamp;
    if (opts.dryRun) return obj;
    this.rv++;
    obj.metadata.resourceVersion = String(this.rv);
    bucket.set(key, obj);
    this.emit('ADDED', type, obj);
    return structuredClone(obj);
  }

  private assertNamespaceOpen(ns: string): void {
    const nsType = this.registry.byKind({ group: '', kind: 'Namespace' })!;
    const namespace = this.objects.get(keyOf(nsType))?.get(nameKey(undefined, ns));
    if (!namespace) throw notFound('namespaces', '', ns);
    if (namespace.metadata.deletionTimestamp) {
      throw new ApiError(
        403,
        'Forbidden',
        `unable to create new content in namespace ${ns} because it is being terminated`,
      );
    }
  }

  /**
   * Replaces an object. `subresource: 'status'` keeps everything but status; a main-resource
   * update keeps status. A resourceVersion in the input must match (optimistic concurrency).
   */
  update(
    type: ResourceType,
    input: KubeObject,
    opts: WriteOptions & { subresource?: 'status' } = {},
  ): KubeObject {
    const ns = type.namespaced ? input.metadata.namespace : undefined;
    const name = input.metadata.name;
    const bucket = this.bucket(type);
    const current = bucket.get(nameKey(ns, name));
    if (!current) throw notFound(type.plural, type.group, name);
    if (
      input.metadata.resourceVersion &&
      input.metadata.resourceVersion !== current.metadata.resourceVersion
    ) {
      throw conflict(type.plural, type.group, name);
    }
    let next: KubeObject;
    if (opts.subresource === 'status') {
      next = { ...structuredClone(current), status: structuredClone(input.status) };
    } else {
      next = structuredClone(input);
      next.apiVersion = current.apiVersion;
      next.kind = current.kind;
      next.metadata = {
        ...next.metadata,
        name: current.metadata.name,
        uid: current.metadata.uid,
        creationTimestamp: current.metadata.creationTimestamp,
      };
      if (current.metadata.namespace) next.metadata.namespace = current.metadata.namespace;
      if (current.metadata.deletionTimestamp) {
        next.metadata.deletionTimestamp = current.metadata.deletionTimestamp;
      }
      if (type.subresources.includes('status')) next.status = structuredClone(current.status);
      admit(type, next, current, this);
      if (opts.managedFields !== 'as-given') {
        next.metadata.managedFields = opts.manager
          ? recordUpdate(current, next, opts.manager)
          : current.metadata.managedFields;
      }
      if (!next.metadata.managedFields) delete next.metadata.managedFields;
      if (JSON.stringify(next.spec) !== JSON.stringify(current.spec)) {
        next.metadata.generation = (current.metadata.generation ?? 0) + 1;
      } else if (current.metadata.generation !== undefined) {
        next.metadata.generation = current.metadata.generation;
      }
    }
    if (opts.dryRun) return next;
    // Nothing changed: the API server answers without a new resourceVersion or event.
    const { resourceVersion: _a, ...nextMeta } = next.metadata;
    const { resourceVersion: _b, ...currentMeta } = current.metadata;
    if (
      JSON.stringify({ ...next, metadata: nextMeta }) ===
      JSON.stringify({ ...current, metadata: currentMeta })
    ) {
      return structuredClone(current);
    }
    this.rv++;
    next.metadata.resourceVersion = String(this.rv);
    bucket.set(nameKey(ns, name), next);
    this.emit('MODIFIED', type, next);
    return structuredClone(next);
  }

  /** Merges a patch function's result into an object (used by controllers and ClusterAccess). */
  mutate(
    type: ResourceType,
    ns: string | undefined,
    name: string,
    change: (obj: KubeObject) => void,
    subresource?: 'status',
  ): KubeObject | undefined {
    const current = this.get(type, ns, name);
    if (!current) return undefined;
    change(current);
    return this.update(type, current, subresource ? { subresource } : {});
  }

  /** A delete as the API asks for it: may leave the object terminating for a while. */
  delete(
    type: ResourceType,
    ns: string | undefined,
    name: string,
    opts: DeleteOptions = {},
  ): KubeObject {
    const current = this.get(type, ns, name);
    if (!current) throw notFound(type.plural, type.group, name);
    if (opts.dryRun) return current;
    if (type.kind === 'Namespace') return this.terminateNamespace(type, current);
    const force = opts.gracePeriodSeconds === 0;
    if (!force && this.holdOnDelete(type, current)) {
      if (current.metadata.deletionTimestamp) return current;
      current.metadata.deletionTimestamp = nowTimestamp();
      current.metadata.deletionGracePeriodSeconds = opts.gracePeriodSeconds ?? 30;
      return this.update(type, current);
    }
    if (opts.propagationPolicy === 'Foreground' && this.dependentsOf(current).length > 0) {
      return this.deleteInForeground(type, current);
    }
    return this.remove(type, ns, name, opts.propagationPolicy) ?? current;
  }

  private dependentsOf(owner: KubeObject): Array<[ResourceType, KubeObject]> {
    const uid = owner.metadata.uid;
    return [...this.allObjects()].filter(([, dep]) =>
      dep.metadata.ownerReferences?.some((o) => o.uid === uid),
    );
  }

  /**
   * Foreground deletion: the owner stays, Terminating with the foregroundDeletion finalizer,
   * until every dependent is gone (`kubectl delete --cascade=foreground` waits on exactly that).
   */
  private deleteInForeground(type: ResourceType, owner: KubeObject): KubeObject {
    if (!owner.metadata.deletionTimestamp) {
      owner.metadata.deletionTimestamp = nowTimestamp();
      owner.metadata.finalizers = [
        ...((owner.metadata.finalizers as string[] | undefined) ?? []),
        'foregroundDeletion',
      ];
      owner = this.update(type, owner);
    }
    this.foreground.set(owner.metadata.uid!, type);
    for (const [depType, dep] of this.dependentsOf(owner)) {
      if (this.get(depType, dep.metadata.namespace, dep.metadata.name)) {
        this.delete(depType, dep.metadata.namespace, dep.metadata.name, {
          propagationPolicy: 'Foreground',
        });
      }
    }
    return this.get(type, owner.metadata.namespace, owner.metadata.name) ?? owner;
  }

  /** After a dependent went: an owner deleted in the foreground goes once nothing depends on it. */
  private finishForegroundOwners(removed: KubeObject): void {
    for (const ref of removed.metadata.ownerReferences ?? []) {
      const type = this.foreground.get(ref.uid);
      if (!type) continue;
      const owner = [...(this.objects.get(keyOf(type))?.values() ?? [])].find(
        (o) => o.metadata.uid === ref.uid,
      );
      if (!owner) {
        this.foreground.delete(ref.uid);
      } else if (this.dependentsOf(owner).length === 0) {
        this.foreground.delete(ref.uid);
        this.remove(type, owner.metadata.namespace, owner.metadata.name);
      }
    }
  }

  /** Removes an object for good and lets its dependents follow (garbage collection). */
  remove(
    type: ResourceType,
    ns: string | undefined,
    name: string,
    propagation: DeletePropagation = 'Background',
  ): KubeObject | undefined {
    const bucket = this.bucket(type);
    const key = nameKey(type.namespaced ? ns : undefined, name);
    const current = bucket.get(key);
    if (!current) return undefined;
    bucket.delete(key);
    this.rv++;
    current.metadata.resourceVersion = String(this.rv);
    this.emit('DELETED', type, current);
    const uid = current.metadata.uid;
    for (const [depType, dep] of [...this.allObjects()]) {
      if (!dep.metadata.ownerReferences?.some((o) => o.uid === uid)) continue;
      if (propagation === 'Orphan') {
        this.mutate(depType, dep.metadata.namespace, dep.metadata.name, (o) => {
          o.metadata.ownerReferences = o.metadata.ownerReferences?.filter((r) => r.uid !== uid);
        });
      } else if (this.get(depType, dep.metadata.namespace, dep.metadata.name)) {
        this.delete(depType, dep.metadata.namespace, dep.metadata.name);
      }
    }
    this.finishForegroundOwners(current);
    if (current.metadata.namespace) this.finishNamespaceIfEmpty(current.metadata.namespace);
    return structuredClone(current);
  }

  private terminateNamespace(type: ResourceType, ns: KubeObject): KubeObject {
    const name = ns.metadata.name;
    let result = ns;
    if (!ns.metadata.deletionTimestamp) {
      ns.metadata.deletionTimestamp = nowTimestamp();
      this.update(type, ns);
      result =
        this.mutate(
          type,
          undefined,
          name,
          (o) => {
            o.status = { ...(o.status ?? {}), phase: 'Terminating' };
          },
          'status',
        ) ?? ns;
    }
    // Owners first (the registry lists pods before their controllers), so no controller
    // recreates a pod in a namespace that is going away.
    for (const [depType, dep] of [...this.allObjects()].reverse()) {
      if (
        depType.namespaced &&
        dep.metadata.namespace === name &&
        this.get(depType, name, dep.metadata.name)
      ) {
        this.delete(depType, name, dep.metadata.name);
      }
    }
    this.finishNamespaceIfEmpty(name);
    return result;
  }

  private finishNamespaceIfEmpty(name: string): void {
    const nsType = this.registry.byKind({ group: '', kind: 'Namespace' })!;
    const ns = this.objects.get(keyOf(nsType))?.get(nameKey(undefined, name));
    if (!ns?.metadata.deletionTimestamp) return;
    for (const [type, obj] of this.allObjects()) {
      if (type.namespaced && obj.metadata.namespace === name) return;
    }
    this.remove(nsType, undefined, name);
  }

  /** Drops every object of a type (a CRD was deleted). */
  dropType(type: ResourceType): void {
    for (const obj of this.list(type)) this.remove(type, obj.metadata.namespace, obj.metadata.name);
    this.objects.delete(keyOf(type));
  }
}
