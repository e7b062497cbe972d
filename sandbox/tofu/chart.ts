// What `helm template` of the Bitnami Redis chart (23.1.x, architecture: replication) gives for
// the values the module renders — the objects the sandbox needs, with the chart's names, labels
// and pod specs: ServiceAccounts, the configuration, health and scripts ConfigMaps, Services,
// StatefulSets (probes, securityContext, affinity, checksum annotations, password files), the
// ServiceMonitor, the NetworkPolicy (templates/networkpolicy.yaml) and the two
// PodDisruptionBudgets (templates/master/pdb.yaml, templates/replicas/pdb.yaml). What real helm
// 3.17.1 renders for the module's defaults is test/fixtures/terraform/
// bitnami-redis-23.1.1-rendered.yaml; test/terraform/chart-render.test.ts holds this render
// against it. Helm's release Secret is written by the engine, which knows the revision
// (helmReleaseSecret below).
import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { stringify as toYaml } from 'yaml';
import { HEALTH_SCRIPTS, startScripts } from './chart-scripts.ts';
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
const CLUSTER_DOMAIN = 'cluster.local';

/** `<role>.readinessProbe`, `livenessProbe` and `startupProbe` as the chart's values.yaml defaults them. */
const CHART_PROBES = {
  readinessProbe: {
    enabled: true,
    initialDelaySeconds: 20,
    periodSeconds: 5,
    timeoutSeconds: 1,
    successThreshold: 1,
    failureThreshold: 5,
  },
  livenessProbe: {
    enabled: true,
    initialDelaySeconds: 20,
    periodSeconds: 5,
    timeoutSeconds: 5,
    successThreshold: 1,
    failureThreshold: 5,
  },
  startupProbe: {
    enabled: false,
    initialDelaySeconds: 20,
    periodSeconds: 5,
    timeoutSeconds: 5,
    successThreshold: 1,
    failureThreshold: 5,
  },
};

/** `<role>.podSecurityContext` / `containerSecurityContext` (and the exporter's) as the chart defaults them. */
const POD_SECURITY_CONTEXT = {
  fsGroup: 1001,
  fsGroupChangePolicy: 'Always',
  supplementalGroups: [],
  sysctls: [],
};
const CONTAINER_SECURITY_CONTEXT = {
  allowPrivilegeEscalation: false,
  capabilities: { drop: ['ALL'] },
  readOnlyRootFilesystem: true,
  runAsGroup: 1001,
  runAsNonRoot: true,
  runAsUser: 1001,
  seLinuxOptions: {},
  seccompProfile: { type: 'RuntimeDefault' },
};

/**
 * The chart's liveness and readiness probes (templates/{master,replicas}/application.yaml): a
 * `customLivenessProbe`/`customReadinessProbe` replaces the probe as given; else the timings
 * from the values, `timeoutSeconds` one more than the script's own timeout, and the health
 * script (the replica's also pings its master).
 */
function healthProbe(
  kind: 'livenessProbe' | 'readinessProbe',
  role: 'master' | 'replica',
  roleValues: ChartValues,
): object | undefined {
  const custom =
    roleValues[kind === 'livenessProbe' ? 'customLivenessProbe' : 'customReadinessProbe'];
  if (custom && Object.keys(custom).length > 0) return custom;
  const v = { ...CHART_PROBES[kind], ...(roleValues[kind] ?? {}) };
  if (!v.enabled) return undefined;
  const script = `ping_${kind === 'livenessProbe' ? 'liveness' : 'readiness'}_local${role === 'replica' ? '_and_master' : ''}.sh`;
  return {
    initialDelaySeconds: v.initialDelaySeconds,
    periodSeconds: v.periodSeconds,
    timeoutSeconds: Number(v.timeoutSeconds) + 1,
    successThreshold: v.successThreshold,
    failureThreshold: v.failureThreshold,
    exec: { command: ['/bin/bash', '-ec', `/health/${script} ${v.timeoutSeconds}`] },
  };
}

function startupProbe(roleValues: ChartValues): object | undefined {
  const custom = roleValues.customStartupProbe;
  if (custom && Object.keys(custom).length > 0) return custom;
  const { enabled, ...timings } = {
    ...CHART_PROBES.startupProbe,
    ...(roleValues.startupProbe ?? {}),
  };
  return enabled ? { ...timings, tcpSocket: { port: 'redis' } } : undefined;
}

/**
 * `checksum/<name>`: sha256 of `pick (fromYaml <ConfigMap or Secret>) "data" | toYaml`, as the
 * chart's pod templates compute it (Helm's toYaml drops the final newline; an absent template,
 * such as secret.yaml with auth.existingSecret, gives `{}`). The same bytes as Helm's, so the
 * values give the real chart's checksums.
 */
function dataChecksum(data: Record<string, string> | undefined): string {
  const yaml = data
    ? toYaml(
        {
          data: Object.fromEntries(
            Object.entries(data).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
          ),
        },
        { lineWidth: 0, blockQuote: 'literal' },
      ).replace(/\n$/, '')
    : '{}';
  return createHash('sha256').update(yaml).digest('hex');
}

/** The chart's `common.affinities.pods` preset for one role: soft (weight 1) or hard, by hostname. */
function presetAffinity(roleValues: ChartValues, selector: Record<string, string>): object {
  const term = { labelSelector: { matchLabels: selector }, topologyKey: 'kubernetes.io/hostname' };
  const anti = roleValues.podAntiAffinityPreset ?? 'soft';
  return anti === 'hard'
    ? { podAntiAffinity: { requiredDuringSchedulingIgnoredDuringExecution: [term] } }
    : anti === 'soft'
      ? {
          podAntiAffinity: {
            preferredDuringSchedulingIgnoredDuringExecution: [{ podAffinityTerm: term, weight: 1 }],
          },
        }
      : {};
}

export function chartObjects(release: ChartRelease): Manifest[] {
  const { name, namespace, values } = release;
  const base = {
    'app.kubernetes.io/instance': name,
    'app.kubernetes.io/name': 'redis',
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
  const headless = `${name}-headless`;
  const objects: Manifest[] = [];

  for (const role of ['master', 'replica'] as const) {
    objects.push({
      apiVersion: 'v1',
      kind: 'ServiceAccount',
      automountServiceAccountToken: false,
      metadata: meta(`${name}-${role}`),
    });
  }
  const configuration = {
    'redis.conf': `# User-supplied common configuration:\n${values.commonConfiguration ? `${String(values.commonConfiguration).trim()}\n` : ''}# End of common configuration`,
    'master.conf': roleConfiguration('master', values.master ?? {}),
    'replica.conf': roleConfiguration('replica', values.replica ?? {}),
    'users.acl': '',
  };
  const health = { ...HEALTH_SCRIPTS };
  const scripts = startScripts(`${headless}.${namespace}.svc.${CLUSTER_DOMAIN}`);
  objects.push(
    {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: meta(`${name}-configuration`),
      data: configuration,
    },
    { apiVersion: 'v1', kind: 'ConfigMap', metadata: meta(`${name}-health`), data: health },
    { apiVersion: 'v1', kind: 'ConfigMap', metadata: meta(`${name}-scripts`), data: scripts },
  );
  // The chart renders secret.yaml only without auth.existingSecret.
  const checksums = {
    'checksum/configmap': dataChecksum(configuration),
    'checksum/health': dataChecksum(health),
    'checksum/scripts': dataChecksum(scripts),
    'checksum/secret': dataChecksum(undefined),
  };
  const redisPort = { name: 'tcp-redis', port: REDIS_PORT, targetPort: 'redis' };
  objects.push(
    // templates/headless-svc.yaml sets publishNotReadyAddresses only with Sentinel.
    service(meta(headless), { ...base }, [redisPort], { clusterIP: 'None' }),
    service(
      meta(`${name}-master`, { 'app.kubernetes.io/component': 'master' }),
      { ...base, 'app.kubernetes.io/component': 'master' },
      [redisPort],
      { internalTrafficPolicy: 'Cluster', sessionAffinity: 'None' },
    ),
    service(
      meta(`${name}-replicas`, { 'app.kubernetes.io/component': 'replica' }),
      { ...base, 'app.kubernetes.io/component': 'replica' },
      [redisPort],
      { internalTrafficPolicy: 'Cluster', sessionAffinity: 'None' },
    ),
  );
  if (metrics) {
    objects.push(
      service(meta(`${name}-metrics`, { 'app.kubernetes.io/component': 'metrics' }), { ...base }, [
        { name: 'http-metrics', port: EXPORTER_PORT, targetPort: 'metrics', protocol: 'TCP' },
      ]),
    );
  }
  const passwordFile = `${PASSWORD_DIR}/redis-password`;
  for (const role of ['master', 'replica'] as const) {
    const roleValues: ChartValues = values[role] ?? {};
    const setName = role === 'master' ? `${name}-master` : `${name}-replicas`;
    const selector = { ...base, 'app.kubernetes.io/component': role };
    const podLabels = { ...labels, 'app.kubernetes.io/component': role };
    const env: object[] = [
      { name: 'BITNAMI_DEBUG', value: 'false' },
      { name: 'REDIS_REPLICATION_MODE', value: role === 'master' ? 'master' : 'replica' },
    ];
    if (role === 'replica') {
      // With one master StatefulSet the chart points replicas at master-0's own name under the
      // headless Service (not the master Service): that name leaves DNS while master-0 is
      // not Ready.
      env.push(
        {
          name: 'REDIS_MASTER_HOST',
          value: `${name}-master-0.${headless}.${namespace}.svc.${CLUSTER_DOMAIN}`,
        },
        { name: 'REDIS_MASTER_PORT_NUMBER', value: String(REDIS_PORT) },
      );
    }
    env.push(
      { name: 'ALLOW_EMPTY_PASSWORD', value: 'no' },
      { name: 'REDIS_PASSWORD_FILE', value: passwordFile },
      ...(role === 'replica' ? [{ name: 'REDIS_MASTER_PASSWORD_FILE', value: passwordFile }] : []),
      { name: 'REDIS_TLS_ENABLED', value: 'no' },
      { name: 'REDIS_PORT', value: String(REDIS_PORT) },
    );
    const startup = startupProbe(roleValues);
    const liveness = healthProbe('livenessProbe', role, roleValues);
    const readiness = healthProbe('readinessProbe', role, roleValues);
    const containers: object[] = [
      {
        name: 'redis',
        image: `${values.image?.repository}:${values.image?.tag}`,
        imagePullPolicy: 'IfNotPresent',
        securityContext: CONTAINER_SECURITY_CONTEXT,
        command: ['/bin/bash'],
        args: ['-ec', `/opt/bitnami/scripts/start-scripts/start-${role}.sh`],
        env,
        ports: [{ name: 'redis', containerPort: REDIS_PORT }],
        ...(startup ? { startupProbe: startup } : {}),
        ...(liveness ? { livenessProbe: liveness } : {}),
        ...(readiness ? { readinessProbe: readiness } : {}),
        resources: roleValues.resources ?? {},
        volumeMounts: [
          { name: 'start-scripts', mountPath: '/opt/bitnami/scripts/start-scripts' },
          { name: 'health', mountPath: '/health' },
          { name: 'redis-password', mountPath: `${PASSWORD_DIR}/` },
          { name: 'redis-data', mountPath: '/data' },
          { name: 'config', mountPath: '/opt/bitnami/redis/mounted-etc' },
          {
            name: 'empty-dir',
            // The master's template spells it with a final slash, the replicas' without.
            mountPath: role === 'master' ? '/opt/bitnami/redis/etc/' : '/opt/bitnami/redis/etc',
            subPath: 'app-conf-dir',
          },
          { name: 'empty-dir', mountPath: '/tmp', subPath: 'tmp-dir' },
        ],
      },
    ];
    if (metrics) {
      // templates/{master,replicas}/application.yaml with auth.usePasswordFiles: the exporter's
      // shell reads the mounted password file into its environment.
      containers.push({
        name: 'metrics',
        image: `${values.metrics?.image?.repository}:${values.metrics?.image?.tag}`,
        imagePullPolicy: 'IfNotPresent',
        securityContext: CONTAINER_SECURITY_CONTEXT,
        command: [
          '/bin/bash',
          '-ec',
          'export REDIS_PASSWORD="$(< $REDIS_PASSWORD_FILE)"\nredis_exporter\n',
        ],
        env: [
          { name: 'REDIS_ALIAS', value: name },
          { name: 'REDIS_EXPORTER_WEB_LISTEN_ADDRESS', value: `:${EXPORTER_PORT}` },
          { name: 'REDIS_USER', value: 'default' },
          { name: 'REDIS_PASSWORD_FILE', value: '/secrets/redis-password' },
        ],
        ports: [{ name: 'metrics', containerPort: EXPORTER_PORT }],
        livenessProbe: {
          failureThreshold: 5,
          initialDelaySeconds: 10,
          periodSeconds: 10,
          successThreshold: 1,
          timeoutSeconds: 5,
          tcpSocket: { port: 'metrics' },
        },
        readinessProbe: {
          failureThreshold: 3,
          initialDelaySeconds: 5,
          periodSeconds: 10,
          successThreshold: 1,
          timeoutSeconds: 1,
          httpGet: { path: '/', port: 'metrics' },
        },
        resources: values.metrics?.resources ?? {},
        volumeMounts: [
          {
            name: 'empty-dir',
            mountPath: '/tmp',
            subPath: role === 'master' ? 'app-tmp-dir' : 'tmp-dir',
          },
          { name: 'redis-password', mountPath: '/secrets/' },
        ],
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
        revisionHistoryLimit: 10,
        selector: { matchLabels: selector },
        serviceName: headless,
        updateStrategy: { type: 'RollingUpdate' },
        template: {
          metadata: {
            labels: podLabels,
            annotations: {
              ...checksums,
              ...(metrics
                ? { 'prometheus.io/port': String(EXPORTER_PORT), 'prometheus.io/scrape': 'true' }
                : {}),
            },
          },
          spec: {
            securityContext: POD_SECURITY_CONTEXT,
            serviceAccountName: `${name}-${role}`,
            automountServiceAccountToken: false,
            affinity: roleValues.affinity ?? presetAffinity(roleValues, selector),
            enableServiceLinks: true,
            terminationGracePeriodSeconds: 30,
            containers,
            volumes: [
              { name: 'start-scripts', configMap: { name: `${name}-scripts`, defaultMode: 0o755 } },
              { name: 'health', configMap: { name: `${name}-health`, defaultMode: 0o755 } },
              {
                name: 'redis-password',
                secret: { secretName, items: [{ key: secretKey, path: 'redis-password' }] },
              },
              { name: 'config', configMap: { name: `${name}-configuration` } },
              { name: 'empty-dir', emptyDir: {} },
            ],
          },
        },
        persistentVolumeClaimRetentionPolicy: {
          whenDeleted:
            persistence.enabled === false
              ? 'Delete'
              : (roleValues.persistentVolumeClaimRetentionPolicy?.whenDeleted ?? 'Retain'),
          whenScaled: roleValues.persistentVolumeClaimRetentionPolicy?.whenScaled ?? 'Retain',
        },
        volumeClaimTemplates: [
          {
            apiVersion: 'v1',
            kind: 'PersistentVolumeClaim',
            metadata: { name: 'redis-data', labels: selector },
            spec: {
              accessModes: ['ReadWriteOnce'],
              resources: { requests: { storage: persistence.size ?? '8Gi' } },
              storageClassName: persistence.storageClass,
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
        endpoints: [{ port: 'http-metrics', interval: monitor.interval ?? '30s' }],
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
  // The chart's configmap.yaml writes each file as a `|-` block: no final newline.
  return lines.join('\n');
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
