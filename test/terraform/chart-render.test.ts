// The sandbox's render of the Bitnami chart against what real helm renders for the module's
// values: test/fixtures/terraform/bitnami-redis-23.1.1-rendered.yaml is `helm template` of
// bitnami/redis 23.1.1 (helm v3.17.1) with values.yaml.tftpl rendered from the module's defaults
// (its header says how). Where the runbooks, the drills or the sandbox's kubelet read the render
// (how the replica finds its master, password files, probes, Services, securityContext, PDBs,
// affinity, the checksum annotations that roll the pods), the two must agree.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { parseAllDocuments, parse as parseYaml } from 'yaml';
import { chartObjects } from '../../sandbox/tofu/chart.ts';
import type { Manifest } from '../../sandbox/tofu/kube-client.ts';
import { renderTemplate } from '../../sandbox/tofu/template.ts';
import { loadModule, REDIS_SHARED_DIR, REPO_ROOT, resolveValue } from '../helpers/terraform-hcl.ts';

// biome-ignore lint/suspicious/noExplicitAny: manifests as YAML
type Any = any;

const mod = await loadModule(REDIS_SHARED_DIR);
const chartVersion = resolveValue(mod, `\${var.chart_version}`) as string;
const templateVars = resolveValue(mod, mod.locals.values_template_vars) as Record<string, unknown>;
const moduleValues = parseYaml(
  renderTemplate(await readFile(join(REDIS_SHARED_DIR, 'values.yaml.tftpl'), 'utf8'), templateVars),
) as Any;
const fixture = parseAllDocuments(
  await readFile(
    join(REPO_ROOT, 'test', 'fixtures', 'terraform', `bitnami-redis-${chartVersion}-rendered.yaml`),
    'utf8',
  ),
  // Helm's YAML is 1.1: `defaultMode: 0755` is octal.
  { version: '1.1' },
)
  .map((d) => dropNulls(d.toJS()))
  .filter(Boolean) as Manifest[];

/** The values the fixture was rendered from: the module's, without the keys set after it. */
function fixtureValues(): Any {
  const values = structuredClone(moduleValues);
  for (const key of ['customLivenessProbe', 'customReadinessProbe', 'affinity'])
    delete values.replica[key];
  return values;
}

/** What the API server keeps of a YAML null: nothing. */
function dropNulls(value: Any): Any {
  if (Array.isArray(value)) return value.map(dropNulls);
  if (value && typeof value === 'object')
    return Object.fromEntries(
      Object.entries(value)
        .filter(([, v]) => v !== null)
        .map(([k, v]) => [k, dropNulls(v)]),
    );
  return value;
}

const find = (objects: Manifest[], kind: string, name: string): Any =>
  objects.find((o) => o.kind === kind && o.metadata.name === name);

const render = (values: Any) =>
  chartObjects({ name: 'redis-shared', namespace: 'redis', chartVersion, values }).map(
    dropNulls,
  ) as Manifest[];

t.test(
  'the render matches the real chart where the runbooks and the sandbox read it',
  async (t) => {
    const ours = render(fixtureValues());
    for (const set of ['redis-shared-master', 'redis-shared-replicas']) {
      const real = find(fixture, 'StatefulSet', set);
      const mine = find(ours, 'StatefulSet', set);
      t.ok(mine, `${set} is rendered`);
      const pod = (o: Any) => o.spec.template.spec;
      t.same(
        mine.spec.template.metadata.annotations,
        real.spec.template.metadata.annotations,
        `${set}: checksum and scrape annotations`,
      );
      t.same(pod(mine).securityContext, pod(real).securityContext, `${set}: pod securityContext`);
      t.same(pod(mine).affinity, pod(real).affinity, `${set}: affinity`);
      t.same(pod(mine).volumes, pod(real).volumes, `${set}: volumes`);
      t.equal(pod(mine).automountServiceAccountToken, false);
      for (const name of ['redis', 'metrics']) {
        const c = (o: Any) => pod(o).containers.find((x: Any) => x.name === name);
        for (const field of [
          'env',
          'command',
          'args',
          'securityContext',
          'startupProbe',
          'livenessProbe',
          'readinessProbe',
          'volumeMounts',
          'ports',
        ]) {
          t.same(c(mine)[field], c(real)[field], `${set}/${name}: ${field}`);
        }
      }
      t.same(mine.spec.volumeClaimTemplates[0].spec, real.spec.volumeClaimTemplates[0].spec);
      t.same(
        mine.spec.persistentVolumeClaimRetentionPolicy,
        real.spec.persistentVolumeClaimRetentionPolicy,
      );
    }
    const replicaEnv = find(ours, 'StatefulSet', 'redis-shared-replicas').spec.template.spec
      .containers[0].env;
    t.same(
      replicaEnv.find((e: Any) => e.name === 'REDIS_MASTER_HOST').value,
      'redis-shared-master-0.redis-shared-headless.redis.svc.cluster.local',
      'the replica reaches master-0 by its headless name, not the master Service',
    );
    for (const svc of [
      'redis-shared-headless',
      'redis-shared-master',
      'redis-shared-replicas',
      'redis-shared-metrics',
    ]) {
      const { nodePort: _n, ...realPorts } = find(fixture, 'Service', svc).spec.ports[0];
      const mine = find(ours, 'Service', svc).spec;
      const real = find(fixture, 'Service', svc).spec;
      t.same(
        { ...mine, ports: [mine.ports[0]] },
        { ...real, ports: [realPorts] },
        `Service ${svc}`,
      );
    }
    t.notOk(
      find(ours, 'Service', 'redis-shared-headless').spec.publishNotReadyAddresses,
      'the headless Service does not publish not-ready pods without Sentinel',
    );
    for (const pdb of ['redis-shared-master', 'redis-shared-replicas'])
      t.same(
        find(ours, 'PodDisruptionBudget', pdb).spec,
        find(fixture, 'PodDisruptionBudget', pdb).spec,
      );
    for (const cm of ['redis-shared-configuration', 'redis-shared-health', 'redis-shared-scripts'])
      t.same(
        find(ours, 'ConfigMap', cm).data,
        find(fixture, 'ConfigMap', cm).data,
        `ConfigMap ${cm}`,
      );
    t.same(
      find(ours, 'ServiceMonitor', 'redis-shared').spec,
      find(fixture, 'ServiceMonitor', 'redis-shared').spec,
    );
  },
);

t.test(
  'a values change that alters the configuration changes the pods checksum/configmap',
  async (t) => {
    const before = render(fixtureValues());
    const changed = fixtureValues();
    changed.commonConfiguration = `${changed.commonConfiguration}\nmaxmemory-samples 10`;
    const after = render(changed);
    for (const set of ['redis-shared-master', 'redis-shared-replicas']) {
      const annotations = (objects: Manifest[]) =>
        find(objects, 'StatefulSet', set).spec.template.metadata.annotations;
      t.not(
        annotations(after)['checksum/configmap'],
        annotations(before)['checksum/configmap'],
        set,
      );
      t.equal(annotations(after)['checksum/scripts'], annotations(before)['checksum/scripts']);
    }
  },
);

t.test(
  "the module: the replica's probes check only the local server; the master's stay the chart's",
  async (t) => {
    const chartKeys = parseYaml(
      await readFile(
        join(
          REPO_ROOT,
          'test',
          'fixtures',
          'terraform',
          `bitnami-redis-values-${chartVersion}.yaml`,
        ),
        'utf8',
      ),
    ) as Any;
    t.same(chartKeys.replica.customLivenessProbe, {}, 'the chart has replica.customLivenessProbe');
    t.same(chartKeys.replica.customReadinessProbe, {}, 'and replica.customReadinessProbe');
    const ours = render(moduleValues);
    const container = (set: string) =>
      find(ours, 'StatefulSet', set).spec.template.spec.containers.find(
        (c: Any) => c.name === 'redis',
      );
    const realMaster = find(fixture, 'StatefulSet', 'redis-shared-master').spec.template.spec
      .containers[0];
    const realReplica = find(fixture, 'StatefulSet', 'redis-shared-replicas').spec.template.spec
      .containers[0];
    for (const probe of ['livenessProbe', 'readinessProbe', 'startupProbe'])
      t.same(
        container('redis-shared-master')[probe],
        realMaster[probe],
        `master ${probe} as the chart's`,
      );
    const replica = container('redis-shared-replicas');
    t.same(replica.livenessProbe.exec.command, [
      '/bin/bash',
      '-ec',
      '/health/ping_liveness_local.sh 5',
    ]);
    t.same(replica.readinessProbe.exec.command, [
      '/bin/bash',
      '-ec',
      '/health/ping_readiness_local.sh 1',
    ]);
    for (const probe of ['livenessProbe', 'readinessProbe']) {
      const { exec: _mine, ...timings } = replica[probe];
      const { exec: _real, ...chartTimings } = realReplica[probe];
      t.same(timings, chartTimings, `replica ${probe}: the chart's timings`);
    }
  },
);

t.test('the module: master and replica on different nodes', async (t) => {
  const ours = render(moduleValues);
  const affinity = find(ours, 'StatefulSet', 'redis-shared-replicas').spec.template.spec.affinity;
  t.same(affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution, [
    {
      labelSelector: {
        matchLabels: {
          'app.kubernetes.io/instance': 'redis-shared',
          'app.kubernetes.io/name': 'redis',
          'app.kubernetes.io/component': 'master',
        },
      },
      topologyKey: 'kubernetes.io/hostname',
    },
  ]);
});
