// The seam between the sandbox's API half (emulator, store, controllers) and its workload half
// (real processes, networking, Prometheus). The API half calls a PodRuntime for every pod it
// schedules and lets plugins follow the store; the workload half implements both.

export interface ObjectMeta {
  name: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  creationTimestamp?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  ownerReferences?: Array<{
    apiVersion: string;
    kind: string;
    name: string;
    uid: string;
    controller?: boolean;
  }>;
  deletionTimestamp?: string;
  [key: string]: unknown;
}

export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: ObjectMeta;
  // biome-ignore lint/suspicious/noExplicitAny: objects of every kind pass through here
  spec?: any;
  // biome-ignore lint/suspicious/noExplicitAny: objects of every kind pass through here
  status?: any;
  // biome-ignore lint/suspicious/noExplicitAny: Secrets and ConfigMaps carry data, not spec
  data?: any;
  [key: string]: unknown;
}

/** Identifies a kind in the store: core kinds have group ''. */
export interface KindRef {
  group: string;
  version: string;
  kind: string;
}

export type StoreEventType = 'ADDED' | 'MODIFIED' | 'DELETED';

export interface StoreEvent {
  type: StoreEventType;
  object: KubeObject;
}

/** What the workload half may do with the cluster state. */
export interface ClusterAccess {
  get(kind: KindRef, namespace: string | undefined, name: string): KubeObject | undefined;
  list(kind: KindRef, namespace?: string, labelSelector?: Record<string, string>): KubeObject[];
  /** Merge-patches `status` of an object (emits MODIFIED). */
  patchStatus(kind: KindRef, namespace: string | undefined, name: string, status: object): void;
  /** Merge-patches metadata (labels/annotations) or spec of an object (emits MODIFIED). */
  patch(kind: KindRef, namespace: string | undefined, name: string, patch: object): void;
  /** Follows every change in the store; returns the function that stops following. */
  subscribe(listener: (event: StoreEvent) => void): () => void;
  /** Where the service proxy subresource sends HTTP for this Service port (e.g. http://127.0.0.5:8080). */
  setServiceProxyTarget(
    namespace: string,
    service: string,
    port: number,
    target: string | undefined,
  ): void;
  /** sandbox/.run (or a test's temp dir): logs/, data/, state live under it. */
  runDir: string;
}

export interface RunningPod {
  /** Resolves when the pod passes its readiness condition (its port answers, its app is up). */
  readonly ready: Promise<void>;
  /** Resolves with the process's exit code when the pod's main process ends, whatever the cause. */
  readonly exited: Promise<number>;
  /** Where this pod's output is kept: `kubectl logs` reads it. */
  readonly logFile: string;
  /**
   * Optional: the log of a container that is not the main one (container name → file), for
   * `kubectl logs -c <container>`; a container not named here shares `logFile`.
   */
  readonly containerLogFiles?: Readonly<Record<string, string>>;
  /** Stops the pod's processes (SIGTERM, then SIGKILL after a grace period). */
  stop(): Promise<void>;
  /**
   * Optional: once `ready` resolved, the runtime keeps probing and tells the listener each time
   * the pod's readiness changes (a partitioned replica goes not Ready, then Ready again), as a
   * kubelet's periodic readiness probe would. A runtime without it leaves a pod Ready until it
   * exits.
   */
  onReadinessChange?(listener: (ready: boolean) => void): void;
}

export interface PodRuntime {
  /**
   * Starts the processes of one pod. The API half calls this when a pod is created and scheduled;
   * it sets the pod Ready when `ready` resolves, and reacts to `exited`: a Job's pod becomes
   * Succeeded/Failed by the code, any other pod is restarted (restartCount + 1).
   */
  start(pod: KubeObject, cluster: ClusterAccess): RunningPod;
}

/** A long-lived part of the workload half (networking, Prometheus) that follows the store. */
export interface SandboxPlugin {
  readonly name: string;
  start(cluster: ClusterAccess): Promise<void>;
  stop(): Promise<void>;
  /**
   * Handles a `npm run sandbox -- fault …` command the API half does not handle itself
   * (e.g. `['kill', 'redis/redis-shared-replicas-0']`). Returns a message for the operator, or
   * undefined when the command is not this plugin's.
   */
  handleFault?(args: string[]): Promise<string | undefined>;
}
