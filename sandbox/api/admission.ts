// Defaults the API server fills in on create and update, so objects read back the way kubectl
// and the runbooks expect (a Service gets a clusterIP, a Job its selector, a Secret its data).
import type { KubeObject } from '../runtime.ts';
import type { ResourceType } from './resources.ts';
import { labelSelectorMatcher } from './selectors.ts';
import { invalid } from './status.ts';
import { invalidObject, updateErrors, validationErrors } from './validation.ts';

/** What admission reads of the store (the clusterIPs in use); the store calls admit, not the reverse. */
interface Store {
  list(type: ResourceType): KubeObject[];
}

/** K3s's default service range; the workload half maps each Service to a loopback address of its own. */
export const CLUSTER_IP_PREFIX = '10.43.0.';

function allocateClusterIp(store: Store, type: ResourceType): string {
  const used = new Set(store.list(type).map((s) => s.spec?.clusterIP));
  for (let i = 1; i < 255; i++) {
    const ip = `${CLUSTER_IP_PREFIX}${i}`;
    if (!used.has(ip)) return ip;
  }
  throw invalid('Service', '', '', 'spec.clusterIP: Internal error: range is full');
}

function defaultPodSpec(spec: KubeObject['spec']): void {
  spec.restartPolicy ??= 'Always';
  spec.dnsPolicy ??= 'ClusterFirst';
  spec.schedulerName ??= 'default-scheduler';
  spec.serviceAccountName ??= 'default';
  spec.terminationGracePeriodSeconds ??= 30;
  spec.securityContext ??= {};
  for (const c of [...(spec.containers ?? []), ...(spec.initContainers ?? [])]) {
    c.imagePullPolicy ??= String(c.image ?? '').endsWith(':latest') ? 'Always' : 'IfNotPresent';
    c.terminationMessagePath ??= '/dev/termination-log';
    c.terminationMessagePolicy ??= 'File';
    c.resources ??= {};
    for (const p of c.ports ?? []) p.protocol ??= 'TCP';
  }
}

function assertSelectorMatchesTemplate(type: ResourceType, obj: KubeObject): void {
  const selector = obj.spec?.selector;
  if (!selector) {
    throw invalid(type.kind, type.group, obj.metadata.name, 'spec.selector: Required value');
  }
  const template = { metadata: obj.spec?.template?.metadata ?? {} } as KubeObject;
  if (!labelSelectorMatcher(selector)(template)) {
    throw invalid(
      type.kind,
      type.group,
      obj.metadata.name,
      'spec.template.metadata.labels: Invalid value: `selector` does not match template `labels`',
    );
  }
}

/** Defaults, then validation: an object the real API server would refuse is refused with a 422. */
export function admit(
  type: ResourceType,
  obj: KubeObject,
  existing: KubeObject | undefined,
  store: Store,
): void {
  applyDefaults(type, obj, existing, store);
  const errors = validationErrors(type, obj);
  if (existing) errors.push(...updateErrors(type, obj, existing));
  if (errors.length > 0) throw invalidObject(type, obj.metadata.name, errors);
}

function applyDefaults(
  type: ResourceType,
  obj: KubeObject,
  existing: KubeObject | undefined,
  store: Store,
): void {
  const spec = obj.spec;
  switch (`${type.group}/${type.kind}`) {
    case '/Namespace':
      obj.metadata.labels = {
        ...obj.metadata.labels,
        'kubernetes.io/metadata.name': obj.metadata.name,
      };
      obj.spec = { finalizers: ['kubernetes'], ...(spec ?? {}) };
      if (!existing) obj.status = { phase: 'Active' };
      break;
    case '/Pod':
      if (!existing) {
        obj.spec ??= { containers: [] };
        defaultPodSpec(obj.spec);
        obj.status = { phase: 'Pending', qosClass: 'BestEffort', ...(obj.status ?? {}) };
      }
      break;
    case '/Service': {
      obj.spec = spec ?? {};
      const s = obj.spec;
      s.type ??= 'ClusterIP';
      s.sessionAffinity ??= 'None';
      if (existing?.spec?.clusterIP && !s.clusterIP) s.clusterIP = existing.spec.clusterIP;
      if (!s.clusterIP) s.clusterIP = allocateClusterIp(store, type);
      s.clusterIPs = [s.clusterIP];
      s.ipFamilies ??= ['IPv4'];
      s.ipFamilyPolicy ??= 'SingleStack';
      s.internalTrafficPolicy ??= 'Cluster';
      if (s.type === 'LoadBalancer') {
        s.externalTrafficPolicy ??= 'Cluster';
        s.allocateLoadBalancerNodePorts ??= true;
      }
      for (const p of s.ports ?? []) {
        p.protocol ??= 'TCP';
        p.targetPort ??= p.port;
      }
      if (!existing) obj.status = { loadBalancer: {} };
      break;
    }
    case '/Secret': {
      if (!obj.type) obj.type = 'Opaque';
      const stringData = obj.stringData as Record<string, string> | undefined;
      if (stringData) {
        obj.data = { ...(obj.data ?? {}) };
        for (const [k, v] of Object.entries(stringData)) {
          obj.data[k] = Buffer.from(String(v), 'utf8').toString('base64');
        }
        delete obj.stringData;
      }
      break;
    }
    case '/PersistentVolumeClaim':
      if (spec) spec.volumeMode ??= 'Filesystem';
      if (!existing) obj.status = { phase: 'Pending' };
      break;
    case 'apps/Deployment':
      spec.replicas ??= 1;
      spec.revisionHistoryLimit ??= 10;
      spec.progressDeadlineSeconds ??= 600;
      spec.strategy ??= {
        type: 'RollingUpdate',
        rollingUpdate: { maxSurge: '25%', maxUnavailable: '25%' },
      };
      assertSelectorMatchesTemplate(type, obj);
      spec.template.spec ??= { containers: [] };
      defaultPodSpec(spec.template.spec);
      if (!existing) obj.status = {};
      break;
    case 'apps/StatefulSet':
      spec.replicas ??= 1;
      spec.podManagementPolicy ??= 'OrderedReady';
      spec.updateStrategy ??= { type: 'RollingUpdate', rollingUpdate: { partition: 0 } };
      spec.revisionHistoryLimit ??= 10;
      spec.persistentVolumeClaimRetentionPolicy ??= { whenDeleted: 'Retain', whenScaled: 'Retain' };
      assertSelectorMatchesTemplate(type, obj);
      spec.template.spec ??= { containers: [] };
      defaultPodSpec(spec.template.spec);
      if (!existing) obj.status = { replicas: 0, availableReplicas: 0 };
      break;
    case 'apps/ReplicaSet':
      spec.replicas ??= 1;
      if (!existing) obj.status = { replicas: 0 };
      break;
    case 'batch/Job': {
      if (existing) {
        // A Job's selector and template are immutable; keep what the controller generated.
        spec.selector = existing.spec.selector;
        spec.template = existing.spec.template;
        break;
      }
      spec.backoffLimit ??= 6;
      spec.completions ??= 1;
      spec.parallelism ??= 1;
      spec.completionMode ??= 'NonIndexed';
      spec.suspend ??= false;
      const uid = obj.metadata.uid!;
      const labels = {
        'batch.kubernetes.io/controller-uid': uid,
        'batch.kubernetes.io/job-name': obj.metadata.name,
        'controller-uid': uid,
        'job-name': obj.metadata.name,
      };
      spec.template ??= {};
      spec.template.metadata = {
        ...(spec.template.metadata ?? {}),
        labels: { ...(spec.template.metadata?.labels ?? {}), ...labels },
      };
      spec.selector ??= { matchLabels: { 'batch.kubernetes.io/controller-uid': uid } };
      const restart = spec.template.spec?.restartPolicy;
      if (restart !== 'Never' && restart !== 'OnFailure') {
        throw invalid(
          'Job',
          'batch',
          obj.metadata.name,
          `spec.template.spec.restartPolicy: Required value: valid values: "OnFailure", "Never"`,
        );
      }
      defaultPodSpec(spec.template.spec);
      obj.status = {};
      break;
    }
    case 'apiextensions.k8s.io/CustomResourceDefinition':
      obj.status = {
        acceptedNames: spec?.names ?? {},
        storedVersions: (spec?.versions ?? []).map((v: { name: string }) => v.name),
        conditions: [
          {
            type: 'NamesAccepted',
            status: 'True',
            reason: 'NoConflicts',
            message: 'no conflicts found',
          },
          {
            type: 'Established',
            status: 'True',
            reason: 'InitialNamesAccepted',
            message: 'the initial names have been accepted',
          },
        ],
      };
      break;
  }
}
