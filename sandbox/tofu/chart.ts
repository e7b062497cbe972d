// What `helm template` of the Bitnami Redis chart (23.1.x, architecture: replication) gives for
// the values the module renders — the objects the sandbox needs, with the chart's names and
// labels. Left out because the sandbox does not emulate them: NetworkPolicy, PodDisruptionBudget,
// the health/scripts ConfigMaps and Helm's release Secret.
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
