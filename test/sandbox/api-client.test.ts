// @kubernetes/client-node against the emulator: the API calls lib/ makes, watches and informers,
// CRDs that register kinds, and the watch history's limits. The client is the one the runbooks
// load (lib/cluster/client-node.ts: the installed package, bundled; test/cluster/client-node.test.ts
// holds that it is the package).
import type * as K8s from '@kubernetes/client-node';
import t from 'tap';
import { loadClientNode } from '../../lib/cluster/client-node.ts';
import { type SandboxFixture, startTestSandbox } from '../helpers/sandbox.ts';

const k8s = await loadClientNode();

function clients(fx: SandboxFixture) {
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(fx.sandbox.kubeconfigPath);
  return {
    kc,
    core: kc.makeApiClient(k8s.CoreV1Api),
    apps: kc.makeApiClient(k8s.AppsV1Api),
    batch: kc.makeApiClient(k8s.BatchV1Api),
    coordination: kc.makeApiClient(k8s.CoordinationV1Api),
    custom: kc.makeApiClient(k8s.CustomObjectsApi),
    extensions: kc.makeApiClient(k8s.ApiextensionsV1Api),
  };
}

/** Resolves with the first watched object `done` accepts; the watch is the only wait. */
async function watchUntil<T>(
  kc: K8s.KubeConfig,
  path: string,
  query: Record<string, string>,
  done: (type: string, obj: T) => boolean,
): Promise<{ type: string; obj: T }> {
  const watch = new k8s.Watch(kc);
  let controller: AbortController | undefined;
  const result = await new Promise<{ type: string; obj: T }>((resolve, reject) => {
    watch
      .watch(
        path,
        query,
        (type, obj) => {
          if (done(type, obj as T)) resolve({ type, obj: obj as T });
        },
        (err) => reject(err ?? new Error('the watch ended before the condition was met')),
      )
      .then((c) => {
        controller = c;
      }, reject);
  });
  controller?.abort();
  return result;
}

t.test('read a Deployment, patch its scale, list pods by label and field selectors', async (t) => {
  const fx = await startTestSandbox(t);
  const { apps, core, kc } = clients(fx);
  const dep = await apps.readNamespacedDeployment({ name: 'beersystem', namespace: 'beersystem' });
  t.equal(dep.spec?.replicas, 1);
  t.equal(
    dep.spec?.template.spec?.containers[0]?.env?.find((e) => e.name === 'REDIS_PORT')?.value,
    '6379',
  );
  const scale = await apps.patchNamespacedDeploymentScale(
    { name: 'beersystem', namespace: 'beersystem', body: { spec: { replicas: 3 } } },
    k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
  );
  t.equal(scale.spec?.replicas, 3);
  t.equal(scale.status?.selector, 'app=beersystem');
  await watchUntil<K8s.V1Deployment>(
    kc,
    '/apis/apps/v1/namespaces/beersystem/deployments',
    { fieldSelector: 'metadata.name=beersystem' },
    (_type, d) => d.status?.readyReplicas === 3,
  );
  const pods = await core.listNamespacedPod({
    namespace: 'beersystem',
    labelSelector: 'app in (beersystem)',
  });
  t.equal(pods.items.length, 3);
  const running = await core.listPodForAllNamespaces({
    fieldSelector: 'status.phase=Running,metadata.namespace=beersystem',
    labelSelector: '!job-name',
  });
  t.equal(running.items.length, 4, 'three beersystem pods and the old redis');
  const all = await core.listPodForAllNamespaces();
  const limited = await core.listPodForAllNamespaces({ limit: 2 });
  t.equal(limited.items.length, 2);
  t.ok(limited.metadata?._continue, 'a limited list can be continued');
  const rest = await core.listPodForAllNamespaces({
    limit: 10,
    _continue: limited.metadata?._continue,
  });
  t.same(
    [...limited.items, ...rest.items].map((p) => p.metadata?.uid),
    all.items.map((p) => p.metadata?.uid),
    'the continuation has the rest, in order, once each',
  );
  t.notOk(rest.metadata?._continue, 'nothing is left after the rest');
  const jsonPatched = await apps.patchNamespacedDeploymentScale({
    name: 'beersystem',
    namespace: 'beersystem',
    body: [{ op: 'replace', path: '/spec/replicas', value: 1 }],
  });
  t.equal(jsonPatched.spec?.replicas, 1, 'client-node sends JSON patch by default, and it works');
});

t.test('create a Job and watch it complete', async (t) => {
  const fx = await startTestSandbox(t);
  const { batch, core, kc } = clients(fx);
  const job = await batch.createNamespacedJob({
    namespace: 'default',
    body: {
      metadata: { name: 'probe' },
      spec: {
        backoffLimit: 0,
        template: {
          spec: { restartPolicy: 'Never', containers: [{ name: 'probe', image: 'redis:7' }] },
        },
      },
    },
  });
  t.equal(
    job.spec?.selector?.matchLabels?.['batch.kubernetes.io/controller-uid'],
    job.metadata?.uid,
  );
  const { obj } = await watchUntil<K8s.V1Job>(
    kc,
    '/apis/batch/v1/namespaces/default/jobs',
    { fieldSelector: 'metadata.name=probe' },
    (_type, j) => !!j.status?.conditions?.some((c) => c.type === 'Complete' && c.status === 'True'),
  );
  t.equal(obj.status?.succeeded, 1);
  const pods = await core.listNamespacedPod({
    namespace: 'default',
    labelSelector: 'job-name=probe',
  });
  t.equal(pods.items[0]?.status?.phase, 'Succeeded');
  const log = await core.readNamespacedPodLog({
    name: pods.items[0]!.metadata!.name!,
    namespace: 'default',
    tailLines: 1,
  });
  t.match(log, /probe: redis:7 \(fake runtime\)/);
});

t.test('a Lease is created, renewed, and a stale renewal is a Conflict', async (t) => {
  const fx = await startTestSandbox(t);
  const { coordination } = clients(fx);
  const lease = await coordination.createNamespacedLease({
    namespace: 'default',
    body: {
      metadata: { name: 'runbook-lock' },
      spec: { holderIdentity: 'run-1', leaseDurationSeconds: 30, renewTime: new k8s.V1MicroTime() },
    },
  });
  const renewed = await coordination.replaceNamespacedLease({
    name: 'runbook-lock',
    namespace: 'default',
    body: { ...lease, spec: { ...lease.spec, renewTime: new k8s.V1MicroTime(Date.now() + 1000) } },
  });
  t.not(renewed.metadata?.resourceVersion, lease.metadata?.resourceVersion);
  const stale = await coordination
    .replaceNamespacedLease({
      name: 'runbook-lock',
      namespace: 'default',
      body: { ...lease, spec: { ...lease.spec, holderIdentity: 'run-2' } },
    })
    .then(
      () => undefined,
      (err: K8s.ApiException<string>) => err,
    );
  t.equal(stale?.code, 409);
  t.match(JSON.parse(stale!.body), { kind: 'Status', reason: 'Conflict', code: 409 });
  const current = await coordination.readNamespacedLease({
    name: 'runbook-lock',
    namespace: 'default',
  });
  t.equal(current.spec?.holderIdentity, 'run-1');
});

t.test('a created CRD registers its kind in discovery; deleting it removes the kind', async (t) => {
  const fx = await startTestSandbox(t);
  const { custom, extensions } = clients(fx);
  await extensions.createCustomResourceDefinition({
    body: {
      metadata: { name: 'widgets.example.com' },
      spec: {
        group: 'example.com',
        scope: 'Namespaced',
        names: { kind: 'Widget', plural: 'widgets', singular: 'widget', listKind: 'WidgetList' },
        versions: [
          {
            name: 'v1',
            served: true,
            storage: true,
            schema: {
              openAPIV3Schema: { type: 'object', x_kubernetes_preserve_unknown_fields: true },
            },
          },
        ],
      },
    },
  });
  const resources = await fetch(`${fx.sandbox.url}/apis/example.com/v1`).then((r) => r.json());
  t.match(resources, {
    kind: 'APIResourceList',
    groupVersion: 'example.com/v1',
    resources: [{ name: 'widgets', kind: 'Widget', namespaced: true }],
  });
  await custom.createNamespacedCustomObject({
    group: 'example.com',
    version: 'v1',
    namespace: 'default',
    plural: 'widgets',
    body: {
      apiVersion: 'example.com/v1',
      kind: 'Widget',
      metadata: { name: 'w1' },
      spec: { size: 3 },
    },
  });
  const listed = (await custom.listNamespacedCustomObject({
    group: 'example.com',
    version: 'v1',
    namespace: 'default',
    plural: 'widgets',
  })) as { items: Array<{ spec: { size: number } }> };
  t.same(
    listed.items.map((i) => i.spec.size),
    [3],
  );
  const viaKubectl = await fx.kubectlOk([
    'get',
    'widgets',
    '-o',
    'jsonpath={.items[0].metadata.name}',
  ]);
  t.equal(viaKubectl, 'w1', 'kubectl discovers the new kind too');
  const pool = (await custom.getNamespacedCustomObject({
    group: 'metallb.io',
    version: 'v1beta1',
    namespace: 'metallb-system',
    plural: 'ipaddresspools',
    name: 'eero-pool',
  })) as { spec: { addresses: string[] } };
  const { first, last } = fx.sandbox.network.pool;
  t.same(pool.spec.addresses, [`${first}-${last}`]);
  await extensions.deleteCustomResourceDefinition({ name: 'widgets.example.com' });
  const gone = await fetch(`${fx.sandbox.url}/apis/example.com/v1/namespaces/default/widgets`);
  t.equal(gone.status, 404);
});

t.test('a watch resumes from a list resourceVersion and replays what happened since', async (t) => {
  const fx = await startTestSandbox(t);
  const { core, kc } = clients(fx);
  const list = await core.listNamespacedConfigMap({ namespace: 'default' });
  await core.createNamespacedConfigMap({
    namespace: 'default',
    body: { metadata: { name: 'made-after-list' }, data: { a: '1' } },
  });
  await core.deleteNamespacedConfigMap({ name: 'made-after-list', namespace: 'default' });
  const seen: string[] = [];
  await watchUntil<K8s.V1ConfigMap>(
    kc,
    '/api/v1/namespaces/default/configmaps',
    { resourceVersion: list.metadata!.resourceVersion! },
    (type, cm) => {
      seen.push(`${type} ${cm.metadata?.name}`);
      return type === 'DELETED';
    },
  );
  t.same(seen, ['ADDED made-after-list', 'DELETED made-after-list']);
});

t.test('a watch from a resourceVersion older than the history gets 410 Expired', async (t) => {
  const fx = await startTestSandbox(t, { watchHistory: 20 });
  const { core } = clients(fx);
  const list = await core.listNamespacedConfigMap({ namespace: 'default' });
  for (let i = 0; i < 25; i++) {
    await core.createNamespacedConfigMap({
      namespace: 'default',
      body: { metadata: { name: `cm-${i}` } },
    });
  }
  const res = await fetch(
    `${fx.sandbox.url}/api/v1/namespaces/default/configmaps?watch=true&resourceVersion=${list.metadata!.resourceVersion}`,
  );
  const lines = (await res.text())
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  t.equal(lines.length, 1);
  t.match(lines[0], { type: 'ERROR', object: { kind: 'Status', code: 410, reason: 'Expired' } });
  const fresh = await core.listNamespacedConfigMap({ namespace: 'default' });
  const replay = await fetch(
    `${fx.sandbox.url}/api/v1/namespaces/default/configmaps?watch=true&timeoutSeconds=1&resourceVersion=${fresh.metadata!.resourceVersion}`,
  );
  t.equal(
    (await replay.text()).trim(),
    '',
    'a watch from a fresh list starts quietly and ends at its timeout',
  );
});

t.test('an informer lists, then follows adds and deletes', async (t) => {
  const fx = await startTestSandbox(t);
  const { core, kc } = clients(fx);
  const informer = k8s.makeInformer(kc, '/api/v1/namespaces/default/configmaps', () =>
    core.listNamespacedConfigMap({ namespace: 'default' }),
  );
  t.teardown(() => informer.stop());
  const deleted = new Promise<string>((resolve) =>
    informer.on('delete', (cm) => resolve(cm.metadata!.name!)),
  );
  const added = new Promise<string>((resolve) =>
    informer.on('add', (cm) => resolve(cm.metadata!.name!)),
  );
  await informer.start();
  await core.createNamespacedConfigMap({
    namespace: 'default',
    body: { metadata: { name: 'followed' } },
  });
  t.equal(await added, 'followed');
  await core.deleteNamespacedConfigMap({ name: 'followed', namespace: 'default' });
  t.equal(await deleted, 'followed');
});
