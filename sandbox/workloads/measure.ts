// Measurements for `npm run bench:sandbox`: every workload Ready within 8 s of
// `up`, the whole sandbox (emulator plus every process it runs) within 600 MB of memory.
import { readdirSync, readFileSync } from 'node:fs';
import type { ClusterAccess } from '../runtime.ts';
import { POD } from './kinds.ts';

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
  workloads: { pids(): number[] },
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

/**
 * Resident memory of a process and all its descendants, e.g. the sandbox daemon started by
 * `npm run sandbox -- up` (its pid is in `up --json`) with every workload process under it.
 */
export function processTreeRssBytes(rootPid: number): number {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    const pid = Number(entry);
    if (!Number.isInteger(pid)) continue;
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const parent = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      children.set(parent, [...(children.get(parent) ?? []), pid]);
    } catch {
      // Ended while we looked.
    }
  }
  const tree: number[] = [];
  const visit = (pid: number) => {
    tree.push(pid);
    for (const child of children.get(pid) ?? []) visit(child);
  };
  visit(rootPid);
  return sumRss(tree);
}

function sumRss(pids: number[]): number {
  return pids.reduce((sum, pid) => sum + rssOf(pid), 0);
}
