// startSandbox: the API emulator, its controllers and the workload half's plugins, in one
// process, serving on a free loopback port with a kubeconfig written beside its journal.
import { mkdirSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { MIGRATION_ANNOTATION } from '../lib/names.ts';
import { createClusterAccess } from './api/cluster-access.ts';
import { ApiFaults } from './api/faults.ts';
import { type AdminHandler, createApiHandler } from './api/handler.ts';
import { Journal } from './api/journal.ts';
import { ProxyTargets } from './api/proxy-targets.ts';
import { ResourceRegistry, resourceTypeFromCrd } from './api/resources.ts';
import { Store } from './api/store.ts';
import { endAllWatches } from './api/watch.ts';
import { DeploymentController } from './controllers/deployments.ts';
import { EndpointsController } from './controllers/endpoints.ts';
import { eventRecorder } from './controllers/events.ts';
import { JobController } from './controllers/jobs.ts';
import { Kubelet } from './controllers/kubelet.ts';
import { LoadBalancerController } from './controllers/load-balancers.ts';
import { ServiceAccountController } from './controllers/namespaces.ts';
import { isPodActive, isPodReady } from './controllers/ownership.ts';
import { ReplicaSetController } from './controllers/replicasets.ts';
import { ServiceLbController } from './controllers/service-lb.ts';
import { StatefulSetController } from './controllers/statefulsets.ts';
import { VolumeBinder } from './controllers/volumes.ts';
import type { Controller } from './controllers/workload-base.ts';
import { FakeRuntime } from './fake-runtime.ts';
import { initialState } from './initial-state.ts';
import { type SandboxNetwork, sandboxNetwork } from './lb-pool.ts';
import type { ClusterAccess, KubeObject, PodRuntime, SandboxPlugin } from './runtime.ts';

export interface SandboxOptions {
  /** Where the kubeconfig, journal.jsonl and logs/ go (sandbox/.run or a test's temp dir). */
  runDir: string;
  /** Runs the pods; the fake runtime when absent. */
  runtime?: PodRuntime;
  plugins?: SandboxPlugin[];
  /** The fake runtime's time from a pod's start to Ready. */
  podReadyDelayMs?: number;
  /** 0 or absent: a free port. */
  port?: number;
  /** Decides the fake runtime's exit code of a Job's pod (the pod annotation is the fallback). */
  jobExitCode?: (pod: KubeObject) => number | undefined;
  /** How many changes a watch can resume across before it gets 410 Expired (default 5000). */
  watchHistory?: number;
  /** Start with the homelab's objects (default true). */
  initialState?: boolean;
  /** The LoadBalancer pool (the workloads' own; slot 0 when absent, for fake workloads). */
  network?: SandboxNetwork;
  /** The MetalLB release the sandbox behaves as (default the current one, METALLB_VERSION). */
  metallbVersion?: string;
  /** Run K3s's ServiceLB beside MetalLB, as a K3s started without `--disable servicelb`. */
  serviceLb?: boolean;
}

export interface Sandbox {
  url: string;
  kubeconfigPath: string;
  journalPath: string;
  cluster: ClusterAccess;
  /** Its LoadBalancer pool and the runbook settings that point at it. */
  network: SandboxNetwork;
  /** Objects in the store (the benchmark reads it). */
  objectCount(): number;
  /** Resolves once every workload's pods are Ready and every LoadBalancer has its answer. */
  settled(timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

export const KUBE_CONTEXT = 'sandbox';

export function kubeconfigYaml(url: string): string {
  return [
    'apiVersion: v1',
    'kind: Config',
    'clusters:',
    `- name: ${KUBE_CONTEXT}`,
    '  cluster:',
    `    server: ${url}`,
    '    insecure-skip-tls-verify: true',
    'contexts:',
    `- name: ${KUBE_CONTEXT}`,
    '  context:',
    `    cluster: ${KUBE_CONTEXT}`,
    `    user: ${KUBE_CONTEXT}`,
    '    namespace: default',
    `current-context: ${KUBE_CONTEXT}`,
    'users:',
    `- name: ${KUBE_CONTEXT}`,
    '  user:',
    // The emulator checks no credentials; client-node just wants some.
    '    token: sandbox-token-not-a-secret',
    '',
  ].join('\n');
}

/** `24h`, `90m`, `2d`, `30s` in milliseconds. */
export function parseDuration(text: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/.exec(text.trim());
  if (!m) throw new Error(`"${text}" is not a duration: use e.g. 24h, 90m, 2d`);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] as 'ms'];
  return Number(m[1]) * unit;
}

export async function startSandbox(options: SandboxOptions): Promise<Sandbox> {
  const runDir = options.runDir;
  const network = options.network ?? sandboxNetwork(0);
  mkdirSync(join(runDir, 'logs'), { recursive: true });
  const registry = new ResourceRegistry();
  const store = new Store(registry, options.watchHistory ?? 5000);
  const crdType = registry.byKind({
    group: 'apiextensions.k8s.io',
    kind: 'CustomResourceDefinition',
  })!;
  // CRDs register their kinds synchronously, so a custom resource created right after its CRD works.
  store.subscribe((change) => {
    if (change.resource !== crdType) return;
    const type = resourceTypeFromCrd(change.object);
    if (change.type === 'DELETED') {
      const served = registry.byResource(type.group, type.versions[0]!, type.plural);
      if (served) store.dropType(served);
      registry.remove(type.group, type.plural);
    } else {
      registry.add(type);
    }
  });
  if (options.initialState !== false) {
    for (const obj of initialState(network, { metallbVersion: options.metallbVersion })) {
      const type = registry.byObject(obj);
      if (!type) throw new Error(`sandbox: initial object of unknown kind ${obj.kind}`);
      // The homelab's objects were applied with `kubectl apply`, which owns their fields.
      store.create(type, obj, { manager: 'kubectl-client-side-apply' });
    }
  }

  const proxyTargets = new ProxyTargets();
  const cluster = createClusterAccess(store, proxyTargets, runDir);
  const faults = new ApiFaults();
  const journalPath = join(runDir, 'journal.jsonl');
  const journal = new Journal(journalPath);
  const runtime =
    options.runtime ??
    new FakeRuntime({
      logDir: join(runDir, 'logs', 'pods'),
      readyDelayMs: options.podReadyDelayMs ?? 50,
      ...(options.jobExitCode ? { exitCodeFor: options.jobExitCode } : {}),
    });
  const kubelet = new Kubelet({ store, runtime, cluster, record: eventRecorder(store, 'kubelet') });
  const ctx = { store, record: eventRecorder(store, 'controller-manager') };
  const controllers: Controller[] = [
    new ServiceAccountController(store),
    new DeploymentController(ctx),
    new ReplicaSetController(ctx),
    new StatefulSetController(ctx),
    new JobController(ctx),
    new VolumeBinder(store),
    new EndpointsController(store),
    new LoadBalancerController(store, eventRecorder(store, 'metallb-controller'), {
      ...(options.metallbVersion ? { version: options.metallbVersion } : {}),
    }),
    ...(options.serviceLb ? [new ServiceLbController(store)] : []),
  ];
  const plugins = options.plugins ?? [];
  const started: SandboxPlugin[] = [];
  try {
    for (const plugin of plugins) {
      await plugin.start(cluster);
      started.push(plugin);
    }
  } catch (err) {
    for (const plugin of started.reverse()) await plugin.stop().catch(() => undefined);
    throw err;
  }
  kubelet.start();
  for (const c of controllers) c.start();

  const deploymentType = registry.byKind({ group: 'apps', kind: 'Deployment' })!;
  const admin: AdminHandler = async (path, body) => {
    const input = (body ?? {}) as { args?: string[]; duration?: string };
    try {
      if (path === '/sandbox/fault')
        return { status: 200, body: { message: await fault(input.args ?? []) } };
      if (path === '/sandbox/age')
        return { status: 200, body: { message: age(input.duration ?? '') } };
      if (path === '/sandbox/status') {
        return {
          status: 200,
          body: { objects: store.count(), pendingApiErrors: faults.pending, pid: process.pid },
        };
      }
      return { status: 404, body: { message: `unknown sandbox admin call ${path}` } };
    } catch (err) {
      return { status: 400, body: { message: (err as Error).message } };
    }
  };

  async function fault(args: string[]): Promise<string> {
    if (args[0] === 'api-error') {
      const count = Number(args[1]);
      const code = Number(args[2] ?? 500);
      if (
        !Number.isInteger(count) ||
        count < 1 ||
        !Number.isInteger(code) ||
        code < 400 ||
        code > 599
      ) {
        throw new Error(
          'usage: fault api-error <count ≥ 1> <HTTP code 400–599>, e.g. fault api-error 2 500',
        );
      }
      faults.failNext(count, code);
      return `the next ${count} mutating API request(s) will fail with ${code}`;
    }
    if (args[0] === 'read-error' || args[0] === 'throttle') {
      const count = Number(args[1]);
      const value = Number(args[2] ?? (args[0] === 'throttle' ? 1 : 500));
      const valid =
        Number.isInteger(count) &&
        count >= 1 &&
        Number.isInteger(value) &&
        (args[0] === 'throttle' ? value >= 1 && value <= 600 : value >= 400 && value <= 599);
      if (!valid) {
        throw new Error(
          args[0] === 'throttle'
            ? 'usage: fault throttle <count ≥ 1> <Retry-After seconds 1–600>, e.g. fault throttle 3 2'
            : 'usage: fault read-error <count ≥ 1> <HTTP code 400–599>, e.g. fault read-error 2 500',
        );
      }
      if (args[0] === 'throttle') {
        faults.throttle(count, value);
        return `the next ${count} API request(s) will answer 429 with Retry-After: ${value}`;
      }
      faults.failReads(count, value);
      return `the next ${count} API read(s) will fail with ${value}`;
    }
    if (args[0] === 'drop-watches') {
      const ended = endAllWatches();
      return `${ended} open watch(es) ended; clients must list and watch again`;
    }
    if (args[0] === 'heal') {
      faults.heal();
      const notes: string[] = ['API faults cleared'];
      for (const plugin of plugins) {
        const note = await plugin.handleFault?.(['heal']);
        if (note) notes.push(note);
      }
      return notes.join('; ');
    }
    for (const plugin of plugins) {
      const note = await plugin.handleFault?.(args);
      if (note) return note;
    }
    if (plugins.length === 0 && (args[0] === 'kill' || args[0] === 'partition')) {
      throw new Error(
        `fault ${args[0]} acts on real pod processes, and this sandbox runs fake workloads: restart it with \`npm run sandbox -- down && npm run sandbox -- up\` (without --fake)`,
      );
    }
    throw new Error(
      `unknown fault "${args.join(' ')}": try api-error <count> <code>, heal, or a workload fault (see sandbox/README.md)`,
    );
  }

  function age(duration: string): string {
    const ms = parseDuration(duration);
    const dep = store.get(deploymentType, 'beersystem', 'beersystem');
    const recorded = dep?.metadata.annotations?.[MIGRATION_ANNOTATION];
    if (!dep || !recorded) {
      throw new Error(
        `there is no migration record yet (annotation ${MIGRATION_ANNOTATION} on deployment beersystem/beersystem): run the migration runbook first`,
      );
    }
    const at = Date.parse(recorded);
    if (Number.isNaN(at))
      throw new Error(`the migration record "${recorded}" is not an ISO timestamp`);
    const moved = new Date(at - ms).toISOString();
    dep.metadata.annotations = { ...dep.metadata.annotations, [MIGRATION_ANNOTATION]: moved };
    store.update(deploymentType, dep);
    return `migration record moved from ${recorded} to ${moved}`;
  }

  const handler = createApiHandler({ store, logs: kubelet, proxyTargets, journal, faults, admin });
  const server: Server = createServer((req, res) => {
    handler(req, res).catch((err) => {
      console.error(`sandbox: request failed: ${(err as Error).stack}`);
      if (!res.headersSent) res.writeHead(500);
      res.end();
    });
  });
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => resolve());
  });
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const kubeconfigPath = join(runDir, 'kubeconfig');
  writeFileSync(kubeconfigPath, kubeconfigYaml(url));

  let stopping: Promise<void> | undefined;
  return {
    url,
    kubeconfigPath,
    journalPath,
    cluster,
    network,
    objectCount: () => store.count(),
    settled: (timeoutMs = 60_000) => settled(store, timeoutMs),
    stop() {
      stopping ??= (async () => {
        endAllWatches();
        server.closeAllConnections();
        await new Promise<void>((resolve) => server.close(() => resolve()));
        for (const c of controllers) c.stop();
        await kubelet.stop();
        for (const plugin of [...plugins].reverse()) {
          await plugin
            .stop()
            .catch((err) =>
              console.error(
                `sandbox: plugin ${plugin.name} did not stop cleanly: ${(err as Error).message}`,
              ),
            );
        }
        store.close();
      })();
      return stopping;
    },
  };
}

function settled(store: Store, timeoutMs: number): Promise<void> {
  const kinds = ['Deployment', 'StatefulSet'].map(
    (k) => store.registry.byKind({ group: 'apps', kind: k })!,
  );
  const podType = store.registry.byKind({ group: '', kind: 'Pod' })!;
  const serviceType = store.registry.byKind({ group: '', kind: 'Service' })!;
  const pending = (): string[] => {
    const waiting: string[] = [];
    for (const type of kinds) {
      for (const w of store.list(type)) {
        if (
          (w.status?.readyReplicas ?? 0) !== w.spec?.replicas ||
          w.status?.observedGeneration !== w.metadata.generation
        ) {
          waiting.push(`${type.kind.toLowerCase()}/${w.metadata.namespace}/${w.metadata.name}`);
        }
      }
    }
    for (const pod of store.list(podType)) {
      if (isPodActive(pod) && !isPodReady(pod) && pod.spec?.restartPolicy === 'Always') {
        waiting.push(`pod/${pod.metadata.namespace}/${pod.metadata.name}`);
      }
    }
    for (const svc of store.list(serviceType)) {
      if (svc.spec?.type === 'LoadBalancer' && !svc.status?.loadBalancer?.ingress) {
        waiting.push(`service/${svc.metadata.namespace}/${svc.metadata.name}`);
      }
    }
    return waiting;
  };
  return new Promise((resolve, reject) => {
    let unsubscribe: () => void = () => undefined;
    const timer = setTimeout(() => {
      unsubscribe();
      reject(
        new Error(
          `sandbox: not ready after ${timeoutMs} ms, still waiting for ${pending().join(', ')}`,
        ),
      );
    }, timeoutMs);
    let queued = false;
    const check = () => {
      queued = false;
      if (pending().length > 0) return;
      clearTimeout(timer);
      unsubscribe();
      resolve();
    };
    unsubscribe = store.subscribe(() => {
      if (!queued) {
        queued = true;
        setImmediate(check);
      }
    });
    check();
  });
}
