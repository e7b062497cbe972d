// Reads and watches of the cluster through @kubernetes/client-node, pinned to KUBE_CONTEXT and
// KUBECONFIG exactly as kubectl is (lib/engine/step-context.ts kubectlPinArgs). Only reads: mutations
// stay kubectl/tofu commands run through the audited runner (docs/architecture.md), so everything here
// also runs in a dry run. client-node costs a good part of a second to import, so it is loaded
// on the first call, never when this module is imported.
import type { Config } from '../config.ts';
import { registerSecret } from '../mask.ts';
import { apiError, createKubeApi, KubeError } from './kube-api.ts';

export { KubeError };

export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata: {
    name: string;
    namespace?: string;
    uid?: string;
    resourceVersion?: string;
    generation?: number;
    creationTimestamp?: string;
    deletionTimestamp?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
  // biome-ignore lint/suspicious/noExplicitAny: any object of any kind, read field by field
  spec?: any;
  // biome-ignore lint/suspicious/noExplicitAny: as above
  status?: any;
  // biome-ignore lint/suspicious/noExplicitAny: Secrets, ConfigMaps
  data?: any;
  [field: string]: unknown;
}

export interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: {
    secretKeyRef?: { name: string; key: string; optional?: boolean };
    configMapKeyRef?: { name: string; key: string; optional?: boolean };
    fieldRef?: { fieldPath: string };
  };
}

export interface DeploymentInfo {
  name: string;
  namespace: string;
  /** spec.replicas: what was asked for */
  replicas: number;
  readyReplicas: number;
  updatedReplicas: number;
  availableReplicas: number;
  generation: number;
  observedGeneration: number;
  annotations: Record<string, string>;
  labels: Record<string, string>;
  containers: { name: string; image: string; env: EnvVar[] }[];
  /** spec.selector as a label selector string, for pods() */
  selector: string;
  raw: KubeObject;
}

export interface StatefulSetInfo {
  replicas: number;
  readyReplicas: number;
  raw: KubeObject;
}

export interface PodInfo {
  name: string;
  phase: string;
  ready: boolean;
  /** when the Ready condition last turned True (the cluster's own record), while it is True */
  readySince: string | undefined;
  restarts: number;
  node: string | undefined;
  podIP: string | undefined;
  startedAt: string | undefined;
  /** a deletionTimestamp is set: the pod is Terminating */
  deleting: boolean;
  containers: { name: string; ready: boolean; restarts: number; image: string }[];
}

export interface EventInfo {
  type: string;
  reason: string;
  message: string;
  count: number;
  lastTimestamp: string | undefined;
}

export interface PvcInfo {
  phase: string;
  capacity?: string;
  storageClass?: string;
}

export interface ListOptions {
  namespace?: string;
  labelSelector?: string;
  fieldSelector?: string;
}

export interface Kube {
  get<T = KubeObject>(
    apiVersion: string,
    kind: string,
    name: string,
    namespace?: string,
  ): Promise<T | undefined>;
  list<T = KubeObject>(apiVersion: string, kind: string, opts?: ListOptions): Promise<T[]>;
  deployment(ns: string, name: string): Promise<DeploymentInfo | undefined>;
  statefulSet(ns: string, name: string): Promise<StatefulSetInfo | undefined>;
  pods(ns: string, labelSelector: string): Promise<PodInfo[]>;
  events(ns: string, kind: string, name: string): Promise<EventInfo[]>;
  pvc(ns: string, name: string): Promise<PvcInfo | undefined>;
  /** status.loadBalancer.ingress[].ip (or hostname) */
  serviceIngress(ns: string, name: string): Promise<string[]>;
  /** decoded, and registered for masking before it is returned */
  secretValue(ns: string, name: string, key: string): Promise<string | undefined>;
  podLogs(
    ns: string,
    pod: string,
    opts?: { container?: string; sinceTime?: string },
  ): Promise<string>;
  /** the log of the Job's most recent pod */
  jobLogs(ns: string, jobName: string): Promise<string>;
  /** GET through the API server's service proxy; `service` is `name:port`, `path` may carry a query */
  proxyGet(ns: string, service: string, path: string): Promise<{ status: number; body: string }>;
  /**
   * Lists `path` (a collection, e.g. /api/v1/namespaces/redis/pods), then watches it from the
   * list's resourceVersion, calling `test` with every object currently there after each change;
   * resolves with the first value that is not undefined/false/null. Rejects when `signal` aborts,
   * and closes the watch either way.
   */
  watchUntil<T>(
    path: string,
    opts: { labelSelector?: string; fieldSelector?: string },
    test: (objs: KubeObject[]) => T | undefined | false | null,
    signal: AbortSignal,
  ): Promise<T>;
}

interface ApiResource {
  name: string;
  kind: string;
  namespaced: boolean;
}

const LIST_PAGE = 500;
// A watch that has been quiet this long is reopened from its last resourceVersion; client-node
// itself gives up on a silent watch after 30 s.
const WATCH_TIMEOUT_SECONDS = 25;
const WATCH_RETRY_MS = 1_000;

/** Typed reads of the cluster in cfg.kubeContext; the client is created on the first call. */
export function createKube(cfg: Config, opts: { signal?: AbortSignal } = {}): Kube {
  const api = createKubeApi(cfg, opts);
  const request = (path: string, query: Record<string, string | undefined> = {}) =>
    api.request('GET', path, { query });
  const discovery = new Map<string, Promise<ApiResource[]>>();

  const getJson = <T>(path: string, query: Record<string, string | undefined> = {}) =>
    api.json<T>('GET', path, { query });

  async function resourcesOf(apiVersion: string): Promise<ApiResource[]> {
    let found = discovery.get(apiVersion);
    if (!found) {
      const path = apiVersion.includes('/') ? `/apis/${apiVersion}` : `/api/${apiVersion}`;
      found = getJson<{ resources: ApiResource[] }>(path).then((list) => list?.resources ?? []);
      discovery.set(apiVersion, found);
      found.catch(() => discovery.delete(apiVersion));
    }
    return found;
  }

  async function collectionPath(apiVersion: string, kind: string, namespace?: string) {
    const resource = (await resourcesOf(apiVersion)).find(
      (r) => r.kind === kind && !r.name.includes('/'),
    );
    if (!resource) {
      throw new KubeError(
        `the cluster serves no kind ${kind} in ${apiVersion}: check the apiVersion, or install the CRD that defines it (kubectl --context ${cfg.kubeContext} api-resources)`,
        404,
        'NotFound',
      );
    }
    const base = apiVersion.includes('/') ? `/apis/${apiVersion}` : `/api/${apiVersion}`;
    const ns = resource.namespaced && namespace ? `/namespaces/${namespace}` : '';
    return `${base}${ns}/${resource.name}`;
  }

  async function listPath<T>(path: string, query: Record<string, string | undefined>) {
    const items: T[] = [];
    let next: string | undefined;
    do {
      const page = await getJson<{ items: T[]; metadata?: { continue?: string } }>(path, {
        ...query,
        limit: String(LIST_PAGE),
        continue: next,
      });
      items.push(...(page?.items ?? []));
      next = page?.metadata?.continue || undefined;
    } while (next);
    return items;
  }

  const kube: Kube = {
    async get<T>(apiVersion: string, kind: string, name: string, namespace?: string) {
      const path = await collectionPath(apiVersion, kind, namespace);
      return getJson<T>(`${path}/${encodeURIComponent(name)}`);
    },

    async list<T>(apiVersion: string, kind: string, listOpts: ListOptions = {}) {
      const path = await collectionPath(apiVersion, kind, listOpts.namespace);
      return listPath<T>(path, {
        labelSelector: listOpts.labelSelector,
        fieldSelector: listOpts.fieldSelector,
      });
    },

    async deployment(ns, name) {
      const raw = await getJson<KubeObject>(
        `/apis/apps/v1/namespaces/${ns}/deployments/${encodeURIComponent(name)}`,
      );
      return raw && toDeploymentInfo(raw);
    },

    async statefulSet(ns, name) {
      const raw = await getJson<KubeObject>(
        `/apis/apps/v1/namespaces/${ns}/statefulsets/${encodeURIComponent(name)}`,
      );
      return (
        raw && {
          replicas: raw.spec?.replicas ?? 1,
          readyReplicas: raw.status?.readyReplicas ?? 0,
          raw,
        }
      );
    },

    async pods(ns, labelSelector) {
      const items = await listPath<KubeObject>(`/api/v1/namespaces/${ns}/pods`, { labelSelector });
      return items.map(toPodInfo);
    },

    async events(ns, kind, name) {
      const items = await listPath<KubeObject>(`/api/v1/namespaces/${ns}/events`, {
        fieldSelector: `involvedObject.kind=${kind},involvedObject.name=${name}`,
      });
      return items
        .map((e) => ({
          type: String(e.type ?? ''),
          reason: String(e.reason ?? ''),
          message: String(e.message ?? ''),
          count: Number(e.count ?? 1),
          lastTimestamp: (e.lastTimestamp ?? e.eventTime ?? e.metadata.creationTimestamp) as
            | string
            | undefined,
        }))
        .sort((a, b) => (a.lastTimestamp ?? '').localeCompare(b.lastTimestamp ?? ''));
    },

    async pvc(ns, name) {
      const raw = await getJson<KubeObject>(
        `/api/v1/namespaces/${ns}/persistentvolumeclaims/${encodeURIComponent(name)}`,
      );
      if (!raw) return undefined;
      return {
        phase: raw.status?.phase ?? 'Pending',
        ...(raw.status?.capacity?.storage ? { capacity: raw.status.capacity.storage } : {}),
        ...(raw.spec?.storageClassName ? { storageClass: raw.spec.storageClassName } : {}),
      };
    },

    async serviceIngress(ns, name) {
      const raw = await getJson<KubeObject>(
        `/api/v1/namespaces/${ns}/services/${encodeURIComponent(name)}`,
      );
      const ingress = (raw?.status?.loadBalancer?.ingress ?? []) as {
        ip?: string;
        hostname?: string;
      }[];
      return ingress.map((i) => i.ip ?? i.hostname ?? '').filter(Boolean);
    },

    async secretValue(ns, name, key) {
      const raw = await getJson<KubeObject>(
        `/api/v1/namespaces/${ns}/secrets/${encodeURIComponent(name)}`,
      );
      const encoded = raw?.data?.[key] as string | undefined;
      if (encoded === undefined) return undefined;
      const value = Buffer.from(encoded, 'base64').toString('utf8');
      registerSecret(value);
      return value;
    },

    async podLogs(ns, pod, logOpts = {}) {
      const path = `/api/v1/namespaces/${ns}/pods/${encodeURIComponent(pod)}/log`;
      const { status, body } = await request(path, {
        container: logOpts.container,
        sinceTime: logOpts.sinceTime,
      });
      if (status < 200 || status > 299) throw apiError('GET', path, status, body);
      return body;
    },

    async jobLogs(ns, jobName) {
      const job = await getJson<KubeObject>(
        `/apis/batch/v1/namespaces/${ns}/jobs/${encodeURIComponent(jobName)}`,
      );
      if (!job) {
        throw new KubeError(
          `job ${ns}/${jobName} does not exist, so it has no logs`,
          404,
          'NotFound',
        );
      }
      const pods = await listPath<KubeObject>(`/api/v1/namespaces/${ns}/pods`, {
        labelSelector: selectorString(job.spec?.selector),
      });
      const latest = pods.sort((a, b) =>
        (a.metadata.creationTimestamp ?? '').localeCompare(b.metadata.creationTimestamp ?? ''),
      )[pods.length - 1];
      if (!latest) {
        throw new KubeError(
          `job ${ns}/${jobName} has no pods (yet), so it has no logs`,
          404,
          'NotFound',
        );
      }
      return kube.podLogs(ns, latest.metadata.name);
    },

    async proxyGet(ns, service, path) {
      const [pathname = '', search = ''] = path.replace(/^\//, '').split(/\?(.*)/s);
      const result = await request(
        `/api/v1/namespaces/${ns}/services/${encodeURIComponent(service)}/proxy/${pathname}`,
        Object.fromEntries(new URLSearchParams(search)),
      );
      return result;
    },

    async watchUntil<T>(
      path: string,
      selectors: { labelSelector?: string; fieldSelector?: string },
      test: (objs: KubeObject[]) => T | undefined | false | null,
      signal: AbortSignal,
    ): Promise<T> {
      const { k8s, kc } = await api.load();
      signal.throwIfAborted();
      const objects = new Map<string, KubeObject>();
      const keyOf = (o: KubeObject) => `${o.metadata.namespace ?? ''}/${o.metadata.name}`;
      const evaluate = () => {
        const value = test([...objects.values()]);
        return value === undefined || value === false || value === null
          ? undefined
          : { value: value as T };
      };
      const relist = async () => {
        const list = await getJson<{
          items: KubeObject[];
          metadata?: { resourceVersion?: string };
        }>(path, {
          labelSelector: selectors.labelSelector,
          fieldSelector: selectors.fieldSelector,
        });
        if (!list)
          throw new KubeError(`nothing to watch at ${path}: it does not exist`, 404, 'NotFound');
        objects.clear();
        for (const item of list.items) objects.set(keyOf(item), item);
        return list.metadata?.resourceVersion ?? '';
      };

      let resourceVersion = await relist();
      const first = evaluate();
      if (first) return first.value;

      return new Promise<T>((resolve, reject) => {
        let controller: AbortController | undefined;
        let retryTimer: NodeJS.Timeout | undefined;
        let finished = false;
        // Aborting a superseded watch calls its done callback too: only the newest one counts.
        let generation = 0;
        const finish = (outcome: () => void) => {
          if (finished) return;
          finished = true;
          clearTimeout(retryTimer);
          signal.removeEventListener('abort', onAbort);
          controller?.abort();
          outcome();
        };
        const onAbort = () => finish(() => reject(signal.reason ?? new Error('aborted')));
        signal.addEventListener('abort', onAbort, { once: true });

        const restart = (relistFirst: boolean, delayMs: number) => {
          if (finished) return;
          generation++;
          controller?.abort();
          retryTimer = setTimeout(async () => {
            try {
              if (relistFirst) {
                resourceVersion = await relist();
                const done = evaluate();
                if (done) return finish(() => resolve(done.value));
              }
              open();
            } catch (err) {
              if (err instanceof KubeError && err.status === 404) return finish(() => reject(err));
              restart(relistFirst, WATCH_RETRY_MS);
            }
          }, delayMs);
        };

        const open = () => {
          if (finished) return;
          const mine = ++generation;
          const current = () => !finished && mine === generation;
          let expired = false;
          new k8s.Watch(kc)
            .watch(
              path,
              {
                labelSelector: selectors.labelSelector,
                fieldSelector: selectors.fieldSelector,
                resourceVersion,
                allowWatchBookmarks: true,
                timeoutSeconds: WATCH_TIMEOUT_SECONDS,
              },
              (type: string, obj: KubeObject) => {
                if (!current()) return;
                if (type === 'ERROR') {
                  // 410 Gone: the history behind our resourceVersion is gone; list again.
                  expired = (obj as { code?: number }).code === 410;
                  return;
                }
                if (obj?.metadata?.resourceVersion) resourceVersion = obj.metadata.resourceVersion;
                if (type === 'BOOKMARK') return;
                if (type === 'DELETED') objects.delete(keyOf(obj));
                else objects.set(keyOf(obj), obj);
                const done = evaluate();
                if (done) finish(() => resolve(done.value));
              },
              (err: unknown) => {
                if (!current()) return;
                const gone = expired || (err as { statusCode?: number })?.statusCode === 410;
                // A watch the server closed on its timeout is simply reopened; a failed one after a pause.
                restart(gone, err ? WATCH_RETRY_MS : 0);
              },
            )
            .then(
              (c: AbortController) => {
                if (current()) controller = c;
                else c.abort();
              },
              () => {
                if (current()) restart(false, WATCH_RETRY_MS);
              },
            );
        };
        open();
      });
    },
  };
  return kube;
}

interface LabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: { key: string; operator: string; values?: string[] }[];
}

/** A LabelSelector object in the string form list calls take (`app=x,tier in (a,b)`). */
export function selectorString(selector: LabelSelector | undefined): string {
  const parts = Object.entries(selector?.matchLabels ?? {}).map(([k, v]) => `${k}=${v}`);
  for (const e of selector?.matchExpressions ?? []) {
    const values = (e.values ?? []).join(',');
    if (e.operator === 'In') parts.push(`${e.key} in (${values})`);
    else if (e.operator === 'NotIn') parts.push(`${e.key} notin (${values})`);
    else if (e.operator === 'Exists') parts.push(e.key);
    else if (e.operator === 'DoesNotExist') parts.push(`!${e.key}`);
  }
  return parts.join(',');
}

export function toDeploymentInfo(raw: KubeObject): DeploymentInfo {
  const containers = (raw.spec?.template?.spec?.containers ?? []) as {
    name: string;
    image: string;
    env?: EnvVar[];
  }[];
  return {
    name: raw.metadata.name,
    namespace: raw.metadata.namespace ?? '',
    replicas: raw.spec?.replicas ?? 1,
    readyReplicas: raw.status?.readyReplicas ?? 0,
    updatedReplicas: raw.status?.updatedReplicas ?? 0,
    availableReplicas: raw.status?.availableReplicas ?? 0,
    generation: raw.metadata.generation ?? 0,
    observedGeneration: raw.status?.observedGeneration ?? 0,
    annotations: raw.metadata.annotations ?? {},
    labels: raw.metadata.labels ?? {},
    containers: containers.map((c) => ({ name: c.name, image: c.image, env: c.env ?? [] })),
    selector: selectorString(raw.spec?.selector),
    raw,
  };
}

export function toPodInfo(raw: KubeObject): PodInfo {
  const statuses = (raw.status?.containerStatuses ?? []) as {
    name: string;
    ready: boolean;
    restartCount: number;
    image: string;
  }[];
  const conditions = (raw.status?.conditions ?? []) as {
    type: string;
    status: string;
    lastTransitionTime?: string;
  }[];
  const ready = conditions.find((c) => c.type === 'Ready' && c.status === 'True');
  return {
    name: raw.metadata.name,
    phase: raw.status?.phase ?? 'Pending',
    ready: Boolean(ready),
    readySince: ready?.lastTransitionTime,
    restarts: statuses.reduce((sum, s) => sum + (s.restartCount ?? 0), 0),
    node: raw.spec?.nodeName,
    podIP: raw.status?.podIP,
    startedAt: raw.status?.startTime,
    deleting: Boolean(raw.metadata.deletionTimestamp),
    containers: statuses.map((s) => ({
      name: s.name,
      ready: Boolean(s.ready),
      restarts: s.restartCount ?? 0,
      image: s.image,
    })),
  };
}
