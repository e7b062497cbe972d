// The seam to the workload half (sandbox/runtime.ts): the API half calls the PodRuntime for every
// pod, follows `ready` and `exited`, stops pods it deletes, and starts plugins with a working
// ClusterAccess.
import t from 'tap';
import type {
  ClusterAccess,
  KindRef,
  KubeObject,
  PodRuntime,
  RunningPod,
  SandboxPlugin,
  StoreEvent,
} from '../../sandbox/runtime.ts';
import { startTestSandbox } from '../helpers/sandbox.ts';

const POD: KindRef = { group: '', version: 'v1', kind: 'Pod' };
const DEPLOYMENT: KindRef = { group: 'apps', version: 'v1', kind: 'Deployment' };
const ENDPOINTS: KindRef = { group: '', version: 'v1', kind: 'Endpoints' };

interface ControlledPod {
  pod: KubeObject;
  ready(): void;
  /** Reports a change of readiness after `ready`, as a runtime's periodic probe would. */
  setReady(ready: boolean): void;
  exit(code: number): void;
  stopped: boolean;
  /** When set, stop() waits for finishStop(); otherwise it stops at once. */
  holdStop: boolean;
  /** Resolves the pending stop() when the test allows it. */
  finishStop(): void;
  stopRequested: Promise<void>;
}

/** A PodRuntime whose pods become Ready, exit and stop only when the test says so. */
class ControlledRuntime implements PodRuntime {
  readonly pods: ControlledPod[] = [];
  private readonly waiters: Array<(p: ControlledPod) => void> = [];

  start(pod: KubeObject): RunningPod {
    let ready!: () => void;
    let exit!: (code: number) => void;
    let stopRequested!: () => void;
    let finishStop!: () => void;
    const readinessListeners: Array<(ready: boolean) => void> = [];
    const controlled: ControlledPod = {
      pod,
      ready: () => ready(),
      setReady: (value) => {
        for (const listener of readinessListeners) listener(value);
      },
      exit: (code) => exit(code),
      stopped: false,
      holdStop: false,
      finishStop: () => finishStop(),
      stopRequested: new Promise((r) => {
        stopRequested = r;
      }),
    };
    const handle: RunningPod = {
      ready: new Promise((r) => {
        ready = r;
      }),
      exited: new Promise((r) => {
        exit = r;
      }),
      logFile: '/dev/null',
      stop: () =>
        new Promise<void>((r) => {
          finishStop = () => {
            controlled.stopped = true;
            exit(143);
            r();
          };
          stopRequested();
          if (!controlled.holdStop) finishStop();
        }),
      onReadinessChange: (listener) => {
        readinessListeners.push(listener);
      },
    };
    this.pods.push(controlled);
    for (const w of this.waiters.splice(0)) w(controlled);
    return handle;
  }

  /** The next started pod whose name starts with the prefix (already started or still to come). */
  next(prefix: string, after = 0): Promise<ControlledPod> {
    const found = this.pods.slice(after).find((p) => p.pod.metadata.name.startsWith(prefix));
    if (found) return Promise.resolve(found);
    return new Promise((resolve) => {
      const wait = (p: ControlledPod) => {
        if (p.pod.metadata.name.startsWith(prefix)) resolve(p);
        else this.waiters.push(wait);
      };
      this.waiters.push(wait);
    });
  }
}

/** Resolves when the cluster holds an object for which the predicate is true. */
function until(
  cluster: ClusterAccess,
  kind: KindRef,
  ns: string,
  predicate: (objs: KubeObject[]) => boolean,
): Promise<void> {
  return new Promise((resolve) => {
    const check = () => {
      if (predicate(cluster.list(kind, ns))) {
        stop();
        resolve();
        return true;
      }
      return false;
    };
    const stop = cluster.subscribe(() => {
      check();
    });
    check();
  });
}

/**
 * A sandbox on a ControlledRuntime whose initial pods (beersystem, redis, Prometheus, MetalLB's
 * controller) are Ready.
 */
async function startControlled(t: Parameters<typeof startTestSandbox>[0]) {
  const runtime = new ControlledRuntime();
  const started = startTestSandbox(t, { runtime });
  // The sandbox settles once the initial pods are Ready: release them as they start.
  for (const prefix of ['beersystem-', 'redis-', 'prometheus-', 'controller-'])
    void runtime.next(prefix).then((p) => p.ready());
  return { runtime, fx: await started };
}

const ready = (pod: KubeObject) =>
  !!pod.status?.conditions?.some(
    (c: { type: string; status: string }) => c.type === 'Ready' && c.status === 'True',
  );

t.test(
  'a pod is Ready only when its runtime says so, restarts when it exits, and stops before it is gone',
  async (t) => {
    const { runtime, fx } = await startControlled(t);
    const { cluster } = fx.sandbox;
    const redis = await runtime.next('redis-');
    const name = redis.pod.metadata.name;
    t.equal(redis.pod.spec.nodeName !== undefined, true, 'the pod is scheduled before it starts');
    t.ok(ready(cluster.get(POD, 'beersystem', name)!));

    const before = runtime.pods.length;
    redis.exit(1);
    await until(cluster, POD, 'beersystem', (pods) =>
      pods.some(
        (p) => p.metadata.name === name && p.status?.containerStatuses?.[0]?.restartCount === 1,
      ),
    );
    const restarted = await runtime.next('redis-', before);
    t.equal(restarted.pod.metadata.name, name, 'the same pod is started again');
    t.notOk(ready(cluster.get(POD, 'beersystem', name)!), 'not Ready while it restarts');
    restarted.ready();
    await until(cluster, POD, 'beersystem', (pods) =>
      pods.some((p) => p.metadata.name === name && ready(p)),
    );

    restarted.holdStop = true;
    const deletion = fx.kubectlOk(['delete', 'pod', name, '-n', 'beersystem']);
    await restarted.stopRequested;
    const terminating = cluster.get(POD, 'beersystem', name);
    t.ok(
      terminating?.metadata.deletionTimestamp,
      'the pod is Terminating while its processes stop',
    );
    restarted.finishStop();
    await deletion;
    t.equal(cluster.get(POD, 'beersystem', name), undefined, 'gone once stopped');
    t.ok(restarted.stopped);
  },
);

t.test(
  'a Ready pod whose probe starts failing is not Ready and leaves the endpoints until it passes again',
  async (t) => {
    const { runtime, fx } = await startControlled(t);
    const { cluster } = fx.sandbox;
    const redis = await runtime.next('redis-');
    const name = redis.pod.metadata.name;
    const endpoints = () =>
      (cluster.get(ENDPOINTS, 'beersystem', 'redis')?.subsets ?? []) as Array<{
        addresses?: Array<{ targetRef: { name: string } }>;
        notReadyAddresses?: Array<{ targetRef: { name: string } }>;
      }>;
    const inEndpoints = (key: 'addresses' | 'notReadyAddresses') =>
      endpoints().some((s) => (s[key] ?? []).some((a) => a.targetRef.name === name));
    await until(cluster, ENDPOINTS, 'beersystem', () => inEndpoints('addresses'));

    redis.setReady(false);
    await until(cluster, ENDPOINTS, 'beersystem', () => inEndpoints('notReadyAddresses'));
    const pod = cluster.get(POD, 'beersystem', name)!;
    t.notOk(ready(pod), 'not Ready');
    t.equal(pod.status.phase, 'Running', 'still running');
    t.equal(pod.status.containerStatuses[0].restartCount, 0, 'not restarted');
    t.notOk(inEndpoints('addresses'), 'no longer a ready address of its Service');

    redis.setReady(true);
    await until(cluster, ENDPOINTS, 'beersystem', () => inEndpoints('addresses'));
    t.ok(ready(cluster.get(POD, 'beersystem', name)!), 'Ready again');
  },
);

t.test('a Job pod succeeds or fails by the exit code its runtime reports', async (t) => {
  const { runtime, fx } = await startControlled(t);
  const job = (name: string) =>
    JSON.stringify({
      apiVersion: 'batch/v1',
      kind: 'Job',
      metadata: { name, namespace: 'default' },
      spec: {
        backoffLimit: 0,
        template: {
          spec: { restartPolicy: 'Never', containers: [{ name: 'c', image: 'redis:7' }] },
        },
      },
    });
  await fx.kubectlOk(['apply', '--server-side', '-f', '-'], job('good'));
  (await runtime.next('good-')).exit(0);
  await fx.kubectlOk(['wait', '--for=condition=complete', 'job/good', '--timeout=30s']);
  await fx.kubectlOk(['apply', '--server-side', '-f', '-'], job('bad'));
  (await runtime.next('bad-')).exit(2);
  await fx.kubectlOk(['wait', '--for=condition=failed', 'job/bad', '--timeout=30s']);
  const phase = await fx.kubectlOk([
    'get',
    'pods',
    '-l',
    'job-name=bad',
    '-o',
    'jsonpath={.items[0].status.phase}',
  ]);
  t.equal(phase, 'Failed');
});

t.test(
  'plugins start with a ClusterAccess that reads, patches and follows the store, and get faults',
  async (t) => {
    const events: StoreEvent[] = [];
    const calls: string[] = [];
    let access: ClusterAccess | undefined;
    const plugin: SandboxPlugin = {
      name: 'recorder',
      async start(cluster) {
        access = cluster;
        calls.push('start');
        cluster.subscribe((e) => events.push(e));
      },
      async stop() {
        calls.push('stop');
      },
      async handleFault(args) {
        calls.push(`fault ${args.join(' ')}`);
        return args[0] === 'partition' ? `partitioned ${args[1]}` : undefined;
      },
    };
    const fx = await startTestSandbox(t, { plugins: [plugin] });
    t.same(calls, ['start']);
    const cluster = access!;
    t.equal(cluster.runDir, fx.dir);
    t.ok(
      events.some((e) => e.type === 'ADDED' && e.object.kind === 'Pod'),
      'the plugin follows pods as they are created',
    );
    const dep = cluster.get(DEPLOYMENT, 'beersystem', 'beersystem');
    t.equal(dep?.spec.replicas, 1);
    t.same(
      cluster.list(POD, 'beersystem', { app: 'redis' }).map((p) => p.metadata.labels?.app),
      ['redis'],
    );
    cluster.patch(DEPLOYMENT, 'beersystem', 'beersystem', {
      metadata: { annotations: { 'example.com/seen': 'yes' } },
    });
    const patched = await fx.kubectlOk([
      'get',
      'deployment',
      'beersystem',
      '-n',
      'beersystem',
      '-o',
      'jsonpath={.metadata.annotations.example\\.com/seen}',
    ]);
    t.equal(patched, 'yes');
    const pod = cluster.list(POD, 'beersystem', { app: 'redis' })[0]!;
    cluster.patchStatus(POD, 'beersystem', pod.metadata.name, { podIP: '127.9.9.9' });
    const ip = await fx.kubectlOk([
      'get',
      'pod',
      pod.metadata.name,
      '-n',
      'beersystem',
      '-o',
      'jsonpath={.status.podIP} {.status.phase}',
    ]);
    t.equal(ip, '127.9.9.9 Running', 'a status patch merges into what the kubelet wrote');

    const fault = (args: string[]) =>
      fetch(`${fx.sandbox.url}/sandbox/fault`, {
        method: 'POST',
        body: JSON.stringify({ args }),
      }).then(async (r) => ({ status: r.status, body: (await r.json()) as { message: string } }));
    t.same(await fault(['partition', 'beersystem/x']), {
      status: 200,
      body: { message: 'partitioned beersystem/x' },
    });
    t.same(await fault(['api-error', '2', '409']), {
      status: 200,
      body: { message: 'the next 2 mutating API request(s) will fail with 409' },
    });
    const healed = await fault(['heal']);
    t.equal(healed.status, 200);
    const after = await fx.kubectl([
      'annotate',
      'deployment',
      'beersystem',
      '-n',
      'beersystem',
      'a=b',
    ]);
    t.equal(after.code, 0, 'heal disarmed the API errors');
    t.match(calls, ['start', 'fault partition beersystem/x', 'fault heal']);
    await fx.sandbox.stop();
    t.equal(calls.at(-1), 'stop', 'stopping the sandbox stops its plugins');
  },
);

t.test(
  'a pod whose runtime cannot start it backs off and retries instead of being replaced',
  async (t) => {
    let attempts = 0;
    const fake = new ControlledRuntime();
    const runtime: PodRuntime = {
      start(pod, cluster) {
        if (pod.metadata.name.startsWith('flaky-')) {
          attempts++;
          if (attempts < 3) throw new Error('image flaky:1 is not available in the sandbox');
        }
        const handle = fake.start(pod);
        fake.pods.at(-1)!.ready();
        void cluster;
        return handle;
      },
    };
    const fx = await startTestSandbox(t, { runtime });
    await fx.kubectlOk(
      ['apply', '--server-side', '-f', '-'],
      JSON.stringify({
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        metadata: { name: 'flaky', namespace: 'default' },
        spec: {
          selector: { matchLabels: { app: 'flaky' } },
          template: {
            metadata: { labels: { app: 'flaky' } },
            spec: { containers: [{ name: 'c', image: 'flaky:1' }] },
          },
        },
      }),
    );
    await fx.kubectlOk(['rollout', 'status', 'deployment/flaky', '--timeout=30s']);
    const pods = await fx.kubectlOk([
      'get',
      'pods',
      '-l',
      'app=flaky',
      '-o',
      'jsonpath={range .items[*]}{.status.containerStatuses[0].restartCount}{" "}{end}',
    ]);
    t.equal(pods.trim(), '2', 'one pod, started on its third attempt');
    t.equal(attempts, 3);
    const events = await fx.kubectlOk([
      'get',
      'events',
      '--field-selector',
      'reason=Failed',
      '-o',
      'jsonpath={.items[*].message}',
    ]);
    t.match(events, 'image flaky:1 is not available in the sandbox');
  },
);

t.test('a foreground delete keeps the Deployment until its pods have stopped', async (t) => {
  const { runtime, fx } = await startControlled(t);
  const redis = await runtime.next('redis-');
  redis.holdStop = true;
  await fx.kubectlOk([
    'delete',
    'deployment',
    'redis',
    '-n',
    'beersystem',
    '--cascade=foreground',
    '--wait=false',
  ]);
  await redis.stopRequested;
  const held = JSON.parse(
    await fx.kubectlOk(['get', 'deployment', 'redis', '-n', 'beersystem', '-o', 'json']),
  );
  t.ok(held.metadata.deletionTimestamp, 'the Deployment is Terminating');
  t.same(held.metadata.finalizers, ['foregroundDeletion']);
  redis.finishStop();
  await fx.kubectlOk([
    'wait',
    '--for=delete',
    'deployment/redis',
    '-n',
    'beersystem',
    '--timeout=30s',
  ]);
  const rs = await fx.kubectlOk(['get', 'rs', '-n', 'beersystem', '-l', 'app=redis', '-o', 'name']);
  t.equal(rs.trim(), '', 'its ReplicaSet went first');
});
