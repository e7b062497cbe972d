// The sandbox's workload half: the PodRuntime that runs real processes for pods, and the plugins
// (networking, Prometheus, faults) that follow the API half's store. See README.md beside this.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ClusterAccess, PodRuntime, SandboxPlugin } from '../runtime.ts';
import { AddressPool } from './addresses.ts';
import { assertBinaries, assertMountNamespaces } from './binaries.ts';
import { FaultPlugin } from './faults.ts';
import { HostsFile } from './hosts.ts';
import { POD } from './kinds.ts';
import { NetworkPlugin } from './network.ts';
import { WorkloadRuntime } from './pod-runtime.ts';
import { PrometheusPlugin } from './prometheus.ts';
import { WorkloadState } from './state.ts';
import { Supervisor, sweepOrphans } from './supervisor.ts';

export interface WorkloadsOptions {
  /** sandbox/.run or a test's temp dir: logs/, data/, pids/, pods/, prometheus/ go under it. */
  runDir: string;
}

export interface Workloads {
  runtime: PodRuntime;
  plugins: SandboxPlugin[];
  /** PIDs of every process the workloads run now. */
  pids(): number[];
  /** Where the sandbox's Prometheus answers. */
  prometheusUrl(): string;
  /** The cluster DNS file processes of this namespace see as /etc/hosts. */
  hostsFile(namespace: string): string;
}

export async function createWorkloads(options: WorkloadsOptions): Promise<Workloads> {
  assertBinaries();
  assertMountNamespaces();
  // A sandbox that died without `down` may have left processes behind.
  sweepOrphans(options.runDir);
  const supervisor = new Supervisor(options.runDir);
  const addresses = AddressPool.acquire();
  const hosts = new HostsFile(join(options.runDir, 'dns'));
  const state = new WorkloadState(options.runDir, supervisor, addresses, hosts);
  const prometheus = new PrometheusPlugin(state);
  const plugins: SandboxPlugin[] = [
    new NetworkPlugin(state),
    prometheus,
    new FaultPlugin(state),
    {
      // Stops whatever a pod or plugin left running, then gives the network back.
      name: 'processes',
      async start() {},
      async stop() {
        await supervisor.stopAll();
        addresses.release();
      },
    },
  ];
  return {
    runtime: new WorkloadRuntime(state),
    plugins,
    pids: () => supervisor.pids,
    prometheusUrl: () => prometheus.url,
    hostsFile: (namespace) => hosts.pathFor(namespace),
  };
}

export interface WorkloadMeasurements {
  /** From `startedAt` until every non-Job pod in the store was Ready. */
  readyMs: number;
  /** Resident memory of this process plus every process the workloads run. */
  rssBytes: number;
  processes: number;
}

/**
 * For `npm run bench:sandbox`: waits until every Deployment and StatefulSet is rolled out and
 * every pod that is not a Job's is Ready (at least one workload must exist), then measures
 * the whole sandbox's memory. Targets: readyMs ≤ 8000, rssBytes ≤ 600 MB.
 */
export async function measureWorkloads(
  workloads: Workloads,
  cluster: ClusterAccess,
  startedAt: number,
  timeoutMs = 60_000,
): Promise<WorkloadMeasurements> {
  const deadline = startedAt + timeoutMs;
  while (!allPodsReady(cluster)) {
    if (Date.now() > deadline) throw new Error(`pods not all Ready within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
  const readyMs = Date.now() - startedAt;
  const pids = [process.pid, ...workloads.pids()];
  return {
    readyMs,
    rssBytes: pids.reduce((sum, pid) => sum + rssOf(pid), 0),
    processes: pids.length,
  };
}

const WORKLOAD_KINDS = [
  { group: 'apps', version: 'v1', kind: 'Deployment' },
  { group: 'apps', version: 'v1', kind: 'StatefulSet' },
];

/** Every Deployment and StatefulSet has all its replicas Ready, and so has every other pod. */
function allPodsReady(cluster: ClusterAccess): boolean {
  const workloads = WORKLOAD_KINDS.flatMap((kind) => cluster.list(kind));
  if (workloads.length === 0) return false;
  const rolledOut = workloads.every(
    (w) => (w.status?.readyReplicas ?? 0) === (w.spec?.replicas ?? 1),
  );
  return (
    rolledOut &&
    cluster
      .list(POD)
      .filter((pod) => !pod.metadata.ownerReferences?.some((o) => o.kind === 'Job'))
      .every((pod) =>
        // biome-ignore lint/suspicious/noExplicitAny: pod conditions as the API stores them
        (pod.status?.conditions ?? []).some((c: any) => c.type === 'Ready' && c.status === 'True'),
      )
  );
}

function rssOf(pid: number): number {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = /VmRSS:\s+(\d+)/.exec(status)?.[1];
    return kb ? Number(kb) * 1024 : 0;
  } catch {
    return 0;
  }
}
