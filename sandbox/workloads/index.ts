// The sandbox's workload half: the PodRuntime that runs real processes for pods, and the plugins
// (networking, Prometheus, faults) that follow the API half's store. See README.md beside this.
import { join } from 'node:path';
import { type SandboxNetwork, sandboxNetwork } from '../lb-pool.ts';
import type { PodRuntime, SandboxPlugin } from '../runtime.ts';
import { AddressPool } from './addresses.ts';
import { assertBinaries, assertMountNamespaces } from './binaries.ts';
import { FaultPlugin } from './faults.ts';
import { HostsFile } from './hosts.ts';
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
  /** The LoadBalancer pool of this sandbox's network: pass it to startSandbox. */
  network: SandboxNetwork;
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
  const addresses = await AddressPool.acquire();
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
    network: sandboxNetwork(addresses.octet),
    pids: () => supervisor.pids,
    prometheusUrl: () => prometheus.url,
    hostsFile: (namespace) => hosts.pathFor(namespace),
  };
}

export { measureWorkloads, processTreeRssBytes, type WorkloadMeasurements } from './measure.ts';
