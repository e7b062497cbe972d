// The life of one pod's processes, whatever runs in it: an optional start delay (the back-off
// after `fault kill`), sidecars that start at once, a main process whose end is the pod's end,
// and either the main container's own probes run as the kubelet runs them, or a readiness
// condition polled until it passes.
import { appendFileSync } from 'node:fs';
import type { ClusterAccess, KubeObject, RunningPod } from '../runtime.ts';
import { POD } from './kinds.ts';
import type { ProbeSpec } from './probes.ts';
import type { PodProcesses, WorkloadState } from './state.ts';
import type { SupervisedProcess } from './supervisor.ts';

export interface PodLaunch {
  state: WorkloadState;
  pod: KubeObject;
  cluster: ClusterAccess;
  logFile: string;
  /** Logs of the containers that do not write to `logFile` (the exporter sidecar's). */
  containerLogFiles?: Record<string, string>;
  /** Milliseconds to wait before starting the main process (sidecars don't wait). */
  delayMs?: number;
  startSidecars?: (record: PodProcesses) => SupervisedProcess[];
  startMain: (record: PodProcesses) => SupervisedProcess;
  probe: (record: PodProcesses) => Promise<boolean>;
  /**
   * When given, the main container's startup, liveness and readiness probes from the pod spec run
   * through this handler as the kubelet runs them (see runContainerProbes), instead of `probe`.
   */
  containerProbe?: (record: PodProcesses, probe: ProbeSpec) => Promise<boolean>;
  /** The container whose probes those are. */
  container?: { startupProbe?: ProbeSpec; livenessProbe?: ProbeSpec; readinessProbe?: ProbeSpec };
}

const PROBE_INTERVAL_MS = 50;
/** How often a Ready pod is probed again (the chart's readiness probe runs every 5 s). */
const READY_PROBE_INTERVAL_MS = 1000;
/** Failed probes in a row before a Ready pod is reported not Ready, as `failureThreshold`. */
const READY_FAILURE_THRESHOLD = 3;
/** Exit code reported when the pod was stopped before its main process started. */
const STOPPED_BEFORE_START = 137;
/** How long after `fault kill` a pod's restart waits, as the kubelet's crash back-off would. */
export const KILL_BACKOFF_MS = 10_000;
const KILL_BACKOFF_WINDOW_MS = 60_000;

/** The back-off a pod's next start owes to a recent `fault kill`, if any. */
export function killBackoff(state: WorkloadState, namespace: string, name: string): number {
  const killedAt = state.killedAt.get(`${namespace}/${name}`);
  if (killedAt === undefined || Date.now() - killedAt > KILL_BACKOFF_WINDOW_MS) return 0;
  state.killedAt.delete(`${namespace}/${name}`);
  return KILL_BACKOFF_MS;
}

export function launchPod(launch: PodLaunch): RunningPod {
  const { state, pod } = launch;
  const namespace = pod.metadata.namespace ?? 'default';
  const name = pod.metadata.name;
  const key = `${namespace}/${name}`;
  const ip = state.addresses.podIP(namespace, name);

  // A pod started again under the same name replaces what still ran for it.
  const previous = state.pods.get(key);
  if (previous) for (const p of [previous.main, ...previous.sidecars]) p?.kill('SIGKILL');

  const record: PodProcesses = { namespace, name, uid: pod.metadata.uid ?? '', ip, sidecars: [] };
  state.pods.set(key, record);
  reportPodIP(launch.cluster, namespace, name, ip);

  let stopped = false;
  let settleExit: (code: number) => void = () => {};
  const exited = new Promise<number>((resolve) => {
    settleExit = resolve;
  });
  let markReady: () => void = () => {};
  const ready = new Promise<void>((resolve) => {
    markReady = resolve;
  });
  const readinessListeners: Array<(ready: boolean) => void> = [];

  const startMain = () => {
    if (stopped) return;
    let main: SupervisedProcess;
    try {
      main = launch.startMain(record);
    } catch (err) {
      appendError(launch.logFile, err);
      settleExit(1);
      return;
    }
    record.main = main;
    main.exited.then((code) => settleExit(code));
    const container = launch.container;
    if (
      launch.containerProbe &&
      (container?.startupProbe || container?.livenessProbe || container?.readinessProbe)
    )
      void runContainerProbes(launch, record, main, {
        alive: () => !stopped && record.main === main && main.running,
        ready: (isReady) => {
          if (isReady) markReady();
          for (const listener of readinessListeners) listener(isReady);
        },
      });
    else void pollReadiness();
  };

  // A pod that ends before it is ready never becomes ready: `ready` stays pending. Once ready,
  // a pod that declares a readinessProbe (the chart's Redis pods, Prometheus) is probed for as
  // long as its main process runs, so a replica whose link is cut stops being Ready (and leaves
  // its Services' endpoints) like a cluster's would; without one, a running container stays
  // Ready, as the kubelet has it.
  const probedWhileRunning = declaresReadinessProbe(pod);
  const pollReadiness = async () => {
    const alive = () => !stopped && !!record.main?.running;
    const probe = () => launch.probe(record).catch(() => false);
    while (alive()) {
      if (await probe()) {
        if (alive()) markReady();
        break;
      }
      await sleep(PROBE_INTERVAL_MS);
    }
    let isReady = true;
    let failures = 0;
    while (probedWhileRunning && alive()) {
      await sleep(READY_PROBE_INTERVAL_MS);
      if (!alive()) return;
      const ok = await probe();
      failures = ok ? 0 : failures + 1;
      const nowReady: boolean = isReady ? failures < READY_FAILURE_THRESHOLD : ok;
      if (nowReady === isReady || !alive()) continue;
      isReady = nowReady;
      for (const listener of readinessListeners) listener(isReady);
    }
  };

  try {
    record.sidecars = launch.startSidecars?.(record) ?? [];
  } catch (err) {
    appendError(launch.logFile, err);
  }
  let delayTimer: NodeJS.Timeout | undefined;
  if (launch.delayMs && launch.delayMs > 0) delayTimer = setTimeout(startMain, launch.delayMs);
  else startMain();

  return {
    ready,
    exited,
    logFile: launch.logFile,
    ...(launch.containerLogFiles ? { containerLogFiles: launch.containerLogFiles } : {}),
    async stop() {
      stopped = true;
      if (delayTimer) clearTimeout(delayTimer);
      await Promise.all([record.main?.stop(), ...record.sidecars.map((s) => s.stop())]);
      if (!record.main) settleExit(STOPPED_BEFORE_START);
      if (state.pods.get(key) === record) state.pods.delete(key);
    },
    onReadinessChange(listener) {
      readinessListeners.push(listener);
    },
  };
}

/** What runContainerProbes reports to the pod's life. */
interface ProbeLoop {
  alive: () => boolean;
  /** Readiness changed (the first true also resolves `ready`). */
  ready: (ready: boolean) => void;
}

/**
 * The kubelet's probe workers for one container start (pkg/kubelet/prober/worker.go): the
 * startup probe first, and only once it passed the liveness and readiness probes, each every
 * `periodSeconds`, each attempt failing after `timeoutSeconds`. Readiness: Ready after
 * `successThreshold` successes, not Ready after `failureThreshold` failures in a row. Liveness
 * (and a startup probe that fails `failureThreshold` times): the container is killed — SIGTERM,
 * SIGKILL after the pod's terminationGracePeriodSeconds — and the kubelet restarts it
 * (restartCount + 1). Changed on purpose for speed: `initialDelaySeconds` is not waited, and
 * until the container is first Ready, the startup and readiness probes are tried every 50 ms;
 * the periods, timeouts and thresholds that decide when a running pod turns not Ready or is
 * restarted are the pod's own.
 */
async function runContainerProbes(
  launch: PodLaunch,
  record: PodProcesses,
  main: SupervisedProcess,
  loop: ProbeLoop,
): Promise<void> {
  const { startupProbe, livenessProbe, readinessProbe } = launch.container ?? {};
  const attempt = (probe: ProbeSpec) => launch.containerProbe!(record, probe).catch(() => false);
  const period = (probe: ProbeSpec) => (probe.periodSeconds ?? 10) * 1000;
  // The kubelet's probe worker runs on a ticker: an attempt that takes its whole timeout does
  // not push the next one back.
  const lastTick = new Map<ProbeSpec, number>();
  const tick = async (probe: ProbeSpec) => {
    const next = (lastTick.get(probe) ?? Date.now()) + period(probe);
    await sleep(Math.max(0, next - Date.now()));
    lastTick.set(probe, next);
  };
  const kill = (why: string) => {
    if (!loop.alive()) return;
    appendFileSync(launch.logFile, `sandbox: ${why}; the container is killed and restarted\n`);
    const grace = Number(launch.pod.spec?.terminationGracePeriodSeconds ?? 30) * 1000;
    void main.stop(grace);
  };
  if (startupProbe) {
    const deadline = Date.now() + period(startupProbe) * (startupProbe.failureThreshold ?? 3);
    while (loop.alive() && !(await attempt(startupProbe))) {
      if (Date.now() >= deadline) return kill('startup probe failed');
      await sleep(PROBE_INTERVAL_MS);
    }
  }
  if (!loop.alive()) return;
  if (livenessProbe) void livenessWorker(livenessProbe);
  if (!readinessProbe) {
    loop.ready(true);
    return;
  }
  while (loop.alive() && !(await attempt(readinessProbe))) await sleep(PROBE_INTERVAL_MS);
  if (!loop.alive()) return;
  let isReady = true;
  loop.ready(true);
  let failures = 0;
  let successes = 0;
  while (loop.alive()) {
    await tick(readinessProbe);
    if (!loop.alive()) return;
    const ok = await attempt(readinessProbe);
    failures = ok ? 0 : failures + 1;
    successes = ok ? successes + 1 : 0;
    const nowReady: boolean = isReady
      ? failures < (readinessProbe.failureThreshold ?? 3)
      : successes >= (readinessProbe.successThreshold ?? 1);
    if (nowReady === isReady || !loop.alive()) continue;
    isReady = nowReady;
    loop.ready(isReady);
  }

  async function livenessWorker(probe: ProbeSpec): Promise<void> {
    let failures = 0;
    while (loop.alive()) {
      await tick(probe);
      if (!loop.alive()) return;
      failures = (await attempt(probe)) ? 0 : failures + 1;
      if (failures >= (probe.failureThreshold ?? 3)) return kill('liveness probe failed');
    }
  }
}

function declaresReadinessProbe(pod: KubeObject): boolean {
  // biome-ignore lint/suspicious/noExplicitAny: containers as the API stores them
  return (pod.spec?.containers ?? []).some((c: any) => !!c.readinessProbe);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function reportPodIP(cluster: ClusterAccess, namespace: string, name: string, ip: string): void {
  try {
    cluster.patchStatus(POD, namespace, name, { podIP: ip, podIPs: [{ ip }], hostIP: '127.0.0.1' });
  } catch {
    // The pod may already be gone again; its address is still known to the sandbox's proxies.
  }
}

function appendError(logFile: string, err: unknown): void {
  const message = err instanceof Error ? err.message : String(err);
  appendFileSync(logFile, `${message}\n`);
}
