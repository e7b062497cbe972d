// The resource types the emulator serves: the built-in kinds the runbooks touch, plus every kind
// a CustomResourceDefinition registers while the sandbox runs.
import type { KindRef, KubeObject } from '../runtime.ts';

export interface ResourceType {
  group: string;
  /** Versions served, the first one preferred (the storage version). */
  versions: string[];
  kind: string;
  listKind: string;
  plural: string;
  singular: string;
  namespaced: boolean;
  shortNames: string[];
  categories: string[];
  subresources: string[];
  /** What discovery says the kind supports; every CRUD verb when absent. */
  verbs?: string[];
  /** Set for kinds a CRD registered, so deleting the CRD removes them again. */
  crd?: string;
  /** A CRD's openAPIV3Schema per served version (unknown fields are pruned or refused by it). */
  schemas?: Record<string, unknown>;
}

/** The kinds `kubectl get all` lists. */
const IN_CATEGORY_ALL = ['Pod', 'Service', 'Deployment', 'StatefulSet', 'ReplicaSet', 'Job'];

const ALL_VERBS = [
  'create',
  'delete',
  'deletecollection',
  'get',
  'list',
  'patch',
  'update',
  'watch',
];

function builtin(
  group: string,
  version: string,
  kind: string,
  plural: string,
  namespaced: boolean,
  shortNames: string[] = [],
  subresources: string[] = [],
): ResourceType {
  return {
    group,
    versions: [version],
    kind,
    listKind: `${kind}List`,
    plural,
    singular: kind.toLowerCase(),
    namespaced,
    shortNames,
    categories: IN_CATEGORY_ALL.includes(kind) ? ['all'] : [],
    subresources,
  };
}

export const BUILTIN_RESOURCES: ResourceType[] = [
  builtin('', 'v1', 'Namespace', 'namespaces', false, ['ns'], ['status', 'finalize']),
  builtin('', 'v1', 'Node', 'nodes', false, ['no'], ['status']),
  builtin('', 'v1', 'Pod', 'pods', true, ['po'], ['status', 'log', 'exec', 'eviction']),
  builtin('', 'v1', 'Service', 'services', true, ['svc'], ['status', 'proxy']),
  builtin('', 'v1', 'Endpoints', 'endpoints', true, ['ep']),
  builtin('', 'v1', 'Secret', 'secrets', true),
  builtin('', 'v1', 'ConfigMap', 'configmaps', true, ['cm']),
  builtin('', 'v1', 'PersistentVolumeClaim', 'persistentvolumeclaims', true, ['pvc'], ['status']),
  builtin('', 'v1', 'PersistentVolume', 'persistentvolumes', false, ['pv'], ['status']),
  builtin('', 'v1', 'ServiceAccount', 'serviceaccounts', true, ['sa']),
  builtin('', 'v1', 'Event', 'events', true, ['ev']),
  builtin('apps', 'v1', 'Deployment', 'deployments', true, ['deploy'], ['status', 'scale']),
  builtin('apps', 'v1', 'StatefulSet', 'statefulsets', true, ['sts'], ['status', 'scale']),
  builtin('apps', 'v1', 'ReplicaSet', 'replicasets', true, ['rs'], ['status', 'scale']),
  // Stored, with no controller: K3s ServiceLB's svclb DaemonSets (controllers/service-lb.ts).
  builtin('apps', 'v1', 'DaemonSet', 'daemonsets', true, ['ds'], ['status']),
  builtin('batch', 'v1', 'Job', 'jobs', true, [], ['status']),
  builtin('storage.k8s.io', 'v1', 'StorageClass', 'storageclasses', false, ['sc']),
  builtin('coordination.k8s.io', 'v1', 'Lease', 'leases', true),
  builtin('networking.k8s.io', 'v1', 'NetworkPolicy', 'networkpolicies', true, ['netpol']),
  builtin('policy', 'v1', 'PodDisruptionBudget', 'poddisruptionbudgets', true, ['pdb'], ['status']),
  // Answered, never stored: there is no RBAC, so every review says allowed.
  {
    ...builtin(
      'authorization.k8s.io',
      'v1',
      'SelfSubjectAccessReview',
      'selfsubjectaccessreviews',
      false,
    ),
    verbs: ['create'],
  },
  builtin(
    'apiextensions.k8s.io',
    'v1',
    'CustomResourceDefinition',
    'customresourcedefinitions',
    false,
    ['crd', 'crds'],
    ['status'],
  ),
];

export { ALL_VERBS };

/** Where each served resource type is found, by URL segment and by kind. */
export class ResourceRegistry {
  private readonly byPlural = new Map<string, ResourceType>();

  constructor(types: ResourceType[] = BUILTIN_RESOURCES) {
    for (const type of types) this.add(type);
  }

  add(type: ResourceType): void {
    this.byPlural.set(`${type.group}/${type.plural}`, type);
  }

  remove(group: string, plural: string): void {
    this.byPlural.delete(`${group}/${plural}`);
  }

  all(): ResourceType[] {
    return [...this.byPlural.values()];
  }

  byResource(group: string, version: string, plural: string): ResourceType | undefined {
    const type = this.byPlural.get(`${group}/${plural}`);
    return type?.versions.includes(version) ? type : undefined;
  }

  byKind(ref: Pick<KindRef, 'group' | 'kind'>): ResourceType | undefined {
    for (const type of this.byPlural.values()) {
      if (type.group === ref.group && type.kind === ref.kind) return type;
    }
    return undefined;
  }

  byObject(obj: Pick<KubeObject, 'apiVersion' | 'kind'>): ResourceType | undefined {
    return this.byKind({ group: groupOf(obj.apiVersion), kind: obj.kind });
  }

  groups(): Map<string, string[]> {
    const groups = new Map<string, string[]>();
    for (const type of this.byPlural.values()) {
      if (type.group === '') continue;
      const versions = groups.get(type.group) ?? [];
      for (const v of type.versions) if (!versions.includes(v)) versions.push(v);
      groups.set(type.group, versions);
    }
    return groups;
  }
}

export function groupOf(apiVersion: string): string {
  const slash = apiVersion.indexOf('/');
  return slash < 0 ? '' : apiVersion.slice(0, slash);
}

export function apiVersionOf(group: string, version: string): string {
  return group ? `${group}/${version}` : version;
}

/** A CRD's served kind, as the registry holds it. */
export function resourceTypeFromCrd(crd: KubeObject): ResourceType {
  const spec = crd.spec ?? {};
  const names = spec.names ?? {};
  const versions: string[] = (spec.versions ?? [])
    .filter((v: { served?: boolean }) => v.served !== false)
    .sort(
      (a: { storage?: boolean }, b: { storage?: boolean }) =>
        Number(!!b.storage) - Number(!!a.storage),
    )
    .map((v: { name: string }) => v.name);
  const subresources: string[] = [];
  const first = (spec.versions ?? [])[0]?.subresources ?? {};
  if (first.status) subresources.push('status');
  if (first.scale) subresources.push('scale');
  return {
    group: spec.group,
    versions,
    kind: names.kind,
    listKind: names.listKind ?? `${names.kind}List`,
    plural: names.plural,
    singular: names.singular ?? String(names.kind).toLowerCase(),
    namespaced: spec.scope !== 'Cluster',
    shortNames: names.shortNames ?? [],
    categories: names.categories ?? [],
    subresources,
    crd: crd.metadata.name,
    schemas: Object.fromEntries(
      (spec.versions ?? []).map((v: { name: string; schema?: { openAPIV3Schema?: unknown } }) => [
        v.name,
        v.schema?.openAPIV3Schema,
      ]),
    ),
  };
}
