// The sandbox refuses what Kubernetes and MetalLB refuse, and the real kubectl 1.32 shows the
// same message it shows against a real cluster: API validation (Status 422 Invalid with causes),
// MetalLB's allocation rules (AllocationFailed events), server-side apply ownership
// (managedFields, 409 conflicts).
import t, { type Test } from 'tap';
import { type SandboxFixture, startTestSandbox } from '../helpers/sandbox.ts';

const deployment = (name: string, env: object[], replicas = 1) =>
  JSON.stringify({
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, namespace: 'default' },
    spec: {
      replicas,
      selector: { matchLabels: { app: 'v' } },
      template: {
        metadata: { labels: { app: 'v' } },
        spec: { containers: [{ name: 'main', image: 'busybox', env }] },
      },
    },
  });

const SUBDOMAIN_MESSAGE =
  "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";

async function refused(fx: SandboxFixture, t: Test, manifest: string, message: string) {
  const result = await fx.kubectl(['create', '-f', '-'], manifest);
  t.equal(result.code, 1, 'kubectl exits 1');
  t.equal(result.stderr.trim(), message);
}

t.test('API validation refuses with the API server status and message', async (t) => {
  const fx = await startTestSandbox(t);

  await t.test('an env var with both value and valueFrom', async (t) => {
    await refused(
      fx,
      t,
      deployment('both', [
        {
          name: 'REDIS_PASSWORD',
          value: 'x',
          valueFrom: { secretKeyRef: { name: 's', key: 'k' } },
        },
      ]),
      'The Deployment "both" is invalid: spec.template.spec.containers[0].env[0].valueFrom: Invalid value: "": may not be specified when `value` is not empty',
    );
    // The same through a merge patch onto the running beersystem (a literal over a reference).
    const patched = await fx.kubectl([
      'patch',
      'deployment',
      'beersystem',
      '-n',
      'beersystem',
      '--type=json',
      '-p',
      JSON.stringify([
        {
          op: 'add',
          path: '/spec/template/spec/containers/0/env/2/value',
          value: 'literal',
        },
      ]),
    ]);
    t.equal(patched.code, 1);
    t.match(
      patched.stderr,
      'The Deployment "beersystem" is invalid: spec.template.spec.containers[0].env[2].valueFrom: Invalid value: "": may not be specified when `value` is not empty',
    );
  });

  await t.test('a secretKeyRef without a name', async (t) => {
    await refused(
      fx,
      t,
      deployment('noname', [{ name: 'REDIS_PASSWORD', valueFrom: { secretKeyRef: { key: 'k' } } }]),
      `The Deployment "noname" is invalid: spec.template.spec.containers[0].env[0].valueFrom.secretKeyRef.name: Invalid value: "": ${SUBDOMAIN_MESSAGE}`,
    );
  });

  await t.test('a Service port without a port number', async (t) => {
    await refused(
      fx,
      t,
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'Service',
        metadata: { name: 'noport', namespace: 'default' },
        spec: { selector: { app: 'v' }, ports: [{ name: 'redis' }] },
      }),
      'The Service "noport" is invalid: \n* spec.ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive\n* spec.ports[0].targetPort: Invalid value: 0: must be between 1 and 65535, inclusive',
    );
  });

  await t.test('replicas below 0', async (t) => {
    await refused(
      fx,
      t,
      deployment('negative', [], -1),
      'The Deployment "negative" is invalid: spec.replicas: Invalid value: -1: must be greater than or equal to 0',
    );
    const patched = await fx.kubectl([
      'patch',
      'deployment',
      'beersystem',
      '-n',
      'beersystem',
      '--type=merge',
      '-p',
      '{"spec":{"replicas":-1}}',
    ]);
    t.equal(patched.code, 1);
    t.match(
      patched.stderr,
      'The Deployment "beersystem" is invalid: spec.replicas: Invalid value: -1: must be greater than or equal to 0',
    );
  });

  await t.test('names that are not DNS-1123', async (t) => {
    await refused(
      fx,
      t,
      deployment('Bad_Name', []),
      `The Deployment "Bad_Name" is invalid: metadata.name: Invalid value: "Bad_Name": ${SUBDOMAIN_MESSAGE}`,
    );
    const ns = await fx.kubectl(['create', 'namespace', 'Redis.Shared']);
    t.equal(ns.code, 1);
    t.equal(
      ns.stderr.trim(),
      `The Namespace "Redis.Shared" is invalid: metadata.name: Invalid value: "Redis.Shared": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')`,
    );
    await refused(
      fx,
      t,
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'Service',
        metadata: { name: '6379-redis', namespace: 'default' },
        spec: { ports: [{ port: 6379 }] },
      }),
      `The Service "6379-redis" is invalid: metadata.name: Invalid value: "6379-redis": a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')`,
    );
  });

  await t.test('the Status a client sees: 422, reason Invalid, one cause per field', async (t) => {
    const response = await fetch(`${fx.sandbox.url}/apis/apps/v1/namespaces/default/deployments`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: deployment('both', [
        { name: 'A', value: 'x', valueFrom: { secretKeyRef: { key: 'k' } } },
      ]),
    });
    t.equal(response.status, 422);
    const status = (await response.json()) as {
      reason: string;
      code: number;
      message: string;
      details: { kind: string; group: string; causes: object[] };
    };
    t.equal(status.reason, 'Invalid');
    t.equal(status.code, 422);
    t.match(status.message, /^Deployment\.apps "both" is invalid: \[spec\.template/);
    t.same(status.details.causes, [
      {
        reason: 'FieldValueInvalid',
        message: `Invalid value: "": ${SUBDOMAIN_MESSAGE}`,
        field: 'spec.template.spec.containers[0].env[0].valueFrom.secretKeyRef.name',
      },
      {
        reason: 'FieldValueInvalid',
        message: 'Invalid value: "": may not be specified when `value` is not empty',
        field: 'spec.template.spec.containers[0].env[0].valueFrom',
      },
    ]);
    t.equal(
      (await fx.kubectlOk(['get', 'deployments', '-n', 'default', '-o', 'name'])).trim(),
      '',
      'nothing refused was stored',
    );
  });

  await t.test('a StatefulSet spec change outside the mutable fields', async (t) => {
    const set = {
      apiVersion: 'apps/v1',
      kind: 'StatefulSet',
      metadata: { name: 'data', namespace: 'default' },
      spec: {
        replicas: 1,
        serviceName: 'data',
        selector: { matchLabels: { app: 'data' } },
        template: {
          metadata: { labels: { app: 'data' } },
          spec: { containers: [{ name: 'main', image: 'busybox' }] },
        },
        volumeClaimTemplates: [
          {
            metadata: { name: 'data' },
            spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '8Gi' } } },
          },
        ],
      },
    };
    await fx.kubectlOk(['create', '-f', '-'], JSON.stringify(set));
    const patch = (p: object) =>
      fx.kubectl([
        'patch',
        'statefulset',
        'data',
        '-n',
        'default',
        '--type=merge',
        '-p',
        JSON.stringify(p),
      ]);
    // What a storage_size change in the module does to the chart's StatefulSet.
    const resized = await fx.kubectl(
      ['replace', '-f', '-'],
      JSON.stringify({
        ...set,
        spec: {
          ...set.spec,
          volumeClaimTemplates: [
            {
              metadata: { name: 'data' },
              spec: {
                accessModes: ['ReadWriteOnce'],
                resources: { requests: { storage: '10Gi' } },
              },
            },
          ],
        },
      }),
    );
    t.equal(resized.code, 1);
    t.equal(
      resized.stderr.trim(),
      "The StatefulSet \"data\" is invalid: spec: Forbidden: updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden",
    );
    t.equal((await patch({ spec: { serviceName: 'other' } })).code, 1, 'serviceName is fixed');
    t.equal((await patch({ spec: { podManagementPolicy: 'Parallel' } })).code, 1);
    for (const allowed of [
      { replicas: 2 },
      { minReadySeconds: 5 },
      { updateStrategy: { type: 'OnDelete' } },
      { persistentVolumeClaimRetentionPolicy: { whenDeleted: 'Delete', whenScaled: 'Retain' } },
      { template: { metadata: { annotations: { 'checksum/config': 'x' } } } },
    ]) {
      const result = await patch({ spec: allowed });
      t.equal(result.code, 0, `${Object.keys(allowed)[0]} may change: ${result.stderr}`);
    }
  });
});

t.test('MetalLB refuses what its controller refuses, with an AllocationFailed event', async (t) => {
  const fx = await startTestSandbox(t);
  await fx.kubectlOk(
    ['apply', '--server-side', '-f', '-'],
    JSON.stringify({
      apiVersion: 'metallb.io/v1beta1',
      kind: 'IPAddressPool',
      metadata: { name: 'other-pool', namespace: 'metallb-system' },
      spec: { addresses: ['127.0.0.220-127.0.0.221'], autoAssign: false },
    }),
  );
  const lb = (name: string, annotations: Record<string, string>, spec: object = {}) =>
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name, namespace: 'default', annotations },
      spec: { type: 'LoadBalancer', ports: [{ port: 6379 }], ...spec },
    });
  const failure = async (name: string) => {
    await fx.kubectlOk([
      'wait',
      '--for=jsonpath={.reason}=AllocationFailed',
      'events',
      '--field-selector',
      `involvedObject.name=${name}`,
      '--timeout=30s',
    ]);
    const events = JSON.parse(
      await fx.kubectlOk([
        'get',
        'events',
        '--field-selector',
        `involvedObject.name=${name}`,
        '-o',
        'json',
      ]),
    ).items as Array<{ reason: string; message: string; type: string }>;
    const ingress = await fx.kubectlOk([
      'get',
      'service',
      name,
      '-o',
      'jsonpath={.status.loadBalancer.ingress}',
    ]);
    return { event: events.find((e) => e.reason === 'AllocationFailed'), ingress };
  };
  const cases: Array<[string, string, string]> = [
    [
      'both',
      lb(
        'both',
        { 'metallb.io/loadBalancerIPs': '127.0.0.203', 'metallb.io/address-pool': 'eero-pool' },
        { loadBalancerIP: '127.0.0.203' },
      ),
      'Failed to allocate IP for "default/both": service can not have both metallb.io/loadBalancerIPs and svc.Spec.LoadBalancerIP',
    ],
    [
      'deprecated-both',
      lb(
        'deprecated-both',
        { 'metallb.universe.tf/loadBalancerIPs': '127.0.0.204' },
        { loadBalancerIP: '127.0.0.204' },
      ),
      'Failed to allocate IP for "default/deprecated-both": service can not have both metallb.io/loadBalancerIPs and svc.Spec.LoadBalancerIP',
    ],
    [
      'outside',
      lb('outside', { 'metallb.io/loadBalancerIPs': '127.0.0.250' }),
      'Failed to allocate IP for "default/outside": ["127.0.0.250"] is not allowed in config',
    ],
    [
      'other-pool',
      lb('other-pool', {
        'metallb.io/loadBalancerIPs': '127.0.0.220',
        'metallb.io/address-pool': 'eero-pool',
      }),
      'Failed to allocate IP for "default/other-pool": requested loadBalancer IP(s) ["127.0.0.220"] is not compatible with requested address pool eero-pool',
    ],
    [
      'no-pool',
      lb('no-pool', { 'metallb.io/address-pool': 'nope' }),
      'Failed to allocate IP for "default/no-pool": unknown pool "nope"',
    ],
  ];
  for (const [name, manifest, message] of cases) {
    await fx.kubectlOk(['apply', '--server-side', '-f', '-'], manifest);
    const { event, ingress } = await failure(name);
    t.equal(event?.message, message, `${name}: MetalLB's reason`);
    t.equal(event?.type, 'Warning');
    t.equal(ingress, '', `${name}: no address`);
  }
  // The annotations alone, as services.tf writes them, get the address and the pool noted.
  await fx.kubectlOk(
    ['apply', '--server-side', '-f', '-'],
    lb('good', {
      'metallb.io/loadBalancerIPs': '127.0.0.203',
      'metallb.io/address-pool': 'eero-pool',
    }),
  );
  await fx.kubectlOk([
    'wait',
    '--for=jsonpath={.status.loadBalancer.ingress[0].ip}=127.0.0.203',
    'service/good',
    '--timeout=30s',
  ]);
  t.equal(
    await fx.kubectlOk([
      'get',
      'service',
      'good',
      '-o',
      'jsonpath={.metadata.annotations.metallb\\.io/ip-allocated-from-pool}',
    ]),
    'eero-pool',
  );
});

t.test('managedFields: who set a container env, by Update and by Apply', async (t) => {
  const fx = await startTestSandbox(t);
  const managers = async () => {
    const dep = JSON.parse(
      await fx.kubectlOk([
        'get',
        'deployment',
        'beersystem',
        '-n',
        'beersystem',
        '-o',
        'json',
        '--show-managed-fields',
      ]),
    );
    return Object.fromEntries(
      (
        dep.metadata.managedFields as Array<{
          manager: string;
          operation: string;
          fieldsV1: object;
        }>
      ).map((m) => [
        `${m.manager} ${m.operation}`,
        Object.keys(
          // biome-ignore lint/suspicious/noExplicitAny: fieldsV1 JSON
          (m.fieldsV1 as any)['f:spec']?.['f:template']?.['f:spec']?.['f:containers']?.[
            'k:{"name":"beersystem"}'
          ]?.['f:env'] ?? {},
        ),
      ]),
    );
  };
  t.same(
    (await managers())['kubectl-client-side-apply Update']?.sort(),
    ['k:{"name":"REDIS_HOST"}', 'k:{"name":"REDIS_PASSWORD"}', 'k:{"name":"REDIS_PORT"}'],
    'the homelab applied beersystem with kubectl apply, which owns its env',
  );
  const apply = JSON.stringify({
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'beersystem', namespace: 'beersystem' },
    spec: {
      template: {
        spec: {
          containers: [
            {
              name: 'beersystem',
              env: [{ name: 'REDIS_HOST', value: 'redis-shared-master.redis.svc.cluster.local' }],
            },
          ],
        },
      },
    },
  });
  const conflict = await fx.kubectl(
    ['apply', '--server-side', '--field-manager=Terraform', '-f', '-'],
    apply,
  );
  t.equal(conflict.code, 1);
  t.match(
    conflict.stderr,
    'error: Apply failed with 1 conflict: conflict with "kubectl-client-side-apply" using apps/v1: .spec.template.spec.containers[name="beersystem"].env[name="REDIS_HOST"].value',
  );
  await fx.kubectlOk(
    ['apply', '--server-side', '--force-conflicts', '--field-manager=Terraform', '-f', '-'],
    apply,
  );
  t.same((await managers())['Terraform Apply'], ['k:{"name":"REDIS_HOST"}']);
  const version = () =>
    fx.kubectlOk([
      'get',
      'deployment',
      'beersystem',
      '-n',
      'beersystem',
      '-o',
      'jsonpath={.metadata.resourceVersion}',
    ]);
  const before = await version();
  await fx.kubectlOk(
    ['apply', '--server-side', '--force-conflicts', '--field-manager=Terraform', '-f', '-'],
    apply,
  );
  t.equal(await version(), before, 'an apply that changes nothing changes no resourceVersion');
  await fx.kubectlOk([
    'set',
    'env',
    'deployment/beersystem',
    '-n',
    'beersystem',
    '-c',
    'beersystem',
    'REDIS_PORT=6380',
  ]);
  t.same((await managers())['kubectl-set Update'], ['k:{"name":"REDIS_PORT"}']);
});
