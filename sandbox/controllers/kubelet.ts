// What the scheduler and the kubelets do for a pod: pick a node, start the pod through the
// PodRuntime, report Ready, restart a crashed container, finish a Job's pod with its exit code,
// and hold a deleted pod as Terminating until its processes have stopped.
import type { ResourceType } from '../api/resources.ts';
import type { Store, StoreChange } from '../api/store.ts';
import { nowTimestamp } from '../api/store.ts';
import type { ClusterAccess, KubeObject, PodRuntime, RunningPod } from '../runtime.ts';
import { type EventRecorder, eventRecorder } from './events.ts';
import { placePod } from './scheduling.ts';

interface PodRun {
  uid: string;
  namespace: string;
  name: string;
  handle: RunningPod | undefined;
  stopping: boolean;
  finished: boolean;
  restartTimer: NodeJS.Timeout | undefined;
  restarts: number;
}

const MAX_RESTART_BACKOFF_MS = 10_000;
/** How soon an unschedulable pod is tried again (kube-scheduler retries on cluster changes). */
const UNSCHEDULABLE_RETRY_MS = 1000;

export interface KubeletOptions {
  store: Store;
  runtime: PodRuntime;
  cluster: ClusterAccess;
  record: EventRecorder;
}

export class Kubelet {
  private readonly runs = new Map<string, PodRun>();
  private readonly podType: ResourceType;
  private readonly recordScheduling: EventRecorder;
  private readonly nodeType: ResourceType;
  private unsubscribe: (() => void) | undefined;
  private nextNode = 0;
  private nextIp = 0;
  private readonly stops = new Set<Promise<void>>();
  private readonly retries = new Set<NodeJS.Timeout>();
  // Kept after a pod finished, so a completed Job's logs stay readable.
  private readonly logFiles = new Map<string, Pick<RunningPod, 'logFile' | 'containerLogFiles'>>();

  constructor(private readonly opts: KubeletOptions) {
    this.podType = opts.store.registry.byKind({ group: '', kind: 'Pod' })!;
    this.nodeType = opts.store.registry.byKind({ group: '', kind: 'Node' })!;
    this.recordScheduling = eventRecorder(opts.store, 'default-scheduler');
  }

  start(): void {
    const { store } = this.opts;
    store.holdOnDelete = (type, obj) =>
      type === this.podType &&
      this.runs.has(obj.metadata.uid!) &&
      !this.runs.get(obj.metadata.uid!)!.finished;
    this.unsubscribe = store.subscribe((change) => this.onChange(change));
    for (const pod of store.list(this.podType)) {
      if (!pod.spec?.nodeName) setImmediate(() => guarded(() => this.schedule(pod)));
    }
  }

  /** Stops every pod's processes (the sandbox is shutting down). */
  async stop(): Promise<void> {
    this.unsubscribe?.();
    for (const timer of this.retries) clearTimeout(timer);
    this.retries.clear();
    const stopping: Promise<void>[] = [...this.stops];
    for (const run of this.runs.values()) {
      clearTimeout(run.restartTimer);
      run.stopping = true;
      const handle = run.handle;
      if (handle)
        stopping.push(
          Promise.resolve()
            .then(() => handle.stop())
            .catch(logFailure),
        );
    }
    await Promise.all(stopping);
    this.runs.clear();
  }

  private onChange(change: StoreChange): void {
    if (change.resource !== this.podType) return;
    const pod = change.object;
    const uid = pod.metadata.uid!;
    if (change.type === 'ADDED' && !pod.spec?.nodeName) {
      setImmediate(() => guarded(() => this.schedule(pod)));
    } else if (change.type === 'MODIFIED' && pod.metadata.deletionTimestamp) {
      const run = this.runs.get(uid);
      if (run && !run.stopping) this.terminate(run, true).catch(logFailure);
    } else if (change.type === 'DELETED') {
      const run = this.runs.get(uid);
      if (run && !run.stopping) this.terminate(run, false).catch(logFailure);
    }
  }

  private schedule(pod: KubeObject): void {
    const { store } = this.opts;
    const nodes = store.list(this.nodeType);
    const current = store.get(this.podType, pod.metadata.namespace, pod.metadata.name);
    if (!current || current.metadata.uid !== pod.metadata.uid || current.spec?.nodeName) return;
    if (current.metadata.deletionTimestamp) return;
    let nodeName = 'sandbox';
    if (nodes.length > 0) {
      const placement = placePod(current, nodes, store.list(this.podType), this.nextNode);
      if (!placement.node) {
        this.unschedulable(current, placement.reason ?? 'no node fits');
        return;
      }
      this.nextNode++;
      nodeName = placement.node;
    }
    current.spec.nodeName = nodeName;
    const scheduled = store.update(this.podType, current);
    this.recordScheduling(
      scheduled,
      'Scheduled',
      `Successfully assigned ${pod.metadata.namespace}/${pod.metadata.name} to ${nodeName}`,
    );
    this.patchStatus(scheduled, {
      phase: 'Pending',
      hostIP: '127.0.0.1',
      startTime: nowTimestamp(),
      conditions: conditions({
        PodScheduled: true,
        Initialized: true,
        ContainersReady: false,
        Ready: false,
      }),
      containerStatuses: containerStatuses(scheduled, { waiting: { reason: 'ContainerCreating' } }),
    });
    const run: PodRun = {
      uid: pod.metadata.uid!,
      namespace: pod.metadata.namespace!,
      name: pod.metadata.name,
      handle: undefined,
      stopping: false,
      finished: false,
      restartTimer: undefined,
      restarts: 0,
    };
    this.runs.set(run.uid, run);
    this.launch(run);
  }

  /** Pending with PodScheduled False and a FailedScheduling event, as kube-scheduler leaves it; tried again. */
  private unschedulable(pod: KubeObject, reason: string): void {
    const already = (pod.status?.conditions ?? []).some(
      (c: { type: string; message?: string }) => c.type === 'PodScheduled' && c.message === reason,
    );
    if (!already) {
      this.recordScheduling(pod, 'FailedScheduling', reason, 'Warning');
      this.patchStatus(pod, {
        phase: 'Pending',
        conditions: [
          {
            type: 'PodScheduled',
            status: 'False',
            reason: 'Unschedulable',
            message: reason,
            lastProbeTime: null,
            lastTransitionTime: nowTimestamp(),
          },
        ],
      });
    }
    const timer = setTimeout(() => {
      this.retries.delete(timer);
      guarded(() => this.schedule(pod));
    }, UNSCHEDULABLE_RETRY_MS);
    this.retries.add(timer);
  }

  private current(run: PodRun): KubeObject | undefined {
    const pod = this.opts.store.get(this.podType, run.namespace, run.name);
    return pod?.metadata.uid === run.uid ? pod : undefined;
  }

  private patchStatus(pod: KubeObject, status: Record<string, unknown>): void {
    this.opts.store.mutate(
      this.podType,
      pod.metadata.namespace,
      pod.metadata.name,
      (o) => {
        if (o.metadata.uid !== pod.metadata.uid) return;
        o.status = { ...(o.status ?? {}), ...status };
      },
      'status',
    );
  }

  private launch(run: PodRun): void {
    const pod = this.current(run);
    if (!pod || run.stopping) return;
    let handle: RunningPod;
    try {
      handle = this.opts.runtime.start(pod, this.opts.cluster);
    } catch (err) {
      // A pod that cannot start is a crashing container: back-off and retry (or fail a Job's
      // pod), never a tight loop of replacement pods.
      this.opts.record(pod, 'Failed', `Error: ${(err as Error).message}`, 'Warning');
      run.handle = undefined;
      this.afterExit(run, pod, 1, (err as Error).message);
      return;
    }
    run.handle = handle;
    this.logFiles.set(run.uid, {
      logFile: handle.logFile,
      containerLogFiles: handle.containerLogFiles,
    });
    this.opts.record(
      pod,
      'Started',
      `Started container ${pod.spec.containers?.[0]?.name ?? 'main'}`,
    );
    const startedAt = nowTimestamp();
    handle.ready.then(
      () =>
        guarded(() => {
          this.reportReadiness(run, handle, startedAt, true);
          handle.onReadinessChange?.((ready) =>
            guarded(() => this.reportReadiness(run, handle, startedAt, ready)),
          );
        }),
      () => undefined,
    );
    handle.exited.then(
      (code) => guarded(() => this.onExit(run, handle, code)),
      (err) => guarded(() => this.onExit(run, handle, 1, String(err))),
    );
  }

  private reportReadiness(run: PodRun, handle: RunningPod, startedAt: string, ready: boolean) {
    if (run.handle !== handle || run.stopping || run.finished) return;
    const latest = this.current(run);
    if (!latest) return;
    this.patchStatus(latest, {
      phase: 'Running',
      podIP: latest.status?.podIP ?? this.fakePodIp(),
      conditions: conditions(
        {
          PodScheduled: true,
          Initialized: true,
          ContainersReady: ready,
          Ready: ready,
        },
        latest,
      ),
      containerStatuses: containerStatuses(latest, {
        running: { startedAt },
        ready,
        restartCount: run.restarts,
      }),
    });
  }

  // A runtime that gives pods no address of their own (the fake one) leaves it to K3s's pod range.
  private fakePodIp(): string {
    const n = this.nextIp++;
    return `10.42.${Math.floor(n / 250)}.${(n % 250) + 2}`;
  }

  private onExit(run: PodRun, handle: RunningPod, code: number, reason?: string): void {
    if (run.handle !== handle || run.stopping) return;
    const pod = this.current(run);
    if (pod) this.afterExit(run, pod, code, reason);
  }

  private afterExit(run: PodRun, pod: KubeObject, code: number, reason?: string): void {
    const policy = pod.spec?.restartPolicy ?? 'Always';
    if (policy === 'Never' || (policy === 'OnFailure' && code === 0)) {
      this.finish(run, code, reason);
      return;
    }
    run.restarts++;
    this.patchStatus(pod, {
      phase: 'Running',
      conditions: conditions(
        {
          PodScheduled: true,
          Initialized: true,
          ContainersReady: false,
          Ready: false,
        },
        pod,
      ),
      containerStatuses: containerStatuses(pod, {
        waiting: {
          reason: 'CrashLoopBackOff',
          message: `back-off restarting failed container (exit code ${code})`,
        },
        lastState: {
          terminated: {
            exitCode: code,
            reason: code === 0 ? 'Completed' : 'Error',
            finishedAt: nowTimestamp(),
          },
        },
        restartCount: run.restarts,
      }),
    });
    this.opts.record(
      pod,
      'BackOff',
      `Back-off restarting failed container (exit code ${code})`,
      'Warning',
    );
    const delay = Math.min(250 * 2 ** (run.restarts - 1), MAX_RESTART_BACKOFF_MS);
    run.restartTimer = setTimeout(() => guarded(() => this.launch(run)), delay);
  }

  private finish(run: PodRun, code: number, message?: string): void {
    run.finished = true;
    const pod = this.current(run);
    if (!pod) return;
    const finishedAt = nowTimestamp();
    this.patchStatus(pod, {
      phase: code === 0 ? 'Succeeded' : 'Failed',
      conditions: conditions(
        {
          PodScheduled: true,
          Initialized: true,
          ContainersReady: false,
          Ready: false,
        },
        pod,
      ),
      containerStatuses: containerStatuses(pod, {
        terminated: {
          exitCode: code,
          reason: code === 0 ? 'Completed' : 'Error',
          finishedAt,
          ...(message ? { message } : {}),
        },
        restartCount: run.restarts,
      }),
    });
  }

  private async terminate(run: PodRun, thenRemove: boolean): Promise<void> {
    run.stopping = true;
    clearTimeout(run.restartTimer);
    const pod = this.current(run);
    if (pod)
      this.opts.record(
        pod,
        'Killing',
        `Stopping container ${pod.spec.containers?.[0]?.name ?? 'main'}`,
      );
    const stopped = Promise.resolve()
      .then(() => run.handle?.stop())
      .catch(logFailure);
    this.stops.add(stopped);
    await stopped;
    this.stops.delete(stopped);
    this.runs.delete(run.uid);
    if (thenRemove && this.current(run)) {
      this.opts.store.remove(this.podType, run.namespace, run.name);
    }
  }

  /** The log file of a container of a pod's current (or last) run, for `kubectl logs`. */
  logFileOf(uid: string, container: string): string | undefined {
    const files = this.logFiles.get(uid);
    return files?.containerLogFiles?.[container] ?? files?.logFile;
  }

  /** True while the pod's processes may still write to its log (`logs --follow` keeps reading). */
  isRunning(uid: string): boolean {
    const run = this.runs.get(uid);
    return !!run && !run.finished && !run.stopping;
  }
}

function logFailure(err: unknown): void {
  console.error(`sandbox: kubelet: ${(err as Error)?.stack ?? err}`);
}

/** Runs kubelet work from a timer or promise: a failure is logged, never a crashed sandbox. */
function guarded(work: () => void): void {
  try {
    work();
  } catch (err) {
    logFailure(err);
  }
}

/**
 * A condition's lastTransitionTime moves only when its status changes, as the kubelet's status
 * manager does (kubernetes pkg/kubelet/status/status_manager.go, updateLastTransitionTime): the
 * runbooks read when a pod became Ready from it.
 */
function conditions(
  state: Record<string, boolean>,
  pod?: KubeObject,
): Array<Record<string, string>> {
  const now = nowTimestamp();
  const previous = (pod?.status?.conditions ?? []) as Array<Record<string, string>>;
  return Object.entries(state).map(([type, ok]) => {
    const status = ok ? 'True' : 'False';
    const before = previous.find((c) => c.type === type);
    return {
      type,
      status,
      lastProbeTime: null as unknown as string,
      lastTransitionTime:
        before?.status === status && before.lastTransitionTime ? before.lastTransitionTime : now,
    };
  });
}

function containerStatuses(
  pod: KubeObject,
  state: {
    running?: object;
    waiting?: object;
    terminated?: object;
    lastState?: object;
    ready?: boolean;
    restartCount?: number;
  },
): object[] {
  return (pod.spec?.containers ?? []).map((c: { name: string; image: string }) => ({
    name: c.name,
    image: c.image,
    imageID: '',
    containerID: `sandbox://${pod.metadata.uid}/${c.name}`,
    ready: !!state.ready,
    started: !!state.running,
    restartCount: state.restartCount ?? 0,
    state: state.running
      ? { running: state.running }
      : state.terminated
        ? { terminated: state.terminated }
        : { waiting: state.waiting ?? {} },
    lastState: state.lastState ?? {},
  }));
}
