// The faults `npm run sandbox -- fault …` injects into the workloads: `kill <ns>/<pod>` (its main
// process dies; the controller restarts it after a back-off, as the kubelet would), `partition
// <ns>/<pod>` (the Service proxies cut and refuse its connections, so its replication link is
// down), `slow-ready <ns> <seconds>` (app pods pass readiness only that long after they start, as
// after an image pull), `not-ready <ns> <text>` (app pods whose REDIS_HOST contains the text never
// pass readiness) and `heal` (all of them lifted).
import type { ClusterAccess, SandboxPlugin } from '../runtime.ts';
import type { WorkloadState } from './state.ts';

export class FaultPlugin implements SandboxPlugin {
  readonly name = 'faults';
  private readonly state: WorkloadState;

  constructor(state: WorkloadState) {
    this.state = state;
  }

  async start(_cluster: ClusterAccess): Promise<void> {}

  async stop(): Promise<void> {}

  async handleFault(args: string[]): Promise<string | undefined> {
    const [command, target] = args;
    if (command === 'heal') {
      const count = this.state.partitioned.size;
      this.state.setPartitioned(undefined);
      this.state.slowReadyMs.clear();
      this.state.notReadyOn.clear();
      return `healed: ${count} partition(s) lifted, readiness faults cleared`;
    }
    if (command === 'slow-ready') {
      const seconds = Number(args[2]);
      if (!target || !/^[a-z0-9-]+$/.test(target) || !(seconds > 0)) {
        throw new Error(
          'usage: fault slow-ready <namespace> <seconds>, e.g. fault slow-ready beersystem 20',
        );
      }
      this.state.slowReadyMs.set(target, seconds * 1000);
      return `pods of ${target} started from now on pass readiness ${seconds}s after they start`;
    }
    if (command === 'not-ready') {
      const text = args[2];
      if (!target || !/^[a-z0-9-]+$/.test(target) || !text) {
        throw new Error(
          'usage: fault not-ready <namespace> <REDIS_HOST text>, e.g. fault not-ready beersystem redis-shared',
        );
      }
      this.state.notReadyOn.set(target, text);
      return `pods of ${target} whose REDIS_HOST contains "${text}" never pass readiness, until \`fault heal\``;
    }
    if (command !== 'kill' && command !== 'partition') return undefined;
    const pod = this.findPod(target);
    if (command === 'kill') {
      if (!pod.main?.running)
        throw new Error(`${target} runs no process right now; try again once it is Running`);
      this.state.killedAt.set(`${pod.namespace}/${pod.name}`, Date.now());
      pod.main.kill('SIGKILL');
      return `killed ${target} (pid ${pod.main.pid}); it restarts after the crash back-off`;
    }
    this.state.setPartitioned([pod.ip]);
    return `partitioned ${target} (${pod.ip}): its connections through Services are cut until \`fault heal\``;
  }

  private findPod(target: string | undefined) {
    const match = /^([^/\s]+)\/([^/\s]+)$/.exec(target ?? '');
    if (!match)
      throw new Error('name the pod as <namespace>/<pod>, e.g. redis/redis-shared-replicas-0');
    const pod = this.state.pods.get(`${match[1]}/${match[2]}`);
    if (!pod) {
      const known = [...this.state.pods.keys()].join(', ') || 'none';
      throw new Error(`no running pod ${target}; running pods: ${known}`);
    }
    return pod;
  }
}
