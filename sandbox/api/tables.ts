// Server-side printing: kubectl asks for `as=Table` and prints the columns it gets, as it would
// from a real API server.
import type { KubeObject } from '../runtime.ts';
import type { ResourceType } from './resources.ts';

interface Column {
  name: string;
  type: 'string' | 'integer' | 'date';
  format?: string;
  priority?: number;
  cell: (obj: KubeObject) => string | number;
}

export function humanAge(timestamp: string | undefined, now = Date.now()): string {
  if (!timestamp) return '<unknown>';
  const s = Math.max(0, Math.floor((now - Date.parse(timestamp)) / 1000));
  const m = Math.floor(s / 60);
  const h = Math.floor(m / 60);
  const d = Math.floor(h / 24);
  if (s < 120) return `${s}s`;
  if (m < 10) return s % 60 ? `${m}m${s % 60}s` : `${m}m`;
  if (m < 180) return `${m}m`;
  if (h < 8) return m % 60 ? `${h}h${m % 60}m` : `${h}h`;
  if (h < 48) return `${h}h`;
  if (d < 8) return h % 24 ? `${d}d${h % 24}h` : `${d}d`;
  if (d < 730) return `${d}d`;
  return `${Math.floor(d / 365)}y`;
}

const name: Column = { name: 'Name', type: 'string', format: 'name', cell: (o) => o.metadata.name };
const age: Column = {
  name: 'Age',
  type: 'string',
  cell: (o) => humanAge(o.metadata.creationTimestamp),
};
const col = (
  n: string,
  cell: Column['cell'],
  priority = 0,
  type: Column['type'] = 'string',
): Column => ({
  name: n,
  type,
  priority,
  cell,
});

function podStatus(pod: KubeObject): string {
  if (pod.metadata.deletionTimestamp) return 'Terminating';
  for (const cs of pod.status?.containerStatuses ?? []) {
    if (cs.state?.waiting?.reason) return cs.state.waiting.reason;
    if (cs.state?.terminated?.reason) return cs.state.terminated.reason;
  }
  return pod.status?.phase ?? 'Pending';
}

function podReady(pod: KubeObject): string {
  const statuses = pod.status?.containerStatuses ?? [];
  const total = pod.spec?.containers?.length ?? statuses.length;
  return `${statuses.filter((c: { ready?: boolean }) => c.ready).length}/${total}`;
}

function restarts(pod: KubeObject): number {
  return (pod.status?.containerStatuses ?? []).reduce(
    (n: number, c: { restartCount?: number }) => n + (c.restartCount ?? 0),
    0,
  );
}

function servicePorts(svc: KubeObject): string {
  const ports = (svc.spec?.ports ?? []).map(
    (p: { port: number; nodePort?: number; protocol?: string }) =>
      `${p.port}${p.nodePort ? `:${p.nodePort}` : ''}/${p.protocol ?? 'TCP'}`,
  );
  return ports.length ? ports.join(',') : '<none>';
}

function externalIp(svc: KubeObject): string {
  if (svc.spec?.type !== 'LoadBalancer') return '<none>';
  const ips = (svc.status?.loadBalancer?.ingress ?? []).map((i: { ip: string }) => i.ip);
  return ips.length ? ips.join(',') : '<pending>';
}

function accessModes(modes: string[] | undefined): string {
  const short: Record<string, string> = {
    ReadWriteOnce: 'RWO',
    ReadOnlyMany: 'ROX',
    ReadWriteMany: 'RWX',
    ReadWriteOncePod: 'RWOP',
  };
  return (modes ?? []).map((m) => short[m] ?? m).join(',');
}

function containersOf(o: KubeObject, field: 'name' | 'image'): string {
  return (o.spec?.template?.spec?.containers ?? [])
    .map((c: Record<string, string>) => c[field])
    .join(',');
}

const COLUMNS: Record<string, Column[]> = {
  '/Pod': [
    name,
    col('Ready', podReady),
    col('Status', podStatus),
    col('Restarts', restarts, 0, 'integer'),
    age,
    col('IP', (o) => o.status?.podIP ?? '<none>', 1),
    col('Node', (o) => o.spec?.nodeName ?? '<none>', 1),
  ],
  'apps/Deployment': [
    name,
    col('Ready', (o) => `${o.status?.readyReplicas ?? 0}/${o.spec?.replicas ?? 0}`),
    col('Up-to-date', (o) => o.status?.updatedReplicas ?? 0, 0, 'integer'),
    col('Available', (o) => o.status?.availableReplicas ?? 0, 0, 'integer'),
    age,
    col('Containers', (o) => containersOf(o, 'name'), 1),
    col('Images', (o) => containersOf(o, 'image'), 1),
  ],
  'apps/StatefulSet': [
    name,
    col('Ready', (o) => `${o.status?.readyReplicas ?? 0}/${o.spec?.replicas ?? 0}`),
    age,
    col('Containers', (o) => containersOf(o, 'name'), 1),
    col('Images', (o) => containersOf(o, 'image'), 1),
  ],
  'apps/ReplicaSet': [
    name,
    col('Desired', (o) => o.spec?.replicas ?? 0, 0, 'integer'),
    col('Current', (o) => o.status?.replicas ?? 0, 0, 'integer'),
    col('Ready', (o) => o.status?.readyReplicas ?? 0, 0, 'integer'),
    age,
  ],
  'batch/Job': [
    name,
    col(
      'Status',
      (o) =>
        o.status?.conditions?.find(
          (c: { type: string; status: string }) =>
            c.status === 'True' && (c.type === 'Complete' || c.type === 'Failed'),
        )?.type ?? 'Running',
    ),
    col('Completions', (o) => `${o.status?.succeeded ?? 0}/${o.spec?.completions ?? 1}`),
    col('Duration', (o) =>
      humanAge(
        o.status?.startTime,
        o.status?.completionTime ? Date.parse(o.status.completionTime) : Date.now(),
      ),
    ),
    age,
  ],
  '/Service': [
    name,
    col('Type', (o) => o.spec?.type ?? 'ClusterIP'),
    col('Cluster-IP', (o) => o.spec?.clusterIP ?? '<none>'),
    col('External-IP', externalIp),
    col('Port(s)', servicePorts),
    age,
  ],
  '/Namespace': [name, col('Status', (o) => o.status?.phase ?? 'Active'), age],
  '/Node': [
    name,
    col(
      'Status',
      (o) =>
        (o.status?.conditions?.some(
          (c: { type: string; status: string }) => c.type === 'Ready' && c.status === 'True',
        )
          ? 'Ready'
          : 'NotReady') + (o.spec?.unschedulable ? ',SchedulingDisabled' : ''),
    ),
    col(
      'Roles',
      (o) =>
        Object.keys(o.metadata.labels ?? {})
          .filter((l) => l.startsWith('node-role.kubernetes.io/'))
          .map((l) => l.slice('node-role.kubernetes.io/'.length))
          .join(',') || '<none>',
    ),
    age,
    col('Version', (o) => o.status?.nodeInfo?.kubeletVersion ?? ''),
  ],
  '/PersistentVolumeClaim': [
    name,
    col('Status', (o) => o.status?.phase ?? 'Pending'),
    col('Volume', (o) => o.spec?.volumeName ?? ''),
    col('Capacity', (o) => o.status?.capacity?.storage ?? ''),
    col('Access Modes', (o) => accessModes(o.status?.accessModes)),
    col('StorageClass', (o) => o.spec?.storageClassName ?? ''),
    age,
  ],
  '/PersistentVolume': [
    name,
    col('Capacity', (o) => o.spec?.capacity?.storage ?? ''),
    col('Access Modes', (o) => accessModes(o.spec?.accessModes)),
    col('Reclaim Policy', (o) => o.spec?.persistentVolumeReclaimPolicy ?? ''),
    col('Status', (o) => o.status?.phase ?? 'Pending'),
    col('Claim', (o) =>
      o.spec?.claimRef ? `${o.spec.claimRef.namespace}/${o.spec.claimRef.name}` : '',
    ),
    col('StorageClass', (o) => o.spec?.storageClassName ?? ''),
    age,
  ],
  '/Secret': [
    name,
    col('Type', (o) => String(o.type ?? 'Opaque')),
    col('Data', (o) => Object.keys(o.data ?? {}).length, 0, 'integer'),
    age,
  ],
  '/ConfigMap': [name, col('Data', (o) => Object.keys(o.data ?? {}).length, 0, 'integer'), age],
  '/Endpoints': [
    name,
    col('Endpoints', (o) => {
      const eps = (
        (o.subsets as Array<{
          addresses?: Array<{ ip: string }>;
          ports?: Array<{ port: number }>;
        }>) ?? []
      ).flatMap((s: { addresses?: Array<{ ip: string }>; ports?: Array<{ port: number }> }) =>
        (s.addresses ?? []).flatMap((a) => (s.ports ?? []).map((p) => `${a.ip}:${p.port}`)),
      );
      return eps.length ? eps.join(',') : '<none>';
    }),
    age,
  ],
  '/Event': [
    col('Last Seen', (o) => humanAge(o.lastTimestamp as string)),
    col('Type', (o) => String(o.type ?? '')),
    col('Reason', (o) => String(o.reason ?? '')),
    col('Object', (o) => {
      const io = o.involvedObject as { kind?: string; name?: string } | undefined;
      return `${String(io?.kind ?? '').toLowerCase()}/${io?.name ?? ''}`;
    }),
    col('Message', (o) => String(o.message ?? '')),
  ],
  'coordination.k8s.io/Lease': [name, col('Holder', (o) => o.spec?.holderIdentity ?? ''), age],
  'storage.k8s.io/StorageClass': [
    {
      ...name,
      cell: (o) =>
        o.metadata.annotations?.['storageclass.kubernetes.io/is-default-class'] === 'true'
          ? `${o.metadata.name} (default)`
          : o.metadata.name,
    },
    col('Provisioner', (o) => String(o.provisioner ?? '')),
    col('ReclaimPolicy', (o) => String(o.reclaimPolicy ?? 'Delete')),
    col('VolumeBindingMode', (o) => String(o.volumeBindingMode ?? 'Immediate')),
    age,
  ],
  'apiextensions.k8s.io/CustomResourceDefinition': [
    name,
    col('Created At', (o) => o.metadata.creationTimestamp ?? ''),
  ],
};

export type IncludeObject = 'None' | 'Metadata' | 'Object';

export function wantsTable(accept: string | undefined): boolean {
  return /as=Table/.test(accept ?? '');
}

export function toTable(
  type: ResourceType,
  objects: KubeObject[],
  listMeta: Record<string, unknown>,
  include: IncludeObject,
): object {
  const columns = COLUMNS[`${type.group}/${type.kind}`] ?? [name, age];
  return {
    kind: 'Table',
    apiVersion: 'meta.k8s.io/v1',
    metadata: listMeta,
    columnDefinitions: columns.map((c) => ({
      name: c.name,
      type: c.type,
      format: c.format ?? '',
      description: '',
      priority: c.priority ?? 0,
    })),
    rows: objects.map((o) => ({
      cells: columns.map((c) => c.cell(o)),
      ...(include === 'None'
        ? {}
        : {
            object:
              include === 'Object'
                ? o
                : {
                    kind: 'PartialObjectMetadata',
                    apiVersion: 'meta.k8s.io/v1',
                    metadata: o.metadata,
                  },
          }),
    })),
  };
}
