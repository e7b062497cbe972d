// What the runtime and the plugins share: the processes behind each pod, their addresses, the
// faults in force, and endpoints that are not pods (the sandbox's own Prometheus).
import { EventEmitter } from 'node:events';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { AddressPool } from './addresses.ts';
import type { HostsFile } from './hosts.ts';
import type { SupervisedProcess, Supervisor } from './supervisor.ts';

export interface PodProcesses {
  namespace: string;
  name: string;
  uid: string;
  ip: string;
  /** The process whose end is the pod's end (redis-server, the app, the Job's command). */
  main?: SupervisedProcess;
  /** Sidecars (the Redis exporter). */
  sidecars: SupervisedProcess[];
}

export class WorkloadState extends EventEmitter {
  readonly runDir: string;
  readonly logDir: string;
  readonly supervisor: Supervisor;
  readonly addresses: AddressPool;
  readonly hosts: HostsFile;
  readonly pods = new Map<string, PodProcesses>();
  /** When each pod was last killed by `fault kill`: its next start waits out a back-off. */
  readonly killedAt = new Map<string, number>();
  /** Pod addresses whose connections the Service proxies refuse (`fault partition`). */
  readonly partitioned = new Set<string>();
  /**
   * `fault slow-ready <ns> <seconds>`: app pods of the namespace pass readiness only this long
   * after they start (an image pull, a slow boot), as a kubelet reports a pod Ready only once
   * its container runs and its readiness probe passes.
   */
  readonly slowReadyMs = new Map<string, number>();
  /**
   * `fault not-ready <ns> <text>`: app pods of the namespace whose REDIS_HOST contains the text
   * never pass readiness (an app that cannot start on that Redis: a failing readiness probe).
   */
  readonly notReadyOn = new Map<string, string>();
  /** `<ns>/<service>` → address:port of something that is not a pod but backs that Service. */
  readonly externalEndpoints = new Map<string, { ip: string; port: number }>();

  constructor(runDir: string, supervisor: Supervisor, addresses: AddressPool, hosts: HostsFile) {
    super();
    this.runDir = runDir;
    this.logDir = join(runDir, 'logs');
    mkdirSync(this.logDir, { recursive: true });
    this.supervisor = supervisor;
    this.addresses = addresses;
    this.hosts = hosts;
  }

  podDir(namespace: string, name: string): string {
    const dir = join(this.runDir, 'pods', namespace, name);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    return dir;
  }

  /** The PVC's directory: it outlives the pod, as a local-path volume does. */
  volumeDir(namespace: string, claim: string): string {
    const dir = join(this.runDir, 'data', namespace, claim);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    return dir;
  }

  /** The sandbox's Prometheus output, also the log of the Prometheus pod. */
  get prometheusLog(): string {
    return join(this.logDir, 'prometheus.log');
  }

  logFile(namespace: string, name: string, container?: string): string {
    return join(this.logDir, `${namespace}_${name}${container ? `_${container}` : ''}.log`);
  }

  setPartitioned(ips: string[] | undefined): void {
    if (ips) for (const ip of ips) this.partitioned.add(ip);
    else this.partitioned.clear();
    this.emit('partition');
  }
}
