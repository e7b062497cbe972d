// Which processes run for which pod, decided by the pod's owner, labels and image.
import type { ClusterAccess, KubeObject, PodRuntime, RunningPod } from '../runtime.ts';
import { startBeersystemPod, startIdlePod, startJobPod } from './app-pods.ts';
import { httpOk } from './probes.ts';
import { type RedisRole, startRedisPod } from './redis-pod.ts';
import type { WorkloadState } from './state.ts';

export type PodKind =
  | { kind: 'redis'; role: RedisRole }
  | { kind: 'beersystem' }
  | { kind: 'job' }
  | { kind: 'prometheus' }
  | { kind: 'idle' };

export const PROMETHEUS_SERVICE = {
  namespace: 'monitoring',
  name: 'kube-prometheus-stack-prometheus',
};

export function classifyPod(pod: KubeObject): PodKind {
  const labels = pod.metadata.labels ?? {};
  const namespace = pod.metadata.namespace ?? 'default';
  const owners = pod.metadata.ownerReferences ?? [];
  if (
    owners.some((o) => o.kind === 'Job') ||
    labels['job-name'] ||
    labels['batch.kubernetes.io/job-name']
  ) {
    return { kind: 'job' };
  }
  if (labels['app.kubernetes.io/name'] === 'redis') {
    const component = labels['app.kubernetes.io/component'];
    if (component === 'master' || component === 'replica')
      return { kind: 'redis', role: component };
  }
  // biome-ignore lint/suspicious/noExplicitAny: containers as the API stores them
  const images: string[] = (pod.spec?.containers ?? []).map((c: any) => String(c.image ?? ''));
  if (images.some(isRedisImage)) return { kind: 'redis', role: 'standalone' };
  const app = labels.app ?? labels['app.kubernetes.io/name'] ?? '';
  if (
    namespace === 'beersystem' &&
    (app === 'beersystem' || pod.metadata.name.startsWith('beersystem-'))
  ) {
    return { kind: 'beersystem' };
  }
  if (
    namespace === 'monitoring' &&
    (app === 'prometheus' || pod.metadata.name.startsWith('prometheus-'))
  ) {
    return { kind: 'prometheus' };
  }
  return { kind: 'idle' };
}

/** `redis:7`, `docker.io/library/redis:7.2-alpine`, `redis` — not the exporter's image. */
function isRedisImage(image: string): boolean {
  const last = image.split('/').pop() ?? '';
  return last.split(/[:@]/)[0] === 'redis';
}

export class WorkloadRuntime implements PodRuntime {
  private readonly state: WorkloadState;

  constructor(state: WorkloadState) {
    this.state = state;
  }

  start(pod: KubeObject, cluster: ClusterAccess): RunningPod {
    const what = classifyPod(pod);
    switch (what.kind) {
      case 'redis':
        return startRedisPod(pod, cluster, this.state, what.role);
      case 'beersystem':
        return startBeersystemPod(pod, cluster, this.state);
      case 'job':
        return startJobPod(pod, cluster, this.state);
      case 'prometheus':
        // The sandbox runs Prometheus itself (see prometheus.ts); its pod is ready when it is.
        return startIdlePod(
          pod,
          cluster,
          this.state,
          () => {
            const endpoint = this.state.externalEndpoints.get(
              `${PROMETHEUS_SERVICE.namespace}/${PROMETHEUS_SERVICE.name}`,
            );
            return endpoint
              ? httpOk(`http://${endpoint.ip}:${endpoint.port}/-/ready`)
              : Promise.resolve(false);
          },
          this.state.prometheusLog,
        );
      default:
        return startIdlePod(pod, cluster, this.state);
    }
  }
}
