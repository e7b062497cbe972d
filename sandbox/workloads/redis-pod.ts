// A pod of the Bitnami release or of the old `redis` Deployment: a real redis-server configured
// as the chart would (AOF on, disabled commands renamed away, password required), its data in the
// PVC's directory, and the Redis exporter beside it when the pod has a metrics container.
import { appendFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ClusterAccess, KubeObject, RunningPod } from '../runtime.ts';
import { CONFIG_MAP, STATEFUL_SET } from './kinds.ts';
import { type ContainerSpec, expandReferences, resolveEnv, secretData } from './pod-env.ts';
import { killBackoff, launchPod } from './pod-process.ts';
import { redisContainerProbe, redisPing, replicaLinkUp } from './probes.ts';
import { SANDBOX_FOR_DIVISOR } from './prometheus-config.ts';
import type { WorkloadState } from './state.ts';

export type RedisRole = 'master' | 'replica' | 'standalone';

const REDIS_PORT = 6379;
const EXPORTER_PORT = 9121;
/** What the chart's `master|replica.disableCommands` default to. */
const CHART_DISABLED_COMMANDS = ['FLUSHDB', 'FLUSHALL'];

export interface RedisPodConfig {
  /** What the chart's ConfigMap adds (commonConfiguration, the role's .conf), placed first. */
  included?: string;
  ip: string;
  port: number;
  dataDir: string;
  password?: string;
  disabledCommands: string[];
  replicaOf?: { host: string; port: number; password?: string };
}

export function startRedisPod(
  pod: KubeObject,
  cluster: ClusterAccess,
  state: WorkloadState,
  role: RedisRole,
): RunningPod {
  const namespace = pod.metadata.namespace ?? 'default';
  const name = pod.metadata.name;
  const containers: ContainerSpec[] = pod.spec?.containers ?? [];
  const redis = containers.find((c) => !isExporter(c)) ?? {};
  const exporter = containers.find(isExporter);
  const logFile = state.logFile(namespace, name);
  const exporterLog = state.logFile(namespace, name, 'metrics');
  const dir = state.podDir(namespace, name);

  return launchPod({
    state,
    pod,
    cluster,
    logFile,
    containerLogFiles: exporter?.name ? { [exporter.name]: exporterLog } : undefined,
    delayMs: killBackoff(state, namespace, name),
    startSidecars: (record) => {
      if (!exporter) return [];
      const env = resolveEnv(exporter, { pod, podIP: record.ip, cluster });
      // The chart's exporter reads the password file mounted into it (auth.usePasswordFiles).
      const password =
        env.REDIS_PASSWORD ??
        (env.REDIS_PASSWORD_FILE
          ? mountedSecret(pod, cluster, exporter, env.REDIS_PASSWORD_FILE)
          : undefined) ??
        redisPassword(redis, { pod, podIP: record.ip, cluster });
      const port = containerPort(exporter, EXPORTER_PORT);
      return [
        state.supervisor.spawn({
          name: `${namespace}/${name}/metrics`,
          command: 'prometheus-redis-exporter',
          args: [
            '-redis.addr',
            `redis://${record.ip}:${containerPort(redis, REDIS_PORT)}`,
            '-web.listen-address',
            `${record.ip}:${port}`,
          ],
          // The exporter reads the password from its environment, never from argv.
          env: password ? { REDIS_PASSWORD: password } : {},
          logFile: exporterLog,
        }),
      ];
    },
    startMain: (record) => {
      const config = redisPodConfig(pod, cluster, state, role, record.ip, redis);
      const configFile = join(dir, 'redis.conf');
      writeFileSync(configFile, renderRedisConfig(config), { mode: 0o600 });
      return state.supervisor.spawn({
        name: `${namespace}/${name}`,
        command: 'redis-server',
        args: [configFile],
        logFile,
        hostsFile: state.hosts.pathFor(namespace),
        cwd: config.dataDir,
      });
    },
    container: redis,
    containerProbe: (record, probe) => {
      const ctx = { pod, podIP: record.ip, cluster };
      const port = containerPort(redis, REDIS_PORT);
      const env = resolveEnv(redis, ctx);
      const password = redisPassword(redis, ctx);
      return redisContainerProbe(
        probe,
        {
          local: { host: record.ip, port, password },
          master: env.REDIS_MASTER_HOST
            ? () => {
                // What the pod's DNS gives for the name now (gone while master-0 is not Ready).
                const host = state.hosts.resolve(namespace, env.REDIS_MASTER_HOST!);
                return host
                  ? {
                      host,
                      port: Number(env.REDIS_MASTER_PORT_NUMBER ?? REDIS_PORT),
                      password: masterPassword(pod, cluster, redis, env) ?? password,
                    }
                  : undefined;
              }
            : undefined,
          podIP: record.ip,
          cut: () => state.partitioned.has(record.ip),
          report: (line) => appendFileSync(logFile, `${line}\n`),
        },
        { redis: port, metrics: containerPort(exporter ?? {}, EXPORTER_PORT) },
      );
    },
    probe: async (record) => {
      const port = containerPort(redis, REDIS_PORT);
      const password = redisPassword(redis, { pod, podIP: record.ip, cluster });
      if (!(await redisPing(record.ip, port, password))) return false;
      return role !== 'replica' || replicaLinkUp(record.ip, port, password);
    },
  });
}

export function redisPodConfig(
  pod: KubeObject,
  cluster: ClusterAccess,
  state: WorkloadState,
  role: RedisRole,
  ip: string,
  container: ContainerSpec,
): RedisPodConfig {
  const namespace = pod.metadata.namespace ?? 'default';
  const ctx = { pod, podIP: ip, cluster };
  const env = resolveEnv(container, ctx);
  const password = redisPassword(container, ctx);
  const claim = claimName(pod, cluster, container);
  const dataDir = claim
    ? state.volumeDir(namespace, claim)
    : join(state.podDir(namespace, pod.metadata.name), 'data');
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const disabled = env.REDIS_DISABLE_COMMANDS
    ? env.REDIS_DISABLE_COMMANDS.split(',')
        .map((c) => c.trim())
        .filter(Boolean)
    : role === 'standalone'
      ? []
      : CHART_DISABLED_COMMANDS;
  const config: RedisPodConfig = {
    included: chartConfiguration(pod, cluster, container, role),
    ip,
    port: containerPort(container, REDIS_PORT),
    dataDir,
    password,
    disabledCommands: disabled,
  };
  if (role === 'replica') {
    const instance = pod.metadata.labels?.['app.kubernetes.io/instance'] ?? 'redis';
    config.replicaOf = {
      host: env.REDIS_MASTER_HOST ?? `${instance}-master.${namespace}.svc.cluster.local`,
      port: Number(env.REDIS_MASTER_PORT_NUMBER ?? REDIS_PORT),
      password: masterPassword(pod, cluster, container, env) ?? password,
    };
  }
  return config;
}

export function renderRedisConfig(config: RedisPodConfig): string {
  const lines = [
    ...(config.included ? [config.included.trim(), '# set by the sandbox for this pod'] : []),
    `bind ${config.ip}`,
    `port ${config.port}`,
    'protected-mode no',
    'daemonize no',
    'logfile ""',
    `dir ${quote(config.dataDir)}`,
    'appendonly yes',
    'appendfsync everysec',
    // Outgoing connections (replication) leave from the pod's own address, so the Service
    // proxies can tell which pod a connection comes from.
    `bind-source-addr ${config.ip}`,
    // The alert rules run on a clock 30 times faster (prometheus-config.ts). Redis's own wait
    // before a diskless sync (5 s by default, nothing near the chart's 1m RedisReplicationBroken
    // `for:`) goes on the same clock, or each fresh replica's sync fired an alert the cluster
    // never would, into 05's and 06's alert checks.
    `repl-diskless-sync-delay ${Math.floor(disklessSyncDelayOf(config.included) / SANDBOX_FOR_DIVISOR)}`,
  ];
  if (config.password) lines.push(`requirepass ${quote(config.password)}`);
  // A command renamed twice stops redis-server: skip what the included configuration renames.
  const renamed = new Set(
    [...(config.included ?? '').matchAll(/^rename-command\s+(\S+)/gim)].map((m) =>
      m[1]?.toUpperCase(),
    ),
  );
  for (const command of config.disabledCommands) {
    if (!renamed.has(command.toUpperCase())) lines.push(`rename-command ${command} ""`);
  }
  if (config.replicaOf) {
    lines.push(`replicaof ${config.replicaOf.host} ${config.replicaOf.port}`);
    if (config.replicaOf.password) lines.push(`masterauth ${quote(config.replicaOf.password)}`);
    lines.push(`replica-announce-ip ${config.ip}`);
  }
  return `${lines.join('\n')}\n`;
}

/** The master's wait before a diskless sync, as the included configuration sets it (Redis's default: 5 s). */
function disklessSyncDelayOf(included: string | undefined): number {
  const set = [...(included ?? '').matchAll(/^repl-diskless-sync-delay\s+(\d+)/gim)].at(-1);
  return set ? Number(set[1]) : 5;
}

/** REDIS_MASTER_PASSWORD, or the file REDIS_MASTER_PASSWORD_FILE names (the chart's). */
function masterPassword(
  pod: KubeObject,
  cluster: ClusterAccess,
  container: ContainerSpec,
  env: Record<string, string>,
): string | undefined {
  return (
    env.REDIS_MASTER_PASSWORD ??
    (env.REDIS_MASTER_PASSWORD_FILE
      ? mountedSecret(pod, cluster, container, env.REDIS_MASTER_PASSWORD_FILE)
      : undefined)
  );
}

/** The password a Redis container is given: REDIS_PASSWORD, or `--requirepass` in its args. */
function redisPassword(
  container: ContainerSpec,
  ctx: Parameters<typeof resolveEnv>[1],
): string | undefined {
  const env = resolveEnv(container, ctx);
  if (env.REDIS_PASSWORD) return env.REDIS_PASSWORD;
  if (env.REDIS_PASSWORD_FILE)
    return mountedSecret(ctx.pod, ctx.cluster, container, env.REDIS_PASSWORD_FILE);
  const words: string[] = [...(container?.command ?? []), ...(container?.args ?? [])].flatMap(
    (w: string) => w.split(/\s+/),
  );
  const at = words.indexOf('--requirepass');
  const value = at >= 0 ? words[at + 1] : undefined;
  if (value) {
    return expandReferences(value, env).replace(/^["']|["']$/g, '');
  }
  return undefined;
}

/** The content of a file the container sees from a mounted Secret volume (the chart's password files). */
function mountedSecret(
  pod: KubeObject,
  cluster: ClusterAccess,
  container: ContainerSpec,
  path: string,
): string | undefined {
  for (const mount of container?.volumeMounts ?? []) {
    const dir = String(mount.mountPath).replace(/\/$/, '');
    if (!path.startsWith(`${dir}/`)) continue;
    // biome-ignore lint/suspicious/noExplicitAny: pod volumes as the API stores them
    const volume = (pod.spec?.volumes ?? []).find((v: any) => v.name === mount.name);
    if (!volume?.secret?.secretName) continue;
    const file = path.slice(dir.length + 1);
    // biome-ignore lint/suspicious/noExplicitAny: secret volume items
    const key = (volume.secret.items ?? []).find((i: any) => i.path === file)?.key ?? file;
    return secretData(cluster, pod.metadata.namespace ?? 'default', volume.secret.secretName)?.[
      key
    ];
  }
  return undefined;
}

/** redis.conf and the role's .conf from the chart's configuration ConfigMap, when mounted. */
function chartConfiguration(
  pod: KubeObject,
  cluster: ClusterAccess,
  container: ContainerSpec,
  role: RedisRole,
): string | undefined {
  const mounted = new Set<string>(
    (container?.volumeMounts ?? []).map((m: { name: string }) => m.name),
  );
  const volume = (pod.spec?.volumes ?? []).find(
    // biome-ignore lint/suspicious/noExplicitAny: pod volumes as the API stores them
    (v: any) => v.configMap?.name && mounted.has(v.name),
  );
  if (!volume) return undefined;
  const data: Record<string, string> | undefined = cluster.get(
    CONFIG_MAP,
    pod.metadata.namespace,
    volume.configMap.name,
  )?.data;
  if (!data) return undefined;
  const parts = [data['redis.conf'], role === 'standalone' ? undefined : data[`${role}.conf`]];
  // `dir` is the PVC's directory in the sandbox, set after this.
  return parts
    .filter((p): p is string => !!p)
    .join('\n')
    .split('\n')
    .filter((line) => !/^\s*dir\s/.test(line))
    .join('\n');
}

function claimName(
  pod: KubeObject,
  cluster: ClusterAccess,
  container: ContainerSpec,
): string | undefined {
  // biome-ignore lint/suspicious/noExplicitAny: pod volumes as the API stores them
  const volumes: any[] = pod.spec?.volumes ?? [];
  const mounted = new Set<string>(
    (container?.volumeMounts ?? []).map((m: { name: string }) => m.name),
  );
  const withClaim = volumes.filter((v) => v.persistentVolumeClaim?.claimName);
  const chosen = withClaim.find((v) => mounted.has(v.name)) ?? withClaim[0];
  if (chosen) return chosen.persistentVolumeClaim.claimName;
  // A StatefulSet pod whose volume the API half did not spell out: the claim is named
  // <template>-<pod>, as the StatefulSet controller names it.
  const owner = pod.metadata.ownerReferences?.find((o) => o.kind === 'StatefulSet');
  if (!owner) return undefined;
  const set = cluster.get(STATEFUL_SET, pod.metadata.namespace, owner.name);
  const template = set?.spec?.volumeClaimTemplates?.[0]?.metadata?.name;
  return template ? `${template}-${pod.metadata.name}` : undefined;
}

function containerPort(container: ContainerSpec, fallback: number): number {
  const port = (container?.ports ?? [])[0]?.containerPort;
  return typeof port === 'number' ? port : fallback;
}

export function isExporter(container: ContainerSpec): boolean {
  return container?.name === 'metrics' || /redis[-_]exporter/.test(String(container?.image ?? ''));
}

function quote(value: string): string {
  return `"${value.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}
