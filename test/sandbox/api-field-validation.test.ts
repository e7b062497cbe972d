// Unknown fields, as the real API server treats them (server-side field validation): kubectl's
// Strict is refused with the server's message, a client's default Warn drops the field with a
// Warning header, custom resources are checked against their CRDs' published structural schemas,
// and every Job and custom resource the runbooks and modules build passes.
import t from 'tap';
import { benchmarkJobManifest } from '../../lib/cluster/benchmark-job.ts';
import { probeJobManifest, readLoopJobManifest } from '../../lib/cluster/probe-job.ts';
import { unknownFields } from '../../sandbox/api/field-validation.ts';
import { type ResourceType, resourceTypeFromCrd } from '../../sandbox/api/resources.ts';
import { initialState } from '../../sandbox/initial-state.ts';
import type { KubeObject } from '../../sandbox/runtime.ts';
import { chartObjects } from '../../sandbox/tofu/chart.ts';
import { loadRoot } from '../../sandbox/tofu/config.ts';
import { desiredState } from '../../sandbox/tofu/resources.ts';
import { startTestSandbox } from '../helpers/sandbox.ts';
import { ENVIRONMENT_DIR } from '../helpers/workloads-sandbox.ts';

function job(name: string, extra: Record<string, unknown> = {}): KubeObject {
  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: { name, namespace: 'default' },
    spec: {
      template: {
        spec: {
          restartPolicy: 'Never',
          containers: [{ name: 'main', image: 'busybox', command: ['true'], ...extra }],
        },
      },
    },
  } as KubeObject;
}

t.test('kubectl create with a misspelt field is refused, naming the field', async (t) => {
  const fx = await startTestSandbox(t);
  const r = await fx.kubectl(
    ['create', '-f', '-'],
    JSON.stringify(job('typo', { imagePullPolicyy: 'Always', comand: ['x'] })),
  );
  t.not(r.code, 0);
  t.match(
    r.stderr,
    /Job in version "v1" cannot be handled as a Job: strict decoding error: unknown field "spec\.template\.spec\.containers\[0\]\.comand", unknown field "spec\.template\.spec\.containers\[0\]\.imagePullPolicyy"/,
  );
  const get = await fx.kubectl(['get', 'job', 'typo', '-n', 'default']);
  t.not(get.code, 0, 'nothing was created');
});

t.test('kubectl apply --server-side with an unknown field is refused', async (t) => {
  const fx = await startTestSandbox(t);
  const r = await fx.kubectl(
    ['apply', '--server-side', '-f', '-'],
    JSON.stringify({ ...job('applied'), spec: { ...job('applied').spec, retries: 3 } }),
  );
  t.not(r.code, 0);
  t.match(r.stderr, /\.spec\.retries: field not declared in schema/);
});

t.test(
  'a client that asks for no validation (Warn) gets the object without the field, and a warning',
  async (t) => {
    const fx = await startTestSandbox(t);
    const url = `${fx.sandbox.url}/apis/batch/v1/namespaces/default/jobs`;
    const post = (query: string, name: string) =>
      fetch(`${url}${query}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(job(name, { colour: 'blue' })),
      });
    const warned = await post('', 'warned');
    t.equal(warned.status, 201);
    t.equal(
      warned.headers.get('warning'),
      '299 - "unknown field \\"spec.template.spec.containers[0].colour\\""',
    );
    const stored = JSON.parse(
      await fx.kubectlOk(['get', 'job', 'warned', '-n', 'default', '-o', 'json']),
    );
    t.notOk('colour' in stored.spec.template.spec.containers[0], 'the field was never stored');
    t.equal(stored.spec.template.spec.containers[0].image, 'busybox');

    const ignored = await post('?fieldValidation=Ignore', 'ignored');
    t.equal(ignored.status, 201);
    t.equal(ignored.headers.get('warning'), null, 'Ignore says nothing');
    const bad = await post('?fieldValidation=Loud', 'bad');
    t.equal(bad.status, 422);
    t.match(
      ((await bad.json()) as { message: string }).message,
      /^CreateOptions\.meta\.k8s\.io "" is invalid: fieldValidation: Unsupported value: "Loud": supported values: "", "Ignore", "Strict", "Warn"$/,
    );
  },
);

/** The sandbox's CRDs (the published ones) as the API registers them. */
function crdTypes(): Map<string, ResourceType> {
  const types = new Map<string, ResourceType>();
  for (const obj of initialState()) {
    if (obj.kind !== 'CustomResourceDefinition') continue;
    const type = resourceTypeFromCrd(obj);
    types.set(type.kind, type);
  }
  return types;
}

function serviceMonitor(name: string, endpoint: Record<string, unknown> = {}): KubeObject {
  return {
    apiVersion: 'monitoring.coreos.com/v1',
    kind: 'ServiceMonitor',
    metadata: { name, namespace: 'default', labels: { release: 'kube-prometheus-stack' } },
    spec: {
      selector: { matchLabels: { app: 'x' } },
      endpoints: [{ port: 'metrics', interval: '15s', ...endpoint }],
    },
  } as KubeObject;
}

t.test("a custom resource is checked against its CRD's structural schema", async (t) => {
  const types = crdTypes();
  t.same(
    await unknownFields(serviceMonitor('sm', { intervall: '5s' }), types.get('ServiceMonitor')),
    ['spec.endpoints[0].intervall'],
  );
  t.same(await unknownFields(serviceMonitor('sm'), types.get('ServiceMonitor')), []);
  const rule = {
    apiVersion: 'monitoring.coreos.com/v1',
    kind: 'PrometheusRule',
    metadata: { name: 'r', namespace: 'default', labelz: {} },
    spec: { groups: [{ name: 'g', rules: [{ alert: 'A', expr: 'up == 0', fro: '1m' }] }] },
  } as unknown as KubeObject;
  t.same(await unknownFields(rule, types.get('PrometheusRule')), [
    'metadata.labelz',
    'spec.groups[0].rules[0].fro',
  ]);
  const pool = {
    apiVersion: 'metallb.io/v1beta1',
    kind: 'IPAddressPool',
    metadata: { name: 'p', namespace: 'metallb-system' },
    spec: { addresses: ['10.0.0.1/32'], serviceAllocation: { namespace: ['redis'] } },
  } as KubeObject;
  t.same(await unknownFields(pool, types.get('IPAddressPool')), [
    'spec.serviceAllocation.namespace',
  ]);
  const l2 = {
    apiVersion: 'metallb.io/v1beta1',
    kind: 'L2Advertisement',
    metadata: { name: 'l2', namespace: 'metallb-system' },
    spec: { ipAddressPools: ['p'], interface: ['eth0'] },
  } as KubeObject;
  t.same(await unknownFields(l2, types.get('L2Advertisement')), ['spec.interface']);
  // The Prometheus kind keeps unknown fields (x-kubernetes-preserve-unknown-fields), as 01 only reads it.
  t.same(
    await unknownFields(
      {
        apiVersion: 'monitoring.coreos.com/v1',
        kind: 'Prometheus',
        metadata: { name: 'p' },
        spec: { x: 1 },
      } as KubeObject,
      types.get('Prometheus'),
    ),
    [],
  );
});

t.test(
  'kubectl refuses a ServiceMonitor with an unknown field; a Warn client gets it pruned',
  async (t) => {
    const fx = await startTestSandbox(t);
    const r = await fx.kubectl(
      ['create', '-f', '-'],
      JSON.stringify(serviceMonitor('typo', { intervall: '5s' })),
    );
    t.not(r.code, 0);
    t.match(
      r.stderr,
      /ServiceMonitor in version "v1" cannot be handled as a ServiceMonitor: strict decoding error: unknown field "spec\.endpoints\[0\]\.intervall"/,
    );
    const applied = await fx.kubectl(
      ['apply', '--server-side', '-f', '-'],
      JSON.stringify(serviceMonitor('applied', { intervall: '5s' })),
    );
    t.not(applied.code, 0);
    t.match(applied.stderr, /\.spec\.endpoints\[0\]\.intervall: field not declared in schema/);

    const res = await fetch(
      `${fx.sandbox.url}/apis/monitoring.coreos.com/v1/namespaces/default/servicemonitors`,
      {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(serviceMonitor('pruned', { intervall: '5s' })),
      },
    );
    t.equal(res.status, 201);
    t.equal(res.headers.get('warning'), '299 - "unknown field \\"spec.endpoints[0].intervall\\""');
    const stored = JSON.parse(
      await fx.kubectlOk(['get', 'servicemonitor', 'pruned', '-n', 'default', '-o', 'json']),
    );
    t.notOk('intervall' in stored.spec.endpoints[0], 'pruned, never stored');
    t.equal(stored.spec.endpoints[0].interval, '15s');
  },
);

t.test(
  "every custom resource the modules and the homelab create passes its CRD's schema",
  async (t) => {
    const types = crdTypes();
    const root = await loadRoot(ENVIRONMENT_DIR, [
      { kind: 'var', text: 'enable_beersystem_migration=true' },
    ]);
    const objects: KubeObject[] = [];
    for (const resource of desiredState(root).resources) {
      objects.push(...(resource.objects as unknown as KubeObject[]));
      if (resource.release)
        objects.push(...(chartObjects(resource.release) as unknown as KubeObject[]));
    }
    objects.push(...initialState());
    const custom = objects.filter(
      (o) => types.has(String(o.kind)) && String(o.apiVersion).includes('.'),
    );
    const kinds = new Set(custom.map((o) => o.kind));
    for (const kind of ['ServiceMonitor', 'PrometheusRule', 'IPAddressPool', 'L2Advertisement']) {
      t.ok(kinds.has(kind), `a ${kind} is among them`);
    }
    for (const obj of custom) {
      t.same(
        await unknownFields(obj, types.get(String(obj.kind))),
        [],
        `${obj.kind} ${obj.metadata.namespace}/${obj.metadata.name}`,
      );
    }
  },
);

t.test('every Job the runbooks build is one the API server accepts as it is', async (t) => {
  const common = {
    name: 'n',
    namespace: 'beersystem',
    image: 'bitnamilegacy/redis:8.2.1-debian-12-r0',
    secretName: 'redis-credentials',
    secretKey: 'redis-password',
    port: 6379,
  };
  const manifests = {
    probe: probeJobManifest({
      ...common,
      masterHost: 'redis-shared-master.redis.svc.cluster.local',
      replicaHost: 'redis-shared-replicas.redis.svc.cluster.local',
      probeKey: 'k',
      roundTrips: 10,
    }),
    'read loop': readLoopJobManifest({
      ...common,
      replicaHost: 'redis-shared-replicas-0.redis-shared-headless.redis.svc.cluster.local',
      markerKey: 'm',
      doneKey: 'd',
      maxSeconds: 60,
    }),
    benchmark: benchmarkJobManifest({
      ...common,
      host: 'redis-shared-master.redis.svc.cluster.local',
      requests: 100,
      clients: 1,
      pipeline: 1,
      tests: ['set'],
      labels: { 'app.kubernetes.io/managed-by': 'redis-shared-runbooks' },
      activeDeadlineSeconds: 60,
    }),
  };
  for (const [what, manifest] of Object.entries(manifests)) {
    t.same(await unknownFields(manifest as unknown as KubeObject), [], `${what} Job`);
  }
  t.same(await unknownFields(job('with-typo', { imagePullPolicyy: 'x' })), [
    'spec.template.spec.containers[0].imagePullPolicyy',
  ]);
});
