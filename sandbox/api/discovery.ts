// Legacy discovery (/api, /apis, resource lists) and the small OpenAPI v3 index that kubectl
// needs before `apply --server-side`; aggregated discovery is left out on purpose (kubectl
// falls back to these documents when the server answers with the legacy media type).
import { ALL_VERBS, type ResourceRegistry, type ResourceType } from './resources.ts';

export const KUBERNETES_VERSION = {
  major: '1',
  minor: '32',
  gitVersion: 'v1.32.4+sandbox',
  gitCommit: '0000000000000000000000000000000000000000',
  gitTreeState: 'clean',
  buildDate: '2025-04-22T00:00:00Z',
  goVersion: 'go1.23.8',
  compiler: 'gc',
  platform: 'linux/amd64',
};

const SERVER_ADDRESS = [{ clientCIDR: '0.0.0.0/0', serverAddress: '127.0.0.1' }];

export function coreVersions(): object {
  return { kind: 'APIVersions', versions: ['v1'], serverAddressByClientCIDRs: SERVER_ADDRESS };
}

function groupDocument(group: string, versions: string[]): object {
  const list = versions.map((v) => ({ groupVersion: `${group}/${v}`, version: v }));
  return { name: group, versions: list, preferredVersion: list[0] };
}

export function groupList(registry: ResourceRegistry): object {
  return {
    kind: 'APIGroupList',
    apiVersion: 'v1',
    groups: [...registry.groups()].map(([group, versions]) => groupDocument(group, versions)),
  };
}

export function group(registry: ResourceRegistry, name: string): object | undefined {
  const versions = registry.groups().get(name);
  return versions
    ? { kind: 'APIGroup', apiVersion: 'v1', ...groupDocument(name, versions) }
    : undefined;
}

function subresourceVerbs(sub: string): string[] {
  switch (sub) {
    case 'log':
    case 'exec':
      return ['get'];
    case 'proxy':
      return ['create', 'delete', 'get', 'patch', 'update'];
    case 'eviction':
      return ['create'];
    case 'finalize':
      return ['update'];
    default:
      return ['get', 'patch', 'update'];
  }
}

export function resourceList(
  registry: ResourceRegistry,
  group: string,
  version: string,
): object | undefined {
  const types = registry.all().filter((t) => t.group === group && t.versions.includes(version));
  if (types.length === 0) return undefined;
  const resources: object[] = [];
  for (const t of types) {
    resources.push({
      name: t.plural,
      singularName: t.singular,
      namespaced: t.namespaced,
      kind: t.kind,
      verbs: t.verbs ?? ALL_VERBS,
      ...(t.shortNames.length ? { shortNames: t.shortNames } : {}),
      ...(t.categories.length ? { categories: t.categories } : {}),
      storageVersionHash: '',
    });
    for (const sub of t.subresources) {
      resources.push({
        name: `${t.plural}/${sub}`,
        singularName: '',
        namespaced: t.namespaced,
        kind: sub === 'scale' ? 'Scale' : sub === 'eviction' ? 'Eviction' : t.kind,
        ...(sub === 'scale' ? { group: 'autoscaling', version: 'v1' } : {}),
        verbs: subresourceVerbs(sub),
      });
    }
  }
  return {
    kind: 'APIResourceList',
    apiVersion: 'v1',
    groupVersion: group ? `${group}/${version}` : version,
    resources,
  };
}

/** The OpenAPI v3 index: one entry per group version, each served as an empty document. */
export function openApiIndex(registry: ResourceRegistry): object {
  const paths: Record<string, { serverRelativeURL: string }> = {
    'api/v1': { serverRelativeURL: '/openapi/v3/api/v1?hash=sandbox' },
  };
  for (const [g, versions] of registry.groups()) {
    for (const v of versions) {
      paths[`apis/${g}/${v}`] = { serverRelativeURL: `/openapi/v3/apis/${g}/${v}?hash=sandbox` };
    }
  }
  return { paths };
}

/**
 * One group version's OpenAPI v3 document: just enough for kubectl to see that every kind takes
 * `fieldValidation` on PATCH, so it validates on the server and never downloads schemas.
 */
export function openApiDocument(registry: ResourceRegistry, path: string): object | undefined {
  const m = /^\/openapi\/v3\/(?:api\/(v1)|apis\/([^/]+)\/([^/]+))$/.exec(path);
  if (!m) return undefined;
  const group = m[2] ?? '';
  const version = m[1] ?? m[3]!;
  const types = registry.all().filter((t) => t.group === group && t.versions.includes(version));
  if (types.length === 0) return undefined;
  const prefix = group ? `/apis/${group}/${version}` : '/api/v1';
  const paths: Record<string, object> = {};
  const query = (name: string) => ({
    name,
    in: 'query',
    schema: { type: 'string', uniqueItems: true },
  });
  for (const t of types) {
    const gvk = { group, version, kind: t.kind };
    const item = `${prefix}${t.namespaced ? '/namespaces/{namespace}' : ''}/${t.plural}/{name}`;
    const operation = (action: string) => ({
      'x-kubernetes-action': action,
      'x-kubernetes-group-version-kind': gvk,
      parameters: [
        query('dryRun'),
        query('fieldManager'),
        query('fieldValidation'),
        query('force'),
      ],
      responses: {},
    });
    paths[item] = {
      get: operation('get'),
      put: operation('put'),
      patch: operation('patch'),
      delete: operation('delete'),
    };
    paths[`${prefix}${t.namespaced ? '/namespaces/{namespace}' : ''}/${t.plural}`] = {
      post: operation('post'),
    };
  }
  return {
    openapi: '3.0.0',
    info: { title: 'Kubernetes (sandbox)', version: KUBERNETES_VERSION.gitVersion },
    paths,
    components: { schemas: {} },
  };
}

export type { ResourceType };
