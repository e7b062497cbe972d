// What `helm template` of the Bitnami Redis chart (23.1.x, architecture: replication) gives for
// the values the module renders — the objects the sandbox needs, with the chart's names and
// labels: ServiceAccounts, configuration ConfigMap, Services, StatefulSets, ServiceMonitor, the
// NetworkPolicy (templates/networkpolicy.yaml) and the two PodDisruptionBudgets
// (templates/master/pdb.yaml, templates/replicas/pdb.yaml). Left out: the health/scripts
// ConfigMaps (the sandbox runs its own probes). Helm's release Secret is written by the engine,
// which knows the revision (helmReleaseSecret below).
import { gzipSync } from 'node:zlib';
import { stringify as toYaml } from 'yaml';
import type { Manifest } from './kube-client.ts';

// biome-ignore lint/suspicious/noExplicitAny: chart values as YAML
export type ChartValues = Record<string, any>;

export interface ChartRelease {
  name: string;
  namespace: string;
  chartVersion: string;
  values: ChartValues;
}

const REDIS_PORT = 6379;
const EXPORTER_PORT = 9121;
const PASSWORD_DIR = '/opt/bitnami/redis/secrets';
/** `master|replica.readinessProbe` as the chart defaults them. */
const CHART_READINESS_PROBE = {
  enabled: true,
  initialDelaySeconds: 20,
  periodSeconds: 5,
  timeoutSeconds: 1,
  successThreshold: 1,
  failureThreshold: 5,
};

/** `<role>.livenessProbe` and `<role>.startupProbe` as the chart defaults them, per role. */
const CHART_LIVENESS_PROBE = {
  enabled: true,
  initialDelaySeconds: 20,
  periodSeconds: 5,
  timeoutSeconds: 5,
  successThreshold: 1,
  failureThreshold: 5,
};
const CHART_STARTUP_PROBE = {
  master: {
    enabled: false,
    initialDelaySeconds: 20,
    periodSeconds: 5,
    timeoutSeconds: 5,
    successThreshold: 1,
    failureThreshold: 5,
  },
  replica: {
    enabled: true,
    initialDelaySeconds: 10,
    periodSeconds: 10,
    timeoutSeconds: 5,
    successThreshold: 1,
    failureThreshold: 22,
  },
};

/** A probe as the chart renders it: timings from the values over the defaults, when enabled. */
function chartProbe(
  defaults: Record<string, unknown>,
  values: Record<string, unknown> | undefined,
  handler: object,
): object | undefined {
  const { enabled, ...timings } = { ...defaults, ...(values ?? {}) };
  return enabled ? { ...timings, ...handler } : undefined;
}

export function chartObjects(release: ChartRelease): Manifest[] {
  const { name, namespace, values } = release;
  const base = {
    'app.kubernetes.io/name': 'redis',
    'app.kubernetes.io/instance': name,
  };
  const labels = {
    ...base,
    'app.kubernetes.io/managed-by': 'Helm',
    'app.kubernetes.io/version': String(values.image?.tag ?? '').split('-')[0] ?? '',
    'helm.sh/chart': `redis-${release.chartVersion}`,
  };
  const meta = (objectName: string, extra: Record<string, string> = {}, ns = namespace) => ({
    name: objectName,
    namespace: ns,
    labels: { ...labels, ...extra },
    annotations: { 'meta.helm.sh/release-name': name, 'meta.helm.sh/release-namespace': namespace },
  });
  const secretName: string = values.auth?.existingSecret ?? name;
  const secretKey: string = values.auth?.existingSecretPasswordKey ?? 'redis-password';
  const metrics = values.metrics?.enabled === true;
  const objects: Manifest[] = [];

  for (const role of ['master', 'replica'] as const) {
    objects.push({
      apiVersion: 'v1',
      kind: 'ServiceAccount',
      metadata: meta(`${name}-${role}`, { 'app.kubernetes.io/component': role }),
    });
  }
  objects.push({
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: meta(`${name}-configuration`),
    data: {
      'redis.conf': `${values.commonConfiguration ?? ''}\n`,
      'master.conf': roleConfiguration('master', values.master ?? {}),
      'replica.conf': roleConfiguration('replica', values.replica ?? {}),
    },
  });
  const redisPort = { name: 'tcp-redis', port: REDIS_PORT, targetPort: 'redis', protocol: 'TCP' };
  objects.push(
    service(meta(`${name}-headless`), { ...base }, [redisPort], {
      clusterIP: 'None',
      publishNotReadyAddresses: true,
    }),
    service(
      meta(`${name}-master`, { 'app.kubernetes.io/component': 'master' }),
      { ...base, 'app.kubernetes.io/component': 'master' },
      [redisPort],
    ),
    service(
      meta(`${name}-replicas`, { 'app.kubernetes.io/component': 'replica' }),
      { ...base, 'app.kubernetes.io/component': 'replica' },
      [redisPort],
    ),
  );
  if (metrics) {
    objects.push(
      service(meta(`${name}-metrics`, { 'app.kubernetes.io/component': 'metrics' }), { ...base }, [
        { name: 'http-metrics', port: EXPORTER_PORT, targetPort: 'metrics', protocol: 'TCP' },
      ]),
    );
  }
  const passwordEnv = { name: 'REDIS_PASSWORD_FILE', value: `${PASSWORD_DIR}/redis-password` };
  for (const role of ['master', 'replica'] as const) {
    const roleValues: ChartValues = values[role] ?? {};
    const setName = role === 'master' ? `${name}-master` : `${name}-replicas`;
    const podLabels = { ...labels, 'app.kubernetes.io/component': role };
    const env: object[] = [
      { name: 'BITNAMI_DEBUG', value: 'false' },
      { name: 'REDIS_REPLICATION_MODE', value: role === 'master' ? 'master' : 'replica' },
      { name: 'ALLOW_EMPTY_PASSWORD', value: 'no' },
      passwordEnv,
      { name: 'REDIS_TLS_ENABLED', value: 'no' },
      { name: 'REDIS_PORT', value: String(REDIS_PORT) },
    ];
    if (role === 'replica') {
      // The chart points replicas at master-0 through the headless Service; the sandbox uses the
      // master Service so `fault partition` can cut the link at its proxy.
      env.push(
        { name: 'REDIS_MASTER_HOST', value: `${name}-master.${namespace}.svc.cluster.local` },
        { name: 'REDIS_MASTER_PORT_NUMBER', value: String(REDIS_PORT) },
        { name: 'REDIS_MASTER_PASSWORD_FILE', value: `${PASSWORD_DIR}/redis-password` },
      );
    }
    const { enabled: probed, ...probeTimings } = {
      ...CHART_READINESS_PROBE,
      ...(roleValues.readinessProbe ?? {}),
    };
    // The sandbox's workload half probes a pod after it is first Ready only when it declares a
    // readinessProbe; the script names are the chart's (the sandbox runs its own equivalent).
    const readinessProbe = probed
      ? {
          ...probeTimings,
          exec: {
            command: [
              'sh',
              '-c',
              `/health/ping_readiness_local${role === 'replica' ? '_and_master' : ''}.sh ${Number(probeTimings.timeoutSeconds) + 1}`,
            ],
          },
        }
      : undefined;
    // Rendered for what reads the pod spec (02-deploy checks FR-010's probes); the sandbox
    // itself acts on the readiness probe only.
    const livenessProbe = chartProbe(CHART_LIVENESS_PROBE, roleValues.livenessProbe, {
      exec: {
        command: [
          'sh',
          '-c',
          `/health/ping_liveness_local${role === 'replica' ? '_and_master' : ''}.sh ${Number(roleValues.livenessProbe?.timeoutSeconds ?? CHART_LIVENESS_PROBE.timeoutSeconds)}`,
        ],
      },
    });
    const startupProbe = chartProbe(CHART_STARTUP_PROBE[role], roleValues.startupProbe, {
      tcpSocket: { port: 'redis' },
    });
    const containers: object[] = [
      {
        name: 'redis',
        image: `${values.image?.repository}:${values.image?.tag}`,
        command: ['/bin/bash'],
        args: ['-c', `/opt/bitnami/scripts/start-scripts/start-${role}.sh`],
        env,
        ports: [{ name: 'redis', containerPort: REDIS_PORT }],
        ...(readinessProbe ? { readinessProbe } : {}),
        ...(livenessProbe ? { livenessProbe } : {}),
        ...(startupProbe ? { startupProbe } : {}),
        resources: roleValues.resources ?? {},
        volumeMounts: [
          { name: 'redis-data', mountPath: '/data' },
          { name: 'config', mountPath: '/opt/bitnami/redis/mounted-etc' },
          { name: 'redis-password', mountPath: PASSWORD_DIR },
        ],
      },
    ];
    if (metrics) {
      containers.push({
        name: 'metrics',
        image: `${values.metrics?.image?.repository}:${values.metrics?.image?.tag}`,
        env: [
          { name: 'REDIS_ALIAS', value: name },
          {
            name: 'REDIS_PASSWORD',
            valueFrom: { secretKeyRef: { name: secretName, key: secretKey } },
          },
        ],
        ports: [{ name: 'metrics', containerPort: EXPORTER_PORT }],
        resources: values.metrics?.resources ?? {},
      });
    }
    const persistence: ChartValues = roleValues.persistence ?? {};
    objects.push({
      apiVersion: 'apps/v1',
      kind: 'StatefulSet',
      metadata: meta(setName, { 'app.kubernetes.io/component': role }),
      spec: {
        replicas:
          role === 'master' ? Number(roleValues.count ?? 1) : Number(roleValues.replicaCount ?? 3),
        serviceName: `${name}-headless`,
        selector: { matchLabels: { ...base, 'app.kubernetes.io/component': role } },
        updateStrategy: { type: 'RollingUpdate' },
        persistentVolumeClaimRetentionPolicy: {
          whenDeleted:
            persistence.enabled === false
              ? 'Delete'
              : (roleValues.persistentVolumeClaimRetentionPolicy?.whenDeleted ?? 'Retain'),
          whenScaled: roleValues.persistentVolumeClaimRetentionPolicy?.whenScaled ?? 'Retain',
        },
        template: {
          metadata: { labels: podLabels },
          spec: {
            serviceAccountName: `${name}-${role}`,
            containers,
            volumes: [
              { name: 'config', configMap: { name: `${name}-configuration` } },
              {
                name: 'redis-password',
                secret: { secretName, items: [{ key: secretKey, path: 'redis-password' }] },
              },
            ],
          },
        },
        volumeClaimTemplates: [
          {
            apiVersion: 'v1',
            kind: 'PersistentVolumeClaim',
            metadata: {
              name: 'redis-data',
              labels: { ...base, 'app.kubernetes.io/component': role },
            },
            spec: {
              accessModes: ['ReadWriteOnce'],
              storageClassName: persistence.storageClass,
              resources: { requests: { storage: persistence.size ?? '8Gi' } },
            },
          },
        ],
      },
    });
  }
  for (const role of ['master', 'replica'] as const) {
    const pdb: ChartValues = values[role]?.pdb ?? { create: true };
    if (pdb.create === false) continue;
    const selector = { ...base, 'app.kubernetes.io/component': role };
    objects.push({
      apiVersion: 'policy/v1',
      kind: 'PodDisruptionBudget',
      metadata: meta(role === 'master' ? `${name}-master` : `${name}-replicas`, {
        'app.kubernetes.io/component': role,
      }),
      spec: {
        // The chart: maxUnavailable 1 when neither minAvailable nor maxUnavailable is set.
        ...(pdb.minAvailable !== undefined && pdb.minAvailable !== ''
          ? { minAvailable: pdb.minAvailable }
          : { maxUnavailable: pdb.maxUnavailable || 1 }),
        selector: { matchLabels: selector },
      },
    });
  }
  const policy = networkPolicy(values, base, meta(name));
  if (policy) objects.push(policy);
  const monitor: ChartValues | undefined = metrics ? values.metrics?.serviceMonitor : undefined;
  if (monitor?.enabled) {
    objects.push({
      apiVersion: 'monitoring.coreos.com/v1',
      kind: 'ServiceMonitor',
      metadata: meta(name, monitor.additionalLabels ?? {}, monitor.namespace ?? namespace),
      spec: {
        endpoints: [
          { port: 'http-metrics', interval: monitor.interval ?? '30s', path: '/metrics' },
        ],
        namespaceSelector: { matchNames: [namespace] },
        selector: { matchLabels: { ...base, 'app.kubernetes.io/component': 'metrics' } },
      },
    });
  }
  return objects;
}

function roleConfiguration(role: string, roleValues: ChartValues): string {
  const lines = ['dir /data', `# User-supplied ${role} configuration:`];
  if (roleValues.configuration) lines.push(String(roleValues.configuration).trim());
  for (const command of roleValues.disableCommands ?? [])
    lines.push(`rename-command ${command} ""`);
  lines.push(`# End of ${role} configuration`);
  return `${lines.join('\n')}\n`;
}

function service(
  metadata: object,
  selector: Record<string, string>,
  ports: object[],
  extra: object = {},
): Manifest {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata,
    spec: { type: 'ClusterIP', selector, ports, ...extra },
  };
}

/** templates/networkpolicy.yaml of chart 23.1.x for architecture: replication, no Sentinel. */
function networkPolicy(
  values: ChartValues,
  matchLabels: Record<string, string>,
  metadata: object,
): Manifest | undefined {
  const np: ChartValues = values.networkPolicy ?? { enabled: true, allowExternal: true };
  if (np.enabled === false) return undefined;
  const nsPeer = (nsLabels: Record<string, string>, podLabels: Record<string, string>) =>
    Object.keys(nsLabels).length > 0 || Object.keys(podLabels).length > 0
      ? [
          {
            namespaceSelector: { matchLabels: nsLabels },
            ...(Object.keys(podLabels).length > 0
              ? { podSelector: { matchLabels: podLabels } }
              : {}),
          },
        ]
      : [];
  const ingress: object[] = [];
  const redisRule: Record<string, unknown> = { ports: [{ port: REDIS_PORT }] };
  if (np.allowExternal === false) {
    redisRule.from = [
      {
        podSelector: { matchLabels: { [`${(metadata as { name: string }).name}-client`]: 'true' } },
      },
      { podSelector: { matchLabels } },
      ...nsPeer(np.ingressNSMatchLabels ?? {}, np.ingressNSPodMatchLabels ?? {}),
    ];
  }
  ingress.push(redisRule);
  if (values.metrics?.enabled === true) {
    const metricsRule: Record<string, unknown> = { ports: [{ port: EXPORTER_PORT }] };
    if (np.metrics?.allowExternal === false) {
      // Without namespace labels the chart writes an empty `from:`, which admits every source.
      const peers = nsPeer(
        np.metrics?.ingressNSMatchLabels ?? {},
        np.metrics?.ingressNSPodMatchLabels ?? {},
      );
      if (peers.length > 0) metricsRule.from = peers;
    }
    ingress.push(metricsRule);
  }
  ingress.push(...(np.extraIngress ?? []));
  const egress =
    np.allowExternalEgress === false
      ? [
          { ports: [{ port: 53, protocol: 'UDP' }] },
          { ports: [{ port: REDIS_PORT }], to: [{ podSelector: { matchLabels } }] },
          ...(np.extraEgress ?? []),
        ]
      : [{}];
  return {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata,
    spec: {
      podSelector: { matchLabels },
      policyTypes: ['Ingress', 'Egress'],
      egress,
      ingress,
    },
  };
}

/**
 * Helm's record of a release revision: Secret `sh.helm.release.v1.<name>.v<revision>`, type
 * helm.sh/release.v1, labels name/owner/status/version, and `data.release` = base64 of the
 * gzipped release JSON (name, namespace, version, info.status, chart.metadata, config,
 * manifest), as Helm's Secret storage driver writes it.
 */
export function helmReleaseSecret(
  release: ChartRelease,
  revision: number,
  status: 'deployed' | 'superseded',
  objects: Manifest[],
  deployedAt: string,
): Manifest {
  const record = {
    name: release.name,
    namespace: release.namespace,
    version: revision,
    info: {
      first_deployed: deployedAt,
      last_deployed: deployedAt,
      status,
      description: revision === 1 ? 'Install complete' : 'Upgrade complete',
    },
    chart: {
      metadata: {
        name: 'redis',
        version: release.chartVersion,
        appVersion: String(release.values.image?.tag ?? '').split('-')[0] ?? '',
        apiVersion: 'v2',
      },
    },
    config: release.values,
    manifest: objects.map((o) => `---\n${toYaml(o)}`).join(''),
  };
  // Helm base64-encodes the gzip, and the Secret's data encodes that string once more.
  const encoded = gzipSync(JSON.stringify(record)).toString('base64');
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    type: 'helm.sh/release.v1',
    metadata: {
      name: `sh.helm.release.v1.${release.name}.v${revision}`,
      namespace: release.namespace,
      labels: {
        name: release.name,
        owner: 'helm',
        status,
        version: String(revision),
      },
    },
    data: { release: Buffer.from(encoded).toString('base64') },
  };
}
