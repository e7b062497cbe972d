// What local-path does for a claim: provision a PersistentVolume named after it, with the size
// it asked for, and bind the two; a deleted claim takes its volume along (reclaim policy Delete).
// The data directory itself is the workload half's business.
import type { Store, StoreChange } from '../api/store.ts';
import { objectKey, splitKey, WorkQueue } from './queue.ts';
import type { Controller } from './workload-base.ts';
import { typeOf } from './workload-base.ts';

export class VolumeBinder implements Controller {
  private readonly pvcType;
  private readonly scType;
  private readonly pvType;
  private readonly queue: WorkQueue;
  private unsubscribe: (() => void) | undefined;

  constructor(private readonly store: Store) {
    this.pvcType = typeOf(store, '', 'PersistentVolumeClaim');
    this.scType = typeOf(store, 'storage.k8s.io', 'StorageClass');
    this.pvType = typeOf(store, '', 'PersistentVolume');
    this.queue = new WorkQueue('PersistentVolumeClaim', (key) => this.bind(key));
  }

  start(): void {
    this.unsubscribe = this.store.subscribe((change: StoreChange) => {
      if (change.resource === this.pvcType && change.type === 'DELETED') {
        const volume = change.object.spec?.volumeName;
        const pv = volume ? this.store.get(this.pvType, undefined, volume) : undefined;
        if (pv && pv.spec?.persistentVolumeReclaimPolicy !== 'Retain') {
          this.store.remove(this.pvType, undefined, volume);
        }
        return;
      }
      if (
        change.resource === this.pvcType &&
        change.type !== 'DELETED' &&
        change.object.status?.phase !== 'Bound'
      ) {
        this.queue.add(objectKey(change.object.metadata.namespace, change.object.metadata.name));
      }
    });
    for (const pvc of this.store.list(this.pvcType))
      this.queue.add(objectKey(pvc.metadata.namespace, pvc.metadata.name));
  }

  stop(): void {
    this.unsubscribe?.();
    this.queue.stop();
  }

  private bind(key: string): void {
    const [ns, name] = splitKey(key);
    const pvc = this.store.get(this.pvcType, ns, name);
    if (!pvc || pvc.status?.phase === 'Bound') return;
    const defaultClass = this.store
      .list(this.scType)
      .find(
        (sc) => sc.metadata.annotations?.['storageclass.kubernetes.io/is-default-class'] === 'true',
      );
    const className = pvc.spec?.storageClassName ?? defaultClass?.metadata.name;
    const storageClass = className ? this.store.get(this.scType, undefined, className) : undefined;
    if (className && !storageClass) return;
    const volumeName = `pvc-${pvc.metadata.uid}`;
    const size = pvc.spec?.resources?.requests?.storage ?? '1Gi';
    if (!this.store.get(this.pvType, undefined, volumeName)) {
      this.store.create(this.pvType, {
        apiVersion: 'v1',
        kind: 'PersistentVolume',
        metadata: {
          name: volumeName,
          annotations: {
            'pv.kubernetes.io/provisioned-by': String(storageClass?.provisioner ?? 'sandbox'),
          },
        },
        spec: {
          capacity: { storage: size },
          accessModes: pvc.spec?.accessModes ?? ['ReadWriteOnce'],
          persistentVolumeReclaimPolicy: String(storageClass?.reclaimPolicy ?? 'Delete'),
          storageClassName: className ?? '',
          volumeMode: 'Filesystem',
          hostPath: {
            path: `/var/lib/rancher/k3s/storage/${volumeName}_${ns}_${name}`,
            type: 'DirectoryOrCreate',
          },
          claimRef: {
            apiVersion: 'v1',
            kind: 'PersistentVolumeClaim',
            namespace: ns,
            name,
            uid: pvc.metadata.uid,
          },
        },
      });
      this.store.mutate(
        this.pvType,
        undefined,
        volumeName,
        (o) => {
          o.status = { phase: 'Bound' };
        },
        'status',
      );
    }
    const bound = this.store.mutate(this.pvcType, ns, name, (o) => {
      o.spec = {
        ...(o.spec ?? {}),
        volumeName,
        ...(className ? { storageClassName: className } : {}),
      };
      o.metadata.annotations = {
        ...o.metadata.annotations,
        'pv.kubernetes.io/bind-completed': 'yes',
      };
    });
    if (!bound) return;
    this.store.mutate(
      this.pvcType,
      ns,
      name,
      (o) => {
        o.status = {
          phase: 'Bound',
          accessModes: o.spec?.accessModes ?? ['ReadWriteOnce'],
          capacity: { storage: size },
        };
      },
      'status',
    );
  }
}
