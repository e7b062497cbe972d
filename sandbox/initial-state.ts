// The homelab as it is before the change (names from the 013 spec): four nodes, the namespaces,
// local-path storage, the CRDs of the Prometheus operator and MetalLB, MetalLB's `eero-pool` with
// three addresses taken, and beersystem on its own `redis` Deployment. The addresses are the
// sandbox's own loopback pool (lb-pool.ts) so the workload half can really listen on them.
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { METALLB_VERSION } from './controllers/load-balancers.ts';
import { type SandboxNetwork, sandboxNetwork } from './lb-pool.ts';
import type { KubeObject } from './runtime.ts';

export const L2_ADVERTISEMENT = 'eero-l2';
export const NAMESPACES = ['default', 'kube-system', 'beersystem', 'monitoring', 'metallb-system'];
export const NODES = ['master1', 'worker1', 'worker2', 'worker3'];
const K3S_VERSION = 'v1.32.4+k3s1';

const meta = (name: string, namespace?: string, labels?: Record<string, string>) => ({
  name,
  ...(namespace ? { namespace } : {}),
  ...(labels ? { labels } : {}),
});

function node(name: string, index: number): KubeObject {
  const controlPlane = index === 0;
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: meta(name, undefined, {
      'kubernetes.io/hostname': name,
      'kubernetes.io/os': 'linux',
      'kubernetes.io/arch': 'amd64',
      'node.kubernetes.io/instance-type': 'k3s',
      ...(controlPlane
        ? {
            'node-role.kubernetes.io/control-plane': 'true',
            'node-role.kubernetes.io/master': 'true',
          }
        : {}),
    }),
    spec: { podCIDR: `10.42.${index}.0/24`, providerID: `k3s://${name}` },
    status: {
      capacity: { cpu: '4', memory: '16311252Ki', pods: '110', 'ephemeral-storage': '245016792Ki' },
      allocatable: {
        cpu: '4',
        memory: '16311252Ki',
        pods: '110',
        'ephemeral-storage': '238350465209',
      },
      conditions: [
        { type: 'MemoryPressure', status: 'False', reason: 'KubeletHasSufficientMemory' },
        { type: 'DiskPressure', status: 'False', reason: 'KubeletHasNoDiskPressure' },
        { type: 'PIDPressure', status: 'False', reason: 'KubeletHasSufficientPID' },
        {
          type: 'Ready',
          status: 'True',
          reason: 'KubeletReady',
          message: 'kubelet is posting ready status',
        },
      ],
      addresses: [
        { type: 'InternalIP', address: '127.0.0.1' },
        { type: 'Hostname', address: name },
      ],
      nodeInfo: {
        kubeletVersion: K3S_VERSION,
        kubeProxyVersion: K3S_VERSION,
        containerRuntimeVersion: 'containerd://1.7.27-k3s1',
        operatingSystem: 'linux',
        architecture: 'amd64',
        osImage: 'Ubuntu 24.04.2 LTS',
        kernelVersion: '6.8.0-59-generic',
      },
    },
  };
}

/**
 * The CRDs as their projects publish them (api/crd-definitions.json: prometheus-operator v0.93.0,
 * MetalLB v0.16.1, descriptions removed), so the API server prunes and refuses unknown fields of
 * their objects by the real structural schemas.
 */
function publishedCrd(name: string): KubeObject {
  const file = new URL('./api/crd-definitions.json', import.meta.url);
  const { crds } = JSON.parse(readFileSync(file, 'utf8')) as { crds: Record<string, object> };
  const spec = crds[name];
  if (!spec) throw new Error(`sandbox: no published definition of CRD ${name}`);
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: meta(name),
    spec: structuredClone(spec),
  };
}

/** A CRD whose schema keeps every field (the Prometheus kind: read by 01, never written). */
function crd(
  group: string,
  version: string,
  kind: string,
  plural: string,
  shortNames: string[],
): KubeObject {
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: meta(`${plural}.${group}`),
    spec: {
      group,
      scope: 'Namespaced',
      names: { kind, listKind: `${kind}List`, plural, singular: kind.toLowerCase(), shortNames },
      versions: [
        {
          name: version,
          served: true,
          storage: true,
          schema: {
            openAPIV3Schema: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true },
          },
        },
      ],
    },
  };
}

function loadBalancer(
  pool: string,
  name: string,
  namespace: string,
  ip: string,
  ports: object[],
): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: {
      ...meta(name, namespace, { app: name }),
      annotations: { 'metallb.universe.tf/address-pool': pool },
    },
    spec: { type: 'LoadBalancer', loadBalancerIP: ip, ports },
  };
}

const redisPasswordEnv = {
  name: 'REDIS_PASSWORD',
  valueFrom: { secretKeyRef: { name: 'beersystem-redis', key: 'redis-password' } },
};

function deployment(
  name: string,
  namespace: string,
  labels: Record<string, string>,
  podSpec: object,
): KubeObject {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: meta(name, namespace, labels),
    spec: {
      replicas: 1,
      selector: { matchLabels: labels },
      template: { metadata: { labels }, spec: podSpec },
    },
  };
}

/** A fresh random secret value: generated at every `up`, never kept in the repository. */
export function randomSecret(): string {
  return randomBytes(18).toString('base64url');
}

export interface HomelabOptions {
  /** The MetalLB release the controller's image carries (default METALLB_VERSION). */
  metallbVersion?: string | undefined;
}

/**
 * MetalLB's controller as its manifests install it (config/manifests/metallb-native.yaml:
 * Deployment `controller` in metallb-system, labels app=metallb, component=controller): its image
 * tag is how the version is read from the cluster.
 */
function metallbController(version: string): KubeObject {
  const labels = { app: 'metallb', component: 'controller' };
  return deployment('controller', 'metallb-system', labels, {
    containers: [
      {
        name: 'controller',
        image: `quay.io/metallb/controller:${version}`,
        args: ['--port=9120', '--log-level=info'],
        ports: [{ name: 'monitoring', containerPort: 9120 }],
      },
    ],
  });
}

export function initialState(
  network: SandboxNetwork = sandboxNetwork(0),
  options: HomelabOptions = {},
): KubeObject[] {
  const { pool, held } = network;
  const prometheusLabels = {
    'app.kubernetes.io/name': 'prometheus',
    'app.kubernetes.io/instance': 'kube-prometheus-stack-prometheus',
    prometheus: 'kube-prometheus-stack-prometheus',
  };
  return [
    ...NAMESPACES.map((ns) => ({ apiVersion: 'v1', kind: 'Namespace', metadata: meta(ns) })),
    ...NODES.map(node),
    {
      apiVersion: 'storage.k8s.io/v1',
      kind: 'StorageClass',
      metadata: {
        ...meta('local-path'),
        annotations: { 'storageclass.kubernetes.io/is-default-class': 'true' },
      },
      provisioner: 'rancher.io/local-path',
      reclaimPolicy: 'Delete',
      volumeBindingMode: 'WaitForFirstConsumer',
      allowVolumeExpansion: false,
    },
    publishedCrd('servicemonitors.monitoring.coreos.com'),
    publishedCrd('prometheusrules.monitoring.coreos.com'),
    crd('monitoring.coreos.com', 'v1', 'Prometheus', 'prometheuses', ['prom']),
    publishedCrd('ipaddresspools.metallb.io'),
    publishedCrd('l2advertisements.metallb.io'),
    publishedCrd('bgpadvertisements.metallb.io'),
    {
      apiVersion: 'metallb.io/v1beta1',
      kind: 'IPAddressPool',
      metadata: meta(pool.name, 'metallb-system'),
      spec: { addresses: [`${pool.first}-${pool.last}`], autoAssign: true },
    },
    metallbController(options.metallbVersion ?? METALLB_VERSION),
    // Without an advertisement MetalLB assigns the pool's addresses but no speaker answers for them.
    {
      apiVersion: 'metallb.io/v1beta1',
      kind: 'L2Advertisement',
      metadata: meta(L2_ADVERTISEMENT, 'metallb-system'),
      spec: { ipAddressPools: [pool.name] },
    },
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: meta('kubernetes', 'default', { component: 'apiserver', provider: 'kubernetes' }),
      spec: { clusterIP: '10.43.0.1', ports: [{ name: 'https', port: 443, targetPort: 6443 }] },
    },
    loadBalancer(pool.name, 'postgres-ha-postgresql-primary', 'default', held.postgres, [
      { name: 'tcp-postgresql', port: 5432 },
    ]),
    loadBalancer(pool.name, 'pihole-dns', 'default', held.pihole, [
      { name: 'dns-tcp', port: 53, protocol: 'TCP' },
    ]),
    loadBalancer(pool.name, 'traefik', 'kube-system', held.traefik, [
      { name: 'web', port: 80, targetPort: 8000 },
      { name: 'websecure', port: 443, targetPort: 8443 },
    ]),
    {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: meta('beersystem-redis', 'beersystem', { app: 'beersystem' }),
      type: 'Opaque',
      stringData: { 'redis-password': randomSecret() },
    },
    deployment(
      'redis',
      'beersystem',
      { app: 'redis' },
      {
        containers: [
          {
            name: 'redis',
            image: 'redis:7',
            command: ['redis-server'],
            args: ['--requirepass', '$(REDIS_PASSWORD)'],
            env: [redisPasswordEnv],
            ports: [{ name: 'redis', containerPort: 6379 }],
          },
        ],
      },
    ),
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: meta('redis', 'beersystem', { app: 'redis' }),
      spec: {
        selector: { app: 'redis' },
        ports: [{ name: 'redis', port: 6379, targetPort: 6379 }],
      },
    },
    deployment(
      'beersystem',
      'beersystem',
      { app: 'beersystem' },
      {
        containers: [
          {
            name: 'beersystem',
            image: 'beersystem:latest',
            env: [
              { name: 'REDIS_HOST', value: 'redis.beersystem.svc.cluster.local' },
              { name: 'REDIS_PORT', value: '6379' },
              redisPasswordEnv,
            ],
            ports: [{ name: 'http', containerPort: 8080 }],
          },
        ],
      },
    ),
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: meta('beersystem', 'beersystem', { app: 'beersystem' }),
      spec: {
        selector: { app: 'beersystem' },
        ports: [{ name: 'http', port: 8080, targetPort: 8080 }],
      },
    },
    {
      apiVersion: 'apps/v1',
      kind: 'StatefulSet',
      metadata: meta('prometheus-kube-prometheus-stack-prometheus', 'monitoring', prometheusLabels),
      spec: {
        replicas: 1,
        serviceName: 'prometheus-operated',
        selector: { matchLabels: prometheusLabels },
        template: {
          metadata: { labels: prometheusLabels },
          spec: {
            containers: [
              {
                name: 'prometheus',
                image: 'quay.io/prometheus/prometheus:v2.42.0',
                args: [
                  '--config.file=/etc/prometheus/config_out/prometheus.env.yaml',
                  '--web.enable-lifecycle',
                ],
                ports: [{ name: 'http-web', containerPort: 9090 }],
                // As the Prometheus Operator sets it (port name aside): the sandbox keeps probing
                // this pod.
                readinessProbe: {
                  httpGet: { path: '/-/ready', port: 'http-web' },
                  periodSeconds: 5,
                  timeoutSeconds: 3,
                  failureThreshold: 120,
                },
              },
            ],
          },
        },
      },
    },
    // The operator's resource as kube-prometheus-stack creates it (serviceMonitorSelectorNilUsesHelmValues
    // and ruleSelectorNilUsesHelmValues left true): it selects by the release label, in every
    // namespace. The sandbox's Prometheus scrapes every ServiceMonitor regardless; 01-setup reads this.
    {
      apiVersion: 'monitoring.coreos.com/v1',
      kind: 'Prometheus',
      metadata: meta('kube-prometheus-stack-prometheus', 'monitoring', {
        app: 'kube-prometheus-stack-prometheus',
        release: 'kube-prometheus-stack',
      }),
      spec: {
        serviceMonitorSelector: { matchLabels: { release: 'kube-prometheus-stack' } },
        serviceMonitorNamespaceSelector: {},
        ruleSelector: { matchLabels: { release: 'kube-prometheus-stack' } },
        ruleNamespaceSelector: {},
        podMonitorSelector: { matchLabels: { release: 'kube-prometheus-stack' } },
      },
    },
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: meta('kube-prometheus-stack-prometheus', 'monitoring', {
        app: 'kube-prometheus-stack-prometheus',
        release: 'kube-prometheus-stack',
      }),
      spec: {
        selector: {
          'app.kubernetes.io/name': 'prometheus',
          prometheus: 'kube-prometheus-stack-prometheus',
        },
        ports: [{ name: 'http-web', port: 9090, targetPort: 9090 }],
      },
    },
  ];
}
