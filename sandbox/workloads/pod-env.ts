// A container's environment as the kubelet would give it: literal values, `$(VAR)` references,
// secretKeyRef / configMapKeyRef / fieldRef, and envFrom.
import type { ClusterAccess, KubeObject } from '../runtime.ts';
import { CONFIG_MAP, SECRET } from './kinds.ts';

// biome-ignore lint/suspicious/noExplicitAny: a container spec as the API stores it
export type ContainerSpec = any;

export interface PodEnvContext {
  pod: KubeObject;
  podIP: string;
  cluster: ClusterAccess;
}

export function resolveEnv(container: ContainerSpec, ctx: PodEnvContext): Record<string, string> {
  const namespace = ctx.pod.metadata.namespace ?? 'default';
  const env: Record<string, string> = {
    HOSTNAME: ctx.pod.metadata.name,
    KUBERNETES_SERVICE_HOST: 'kubernetes.default.svc.cluster.local',
  };
  for (const source of container?.envFrom ?? []) {
    const prefix: string = source.prefix ?? '';
    const data = source.secretRef
      ? secretData(ctx.cluster, namespace, source.secretRef.name)
      : source.configMapRef
        ? configMapData(ctx.cluster, namespace, source.configMapRef.name)
        : undefined;
    for (const [key, value] of Object.entries(data ?? {})) env[prefix + key] = value;
  }
  for (const variable of container?.env ?? []) {
    const value = resolveValue(variable, namespace, env, ctx);
    if (value !== undefined) env[variable.name] = value;
  }
  return env;
}

/** Expands `$(VAR)` as the kubelet does in env values, commands and args; `$$` escapes. */
export function expandReferences(text: string, env: Record<string, string>): string {
  return text.replace(/\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (match, name?: string) => {
    if (match === '$$') return '$';
    return (name !== undefined ? env[name] : undefined) ?? match;
  });
}

function resolveValue(
  // biome-ignore lint/suspicious/noExplicitAny: an env entry as the API stores it
  variable: any,
  namespace: string,
  env: Record<string, string>,
  ctx: PodEnvContext,
): string | undefined {
  if (typeof variable.value === 'string') return expandReferences(variable.value, env);
  const from = variable.valueFrom;
  if (!from) return '';
  if (from.secretKeyRef) {
    const value = secretData(ctx.cluster, namespace, from.secretKeyRef.name)?.[
      from.secretKeyRef.key
    ];
    if (value === undefined && !from.secretKeyRef.optional) {
      throw new Error(
        `secret "${from.secretKeyRef.name}" key "${from.secretKeyRef.key}" not found in namespace ${namespace}`,
      );
    }
    return value;
  }
  if (from.configMapKeyRef) {
    const ref = from.configMapKeyRef;
    const value = configMapData(ctx.cluster, namespace, ref.name)?.[ref.key];
    if (value === undefined && !ref.optional) {
      throw new Error(
        `configmap "${ref.name}" key "${ref.key}" not found in namespace ${namespace}`,
      );
    }
    return value;
  }
  if (from.fieldRef) return fieldValue(from.fieldRef.fieldPath, ctx);
  return undefined;
}

function fieldValue(path: string, ctx: PodEnvContext): string {
  const meta = ctx.pod.metadata;
  switch (path) {
    case 'metadata.name':
      return meta.name;
    case 'metadata.namespace':
      return meta.namespace ?? 'default';
    case 'metadata.uid':
      return meta.uid ?? '';
    case 'status.podIP':
      return ctx.podIP;
    case 'spec.nodeName':
      return ctx.pod.spec?.nodeName ?? '';
    default: {
      const label = /^metadata\.labels\['(.+)'\]$/.exec(path);
      return label?.[1] ? (meta.labels?.[label[1]] ?? '') : '';
    }
  }
}

/** A Secret's data, decoded. */
export function secretData(
  cluster: ClusterAccess,
  namespace: string,
  name: string,
): Record<string, string> | undefined {
  const secret = cluster.get(SECRET, namespace, name);
  if (!secret) return undefined;
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries((secret.data ?? {}) as Record<string, string>)) {
    out[key] = Buffer.from(value, 'base64').toString('utf8');
  }
  for (const [key, value] of Object.entries(
    ((secret as { stringData?: Record<string, string> }).stringData ?? {}) as Record<
      string,
      string
    >,
  )) {
    out[key] = value;
  }
  return out;
}

function configMapData(
  cluster: ClusterAccess,
  namespace: string,
  name: string,
): Record<string, string> | undefined {
  const configMap = cluster.get(CONFIG_MAP, namespace, name);
  return configMap ? ((configMap.data ?? {}) as Record<string, string>) : undefined;
}
