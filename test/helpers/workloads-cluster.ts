// A small in-memory cluster for the workload half's tests: a store with the ClusterAccess the
// API half gives the workloads, and a pod loop that does what its controllers do with a
// RunningPod (Ready when `ready` resolves, restart or finish when `exited` resolves). A restart
// the test did not announce is a crash it would otherwise never see: the fixture's close() fails
// with it.
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type {
  ClusterAccess,
  KindRef,
  KubeObject,
  RunningPod,
  StoreEvent,
} from '../../sandbox/runtime.ts';
import { createWorkloads, type Workloads } from '../../sandbox/workloads/index.ts';

export class MemoryCluster implements ClusterAccess {
  readonly runDir: string;
  readonly proxyTargets = new Map<string, string>();
  /** Restarts no test announced with `expectRestarts`, reported by the fixture's close(). */
  readonly unexpectedRestarts: string[] = [];
  private readonly objects = new Map<string, KubeObject>();
  private readonly listeners = new Set<(event: StoreEvent) => void>();
  private version = 1;

  constructor(runDir: string) {
    this.runDir = runDir;
  }

  get(kind: KindRef, namespace: string | undefined, name: string): KubeObject | undefined {
    const object = this.objects.get(key(kind.kind, namespace, name));
    return object ? structuredClone(object) : undefined;
  }

  list(kind: KindRef, namespace?: string, labelSelector?: Record<string, string>): KubeObject[] {
    return [...this.objects.values()]
      .filter((o) => o.kind === kind.kind)
      .filter((o) => namespace === undefined || o.metadata.namespace === namespace)
      .filter((o) =>
        Object.entries(labelSelector ?? {}).every(([k, v]) => o.metadata.labels?.[k] === v),
      )
      .map((o) => structuredClone(o));
  }

  patchStatus(kind: KindRef, namespace: string | undefined, name: string, status: object): void {
    this.patch(kind, namespace, name, { status });
  }

  patch(kind: KindRef, namespace: string | undefined, name: string, patch: object): void {
    const object = this.objects.get(key(kind.kind, namespace, name));
    if (!object) throw new Error(`${kind.kind} ${namespace}/${name} not found`);
    this.store(mergePatch(object, patch) as KubeObject, 'MODIFIED');
  }

  subscribe(listener: (event: StoreEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  setServiceProxyTarget(
    namespace: string,
    service: string,
    port: number,
    target: string | undefined,
  ) {
    const k = `${namespace}/${service}:${port}`;
    if (target) this.proxyTargets.set(k, target);
    else this.proxyTargets.delete(k);
  }

  apply(object: KubeObject): KubeObject {
    const exists = this.objects.has(
      key(object.kind, object.metadata.namespace, object.metadata.name),
    );
    const stored = {
      ...object,
      metadata: { uid: `uid-${this.version}`, ...object.metadata },
    };
    this.store(stored, exists ? 'MODIFIED' : 'ADDED');
    return stored;
  }

  delete(kind: string, namespace: string | undefined, name: string): void {
    const k = key(kind, namespace, name);
    const object = this.objects.get(k);
    if (!object) return;
    this.objects.delete(k);
    for (const listener of this.listeners)
      listener({ type: 'DELETED', object: structuredClone(object) });
  }

  private store(object: KubeObject, type: StoreEvent['type']): void {
    object.metadata.resourceVersion = String(++this.version);
    this.objects.set(key(object.kind, object.metadata.namespace, object.metadata.name), object);
    for (const listener of this.listeners) listener({ type, object: structuredClone(object) });
  }
}

function key(kind: string, namespace: string | undefined, name: string): string {
  return `${kind}/${namespace ?? ''}/${name}`;
}

function mergePatch(target: unknown, patch: unknown): unknown {
  if (!patch || typeof patch !== 'object' || Array.isArray(patch)) return patch;
  const out: Record<string, unknown> =
    target && typeof target === 'object' && !Array.isArray(target) ? { ...(target as object) } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

export interface PodLoop {
  /** The RunningPod of the pod's current incarnation. */
  current(): RunningPod;
  /** Resolves once the pod's current incarnation is Ready. */
  ready(): Promise<void>;
  restarts(): number;
  /** Announces `count` restarts (a fault the test injects); any other restart fails the test. */
  expectRestarts(count?: number): void;
  /** The exit code of a pod that does not restart (restartPolicy Never). */
  finished: Promise<number>;
  stop(): Promise<void>;
}

/** Creates the pod in the store and runs it as the API half's controllers would. */
export function runPod(cluster: MemoryCluster, workloads: Workloads, pod: KubeObject): PodLoop {
  const stored = cluster.apply(pod);
  const namespace = stored.metadata.namespace;
  const name = stored.metadata.name;
  const POD_KIND = { group: '', version: 'v1', kind: 'Pod' };
  let stopped = false;
  let restarts = 0;
  let expectedRestarts = 0;
  let running: RunningPod;
  let readyNow: Promise<void>;
  let finish: (code: number) => void = () => {};
  const finished = new Promise<number>((r) => {
    finish = r;
  });
  const launch = () => {
    const current = cluster.get(POD_KIND, namespace, name) ?? stored;
    running = workloads.runtime.start(current, cluster);
    readyNow = running.ready.then(() => {
      if (!stopped) {
        cluster.patchStatus(POD_KIND, namespace, name, {
          phase: 'Running',
          conditions: [{ type: 'Ready', status: 'True' }],
        });
      }
    });
    const self = running;
    running.exited.then(async (code) => {
      if (stopped || self !== running) return;
      cluster.patchStatus(POD_KIND, namespace, name, {
        conditions: [{ type: 'Ready', status: 'False' }],
      });
      if (stored.spec?.restartPolicy === 'Never') {
        finish(code);
        return;
      }
      await self.stop();
      restarts++;
      if (expectedRestarts > 0) expectedRestarts--;
      else {
        cluster.unexpectedRestarts.push(
          `pod ${namespace}/${name} exited with code ${code} and was restarted (restart ${restarts}) though no test expected it; its log ended with: ${logTail(cluster.runDir, namespace, name)}`,
        );
      }
      launch();
    });
  };
  launch();
  return {
    current: () => running,
    ready: () => readyNow,
    restarts: () => restarts,
    expectRestarts(count = 1) {
      expectedRestarts += count;
    },
    finished,
    async stop() {
      stopped = true;
      await running.stop();
      cluster.delete('Pod', namespace, name);
    },
  };
}

/** The last lines the pod's containers logged (the workload half's `logs/<ns>_<pod>*.log`). */
function logTail(runDir: string, namespace: string | undefined, name: string): string {
  const dir = join(runDir, 'logs');
  const prefix = `${namespace ?? 'default'}_${name}`;
  try {
    const lines = readdirSync(dir)
      .filter((file) => file === `${prefix}.log` || file.startsWith(`${prefix}_`))
      .flatMap((file) => readFileSync(join(dir, file), 'utf8').trimEnd().split('\n'));
    return lines.slice(-5).join(' | ') || '(empty)';
  } catch (err) {
    return `(no log: ${(err as Error).message})`;
  }
}

export interface WorkloadsFixture {
  cluster: MemoryCluster;
  workloads: Workloads;
  runDir: string;
  /** Stops pods, plugins and processes; removes the temp dir; fails on an unexpected restart. */
  close(): Promise<void>;
}

export async function startWorkloads(): Promise<WorkloadsFixture> {
  const runDir = mkdtempSync(join(tmpdir(), 'sandbox-workloads-'));
  const cluster = new MemoryCluster(runDir);
  let workloads: Workloads | undefined;
  try {
    workloads = await createWorkloads({ runDir });
    for (const plugin of workloads.plugins) await plugin.start(cluster);
  } catch (err) {
    // The caller's teardown only knows a fixture it got: a failed start cleans up here (the
    // last plugin stops every process and gives the loopback network back).
    for (const plugin of workloads?.plugins ?? []) await plugin.stop().catch(() => undefined);
    rmSync(runDir, { recursive: true, force: true });
    throw err;
  }
  return {
    cluster,
    workloads,
    runDir,
    async close() {
      for (const plugin of workloads.plugins) await plugin.stop();
      rmSync(runDir, { recursive: true, force: true });
      if (cluster.unexpectedRestarts.length > 0)
        throw new Error(cluster.unexpectedRestarts.join('\n'));
    },
  };
}

export function secret(namespace: string, name: string, data: Record<string, string>): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name, namespace },
    data: Object.fromEntries(
      Object.entries(data).map(([k, v]) => [k, Buffer.from(v).toString('base64')]),
    ),
  };
}

export function service(
  namespace: string,
  name: string,
  selector: Record<string, string> | undefined,
  ports: Array<{ name?: string; port: number; targetPort?: number | string }>,
  extra: { spec?: object; status?: object; labels?: Record<string, string> } = {},
): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace, labels: extra.labels },
    spec: {
      type: 'ClusterIP',
      selector,
      ports: ports.map((p) => ({ protocol: 'TCP', ...p })),
      ...extra.spec,
    },
    status: extra.status ?? {},
  };
}

/** Polls `check` until it returns a value, or fails after the deadline with `what`. */
export async function eventually<T>(
  what: string,
  check: () => Promise<T | undefined | false> | T | undefined | false,
  timeoutMs = 20_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await check();
      if (value !== undefined && value !== false) return value;
    } catch (err) {
      lastError = err;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(
    `timed out waiting for ${what}${lastError ? `: ${(lastError as Error).message}` : ''}`,
  );
}
