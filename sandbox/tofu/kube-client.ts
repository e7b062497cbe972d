// The stand-in's Kubernetes provider: plain HTTP calls to the API server named by the kubeconfig,
// the way the kubernetes and helm providers reach a cluster.
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { parse } from 'yaml';
import { type HttpAnswer, request } from '../http-request.ts';

export interface KubeTarget {
  server: string;
  token?: string;
  context: string;
}

// biome-ignore lint/suspicious/noExplicitAny: Kubernetes objects of every kind
export type Manifest = Record<string, any>;

export class KubeError extends Error {
  readonly status: number;
  /** The Status message alone, as client-go's StatusError reports it. */
  readonly apiMessage: string;
  constructor(message: string, status: number, apiMessage: string) {
    super(message);
    this.status = status;
    this.apiMessage = apiMessage;
  }
}

/**
 * The cluster to talk to: the `kubeconfig_path` variable when it was given (`pathGiven`), else
 * $KUBECONFIG when set (the sandbox's env sets it), else the variable's default; and the context the `kube_context` variable names, never the
 * current one, as the providers are configured (providers.tf).
 */
export function resolveKubeTarget(
  kubeconfigPath: string | undefined,
  context: string | undefined,
  pathGiven = false,
): KubeTarget {
  const fromVariable = kubeconfigPath?.replace(/^~(?=\/|$)/, homedir());
  const fromEnv = process.env.KUBECONFIG?.split(':')[0];
  const candidates = pathGiven ? [fromVariable] : [fromEnv, fromVariable];
  const path = candidates.find((p): p is string => !!p && existsSync(p));
  if (!path) {
    throw new Error(
      `no kubeconfig found (tried ${candidates.filter(Boolean).join(', ')}): source sandbox/.run/env or set KUBECONFIG`,
    );
  }
  // biome-ignore lint/suspicious/noExplicitAny: kubeconfig YAML
  const config: any = parse(readFileSync(path, 'utf8'));
  // biome-ignore lint/suspicious/noExplicitAny: kubeconfig YAML
  const contexts: any[] = config.contexts ?? [];
  const chosen = contexts.find((c) => c.name === context);
  if (!chosen) {
    const known = contexts.map((c) => c.name).join(', ') || 'none';
    throw new Error(
      `kubeconfig ${path} has no context "${context}" (variable kube_context; contexts there: ${known}). ` +
        'Pass -var kube_context=<name> or set TF_VAR_kube_context, e.g. -var kube_context=sandbox',
    );
  }
  const cluster = (config.clusters ?? []).find(
    // biome-ignore lint/suspicious/noExplicitAny: kubeconfig YAML
    (c: any) => c.name === chosen.context?.cluster,
  )?.cluster;
  // biome-ignore lint/suspicious/noExplicitAny: kubeconfig YAML
  const user = (config.users ?? []).find((u: any) => u.name === chosen.context?.user)?.user;
  if (!cluster?.server)
    throw new Error(`context ${chosen.name} in ${path} names no cluster server`);
  return {
    server: String(cluster.server).replace(/\/$/, ''),
    token: user?.token,
    context: chosen.name,
  };
}

const CORE_KINDS: Record<string, string> = {
  Namespace: 'namespaces',
  Secret: 'secrets',
  ConfigMap: 'configmaps',
  Service: 'services',
  ServiceAccount: 'serviceaccounts',
  PersistentVolumeClaim: 'persistentvolumeclaims',
  Pod: 'pods',
};
const GROUP_KINDS: Record<string, string> = {
  StatefulSet: 'statefulsets',
  Deployment: 'deployments',
  ServiceMonitor: 'servicemonitors',
  PrometheusRule: 'prometheusrules',
  NetworkPolicy: 'networkpolicies',
  PodDisruptionBudget: 'poddisruptionbudgets',
  DaemonSet: 'daemonsets',
};

export class KubeClient {
  readonly target: KubeTarget;

  constructor(target: KubeTarget) {
    this.target = target;
  }

  /**
   * This tofu only stands in for the real one in the sandbox: it refuses to change a cluster
   * that is not the sandbox's emulator (which answers /sandbox/status), such as the homelab a
   * stray kubeconfig could point at.
   */
  async assertSandbox(): Promise<void> {
    let status = 0;
    try {
      status = (await request(`${this.target.server}/sandbox/status`, { timeoutMs: 5000 })).status;
    } catch (err) {
      throw new Error(
        `cannot reach the cluster at ${this.target.server}: ${(err as Error).message}. Is the sandbox up? Start it with \`npm run sandbox -- up\`, then \`source sandbox/.run/env\``,
      );
    }
    if (status !== 200) {
      throw new Error(
        `${this.target.server} (context ${this.target.context}) is not the sandbox: this tofu is the sandbox's ` +
          'stand-in and changes nothing else. Source sandbox/.run/env, or use the real OpenTofu for a real cluster.',
      );
    }
  }

  path(apiVersion: string, kind: string, namespace: string | undefined, name?: string): string {
    const plural = CORE_KINDS[kind] ?? GROUP_KINDS[kind];
    if (!plural) throw new Error(`the sandbox's tofu does not manage kind ${kind}`);
    const base = apiVersion.includes('/') ? `/apis/${apiVersion}` : `/api/${apiVersion}`;
    const ns = namespace && kind !== 'Namespace' ? `/namespaces/${namespace}` : '';
    return `${base}${ns}/${plural}${name ? `/${name}` : ''}`;
  }

  async get(
    apiVersion: string,
    kind: string,
    namespace: string | undefined,
    name: string,
  ): Promise<Manifest | undefined> {
    const res = await this.request('GET', this.path(apiVersion, kind, namespace, name));
    return res.status === 404 ? undefined : res.body;
  }

  /** Creates the object; the API server's error (AlreadyExists included) is thrown as it is. */
  async create(object: Manifest): Promise<Manifest> {
    const { apiVersion, kind, metadata } = object;
    return (await this.request('POST', this.path(apiVersion, kind, metadata.namespace), object))
      .body;
  }

  /** Creates the object, or merges it into the one that exists (Helm's objects). */
  async apply(object: Manifest): Promise<Manifest> {
    const { apiVersion, kind, metadata } = object;
    const existing = await this.get(apiVersion, kind, metadata.namespace, metadata.name);
    if (!existing) return this.create(object);
    return this.patch(apiVersion, kind, metadata.namespace, metadata.name, object);
  }

  /** The CustomResourceDefinition that serves `kind` in `group`, if one is installed. */
  async crdFor(group: string, kind: string): Promise<Manifest | undefined> {
    const res = await this.request(
      'GET',
      '/apis/apiextensions.k8s.io/v1/customresourcedefinitions',
    );
    return ((res.body?.items ?? []) as Manifest[]).find(
      (c) => c.spec?.group === group && c.spec?.names?.kind === kind,
    );
  }

  /** Server-side apply (application/apply-patch+yaml; JSON is YAML) with a field manager. */
  async serverSideApply(object: Manifest, fieldManager: string, force: boolean): Promise<Manifest> {
    const { apiVersion, kind, metadata } = object;
    const query = `?fieldManager=${encodeURIComponent(fieldManager)}${force ? '&force=true' : ''}`;
    return (
      await this.request(
        'PATCH',
        `${this.path(apiVersion, kind, metadata.namespace, metadata.name)}${query}`,
        object,
        'application/apply-patch+yaml',
      )
    ).body;
  }

  async patch(
    apiVersion: string,
    kind: string,
    namespace: string | undefined,
    name: string,
    patch: object,
  ): Promise<Manifest> {
    return (
      await this.request(
        'PATCH',
        this.path(apiVersion, kind, namespace, name),
        patch,
        'application/merge-patch+json',
      )
    ).body;
  }

  /** Deletes the object; one that is already gone is fine. */
  async delete(
    apiVersion: string,
    kind: string,
    namespace: string | undefined,
    name: string,
  ): Promise<void> {
    await this.request(
      'DELETE',
      this.path(apiVersion, kind, namespace, name),
      undefined,
      undefined,
      [404],
    );
  }

  private async request(
    method: string,
    path: string,
    body?: unknown,
    contentType = 'application/json',
    allowed: number[] = [],
  ): Promise<{ status: number; body: Manifest }> {
    const headers: Record<string, string> = { accept: 'application/json' };
    if (this.target.token) headers.authorization = `Bearer ${this.target.token}`;
    if (body !== undefined) headers['content-type'] = contentType;
    let response: HttpAnswer;
    try {
      response = await request(`${this.target.server}${path}`, {
        method,
        headers,
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
    } catch (err) {
      throw new Error(
        `cannot reach the cluster at ${this.target.server}: ${(err as Error).message}. Is the sandbox up? Start it with \`npm run sandbox -- up\`, then \`source sandbox/.run/env\``,
      );
    }
    const text = response.text;
    const parsed = text ? safeJson(text) : {};
    if (
      (response.status >= 200 && response.status < 300) ||
      allowed.includes(response.status) ||
      (method === 'GET' && response.status === 404)
    ) {
      return { status: response.status, body: parsed };
    }
    const message = String(parsed?.message ?? text);
    throw new KubeError(
      `${method} ${path}: ${response.status} ${message}`,
      response.status,
      message,
    );
  }
}

function safeJson(text: string): Manifest {
  try {
    return JSON.parse(text);
  } catch {
    return { message: text };
  }
}
