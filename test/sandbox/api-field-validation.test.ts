// Unknown fields, as the real API server treats them (server-side field validation): kubectl's
// Strict is refused with the server's message, a client's default Warn drops the field with a
// Warning header, custom resources are not checked, and every Job the runbooks build passes.
import t from 'tap';
import { benchmarkJobManifest } from '../../lib/cluster/benchmark-job.ts';
import { probeJobManifest, readLoopJobManifest } from '../../lib/cluster/probe-job.ts';
import { unknownFields } from '../../sandbox/api/field-validation.ts';
import type { KubeObject } from '../../sandbox/runtime.ts';
import { startTestSandbox } from '../helpers/sandbox.ts';

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

t.test('custom resources have no schema here and are not checked', async (t) => {
  t.equal(
    await unknownFields({
      apiVersion: 'monitoring.coreos.com/v1',
      kind: 'ServiceMonitor',
      metadata: { name: 'x' },
      spec: { anything: true },
    } as KubeObject),
    undefined,
  );
});

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
