// The life of one pod's processes, whatever runs in it: an optional start delay (the back-off
// after `fault kill`), sidecars that start at once, a main process whose end is the pod's end,
// and a readiness probe polled until it passes.
import { appendFileSync } from 'node:fs';
import type { ClusterAccess, KubeObject, RunningPod } from '../runtime.ts';
import { POD } from './kinds.ts';
import type { PodProcesses, WorkloadState } from './state.ts';
import type { SupervisedProcess } from './supervisor.ts';

export interface PodLaunch {
  state: WorkloadState;
  pod: KubeObject;
  cluster: ClusterAccess;
  logFile: string;
  /** Milliseconds to wait before starting the main process (sidecars don't wait). */
  delayMs?: number;
  startSidecars?: (record: PodProcesses) => SupervisedProcess[];
  startMain: (record: PodProcesses) => SupervisedProcess;
  probe: (record: PodProcesses) => Promise<boolean>;
}

const PROBE_INTERVAL_MS = 50;
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
    void pollReadiness();
  };

  // A pod that ends before it is ready never becomes ready: `ready` stays pending.
  const pollReadiness = async () => {
    while (!stopped && record.main?.running) {
      if (await launch.probe(record).catch(() => false)) {
        if (!stopped && record.main?.running) markReady();
        return;
      }
      await new Promise((r) => setTimeout(r, PROBE_INTERVAL_MS));
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
    async stop() {
      stopped = true;
      if (delayTimer) clearTimeout(delayTimer);
      await Promise.all([record.main?.stop(), ...record.sidecars.map((s) => s.stop())]);
      if (!record.main) settleExit(STOPPED_BEFORE_START);
      if (state.pods.get(key) === record) state.pods.delete(key);
    },
  };
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
