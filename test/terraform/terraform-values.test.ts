// The chart values: values.yaml.tftpl rendered with the variables' defaults, exactly as
// templatefile() would (cross-checked against the real binary where one exists), parsed as YAML
// and held against the spec and the chart's own values file.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { parse as parseYaml } from 'yaml';
import type { ClusterAccess, KubeObject } from '../../sandbox/runtime.ts';
import { chartObjects } from '../../sandbox/tofu/chart.ts';
import { renderTemplate, templateVariableNames } from '../../sandbox/tofu/template.ts';
import { ingressAllowed } from '../../sandbox/workloads/network-policy.ts';
import { redisCli, startRedisServer } from '../helpers/redis-server.ts';
import { findTerraformBinary, needsBinary, renderWithCli } from '../helpers/terraform-cli.ts';
import { loadModule, REDIS_SHARED_DIR, REPO_ROOT, resolveValue } from '../helpers/terraform-hcl.ts';

type Values = Record<string, unknown>;

const TEMPLATE_PATH = join(REDIS_SHARED_DIR, 'values.yaml.tftpl');
const mod = await loadModule(REDIS_SHARED_DIR);
const chartVersion = resolveValue(mod, `\${var.chart_version}`) as string;
// The chart's own values file for the pinned version, kept beside the tests: a chart bump
// without a new reference file fails here instead of being checked against the old keys.
const REFERENCE_PATH = join(
  REPO_ROOT,
  'test',
  'fixtures',
  'terraform',
  `bitnami-redis-values-${chartVersion}.yaml`,
);

const templateVars = resolveValue(mod, mod.locals.values_template_vars) as Values;
const template = await readFile(TEMPLATE_PATH, 'utf8');
const rendered = renderTemplate(template, templateVars);
const values = parseYaml(rendered) as Values;
const reference = parseYaml(await readFile(REFERENCE_PATH, 'utf8')) as Values;
const bin = await findTerraformBinary();

function at(obj: unknown, path: string): unknown {
  let cur = obj;
  for (const key of path.split('.')) {
    if (!cur || typeof cur !== 'object') return undefined;
    cur = (cur as Values)[key];
  }
  return cur;
}

const isMap = (v: unknown): v is Values => !!v && typeof v === 'object' && !Array.isArray(v);

/**
 * Key paths of `ours` that the chart does not know. An empty map in the chart's file
 * (`resources: {}`, `additionalLabels: {}`) is free-form, so keys below it are accepted.
 */
function unknownKeyPaths(ours: Values, chart: Values, prefix = ''): string[] {
  const unknown: string[] = [];
  for (const [key, value] of Object.entries(ours)) {
    const path = prefix ? `${prefix}.${key}` : key;
    if (!(key in chart)) {
      unknown.push(path);
      continue;
    }
    const chartValue = chart[key];
    if (isMap(value)) {
      if (!isMap(chartValue)) unknown.push(`${path} (a map here, not in the chart)`);
      else if (Object.keys(chartValue).length > 0) {
        unknown.push(...unknownKeyPaths(value, chartValue, path));
      }
    }
  }
  return unknown;
}

t.test(
  'every name the template uses is in values_template_vars, and every var is used',
  async (t) => {
    t.same(templateVariableNames(template), Object.keys(templateVars).sort());
    for (const [name, expr] of Object.entries(mod.locals.values_template_vars as Values)) {
      t.match(String(expr), /^\$\{(var|local)\.[a-z_]+\}$/, `${name} is a plain reference`);
    }
  },
);

t.test(
  'the small renderer agrees byte for byte with the real templatefile()',
  needsBinary(bin),
  async (t) => {
    t.comment(`cross-checked with ${bin!.name} console templatefile()`);
    t.equal(await renderWithCli(bin!, TEMPLATE_PATH, templateVars), rendered);
  },
);

t.test('the rendered values parse as a YAML mapping', async (t) => {
  t.ok(isMap(values));
  t.notMatch(rendered, /\$\{|%\{/, 'no template sequence is left');
});

t.test(`every key the values set exists in the chart ${chartVersion} values.yaml`, async (t) => {
  t.same(unknownKeyPaths(values, reference), []);
  t.equal(at(reference, 'image.tag'), at(values, 'image.tag'), 'redis tag is the chart default');
  t.equal(at(reference, 'metrics.image.tag'), at(values, 'metrics.image.tag'));
});

t.test('the key-path check catches a key the chart does not have', async (t) => {
  t.same(unknownKeyPaths({ master: { persistance: { size: '1Gi' } } }, reference), [
    'master.persistance',
  ]);
  t.same(unknownKeyPaths({ auth: { enabled: { nested: 1 } } }, reference), [
    'auth.enabled (a map here, not in the chart)',
  ]);
  t.same(unknownKeyPaths({ commonLabels: { anything: 'x' } }, reference), []);
});

t.test('FR-002/FR-006: one master and one replica in replication mode, no Sentinel', async (t) => {
  t.equal(values.architecture, 'replication');
  t.equal(at(values, 'master.count'), 1);
  t.equal(at(values, 'replica.replicaCount'), 1, 'the chart default of 3 is overridden');
  t.equal(at(reference, 'replica.replicaCount'), 3);
  t.equal(at(values, 'sentinel.enabled'), false);
});

t.test('FR-007: persistence on local-path, 10Gi, for both roles', async (t) => {
  for (const role of ['master', 'replica']) {
    t.equal(at(values, `${role}.persistence.enabled`), true, `${role} persistence on`);
    t.equal(at(values, `${role}.persistence.storageClass`), 'local-path');
    t.equal(at(values, `${role}.persistence.size`), '10Gi', `${role} (chart default 8Gi)`);
    t.equal(at(values, `${role}.persistentVolumeClaimRetentionPolicy.whenDeleted`), 'Retain');
  }
  t.match(String(values.commonConfiguration), /^appendonly yes$/m, 'AOF on');
});

t.test(
  'FR-011/FR-012/FR-012a: the chart uses the existing Secret, not a password value',
  async (t) => {
    t.equal(at(values, 'auth.enabled'), true);
    t.equal(at(values, 'auth.existingSecret'), 'redis-credentials');
    t.equal(at(values, 'auth.existingSecretPasswordKey'), 'redis-password');
    t.equal(at(values, 'auth.password'), undefined, 'no password in the values');
    t.equal(at(values, 'auth.usePasswordFiles'), true, 'mounted as a file, not an env var');
  },
);

t.test('FR-013: requests and limits for every container the chart runs', async (t) => {
  for (const path of ['master.resources', 'replica.resources', 'metrics.resources']) {
    for (const kind of ['requests', 'limits']) {
      t.match(at(values, `${path}.${kind}`), { cpu: /^\d+m?$/, memory: /^\d+(Mi|Gi)$/ }, path);
    }
  }
  t.same(at(values, 'master.resources'), {
    requests: { cpu: '500m', memory: '1Gi' },
    limits: { cpu: '1000m', memory: '2Gi' },
  });
  t.same(at(values, 'replica.resources'), {
    requests: { cpu: '250m', memory: '1Gi' },
    limits: { cpu: '1000m', memory: '2Gi' },
  });
  t.same(at(values, 'metrics.resources'), {
    requests: { cpu: '50m', memory: '64Mi' },
    limits: { cpu: '100m', memory: '128Mi' },
  });
  // The only other containers the chart can add are off by default and stay off.
  for (const path of ['sentinel.enabled', 'volumePermissions.enabled', 'sysctl.enabled']) {
    t.equal(at(values, path) ?? at(reference, path), false, `${path} stays false`);
  }
});

t.test('FR-010: liveness, readiness and startup probes on both roles', async (t) => {
  for (const role of ['master', 'replica']) {
    for (const probe of ['livenessProbe', 'readinessProbe', 'startupProbe']) {
      t.equal(at(values, `${role}.${probe}.enabled`), true, `${role}.${probe}`);
    }
  }
});

t.test('FR-004/FR-005: every chart Service is ClusterIP, no NodePort anywhere', async (t) => {
  for (const path of ['master.service.type', 'replica.service.type', 'metrics.service.type']) {
    t.equal(at(values, path), 'ClusterIP', path);
  }
  const exposing: string[] = [];
  const walk = (node: unknown, path: string) => {
    if (!isMap(node)) return;
    for (const [key, value] of Object.entries(node)) {
      const here = `${path}${key}`;
      if (/nodePort|loadBalancer|externalIPs|hostPort|hostNetwork/i.test(key)) exposing.push(here);
      if (key === 'type' && typeof value === 'string' && /NodePort|LoadBalancer/.test(value)) {
        exposing.push(`${here}=${value}`);
      }
      walk(value, `${here}.`);
    }
  };
  walk(values, '');
  t.same(exposing, [], 'no NodePort, LoadBalancer, host port or external IP in the values');
  t.equal(at(values, 'networkPolicy.enabled'), true);
});

t.test(
  'SC-005: ServiceMonitor every 15s or less, in monitoring, with the selector label',
  async (t) => {
    t.equal(at(values, 'metrics.enabled'), true);
    t.equal(at(values, 'metrics.serviceMonitor.enabled'), true);
    t.equal(at(values, 'metrics.serviceMonitor.namespace'), 'monitoring');
    const interval = String(at(values, 'metrics.serviceMonitor.interval'));
    t.match(interval, /^\d+s$/);
    t.ok(Number.parseInt(interval, 10) <= 15, `interval ${interval} <= 15s (chart default 30s)`);
    t.same(at(values, 'metrics.serviceMonitor.additionalLabels'), {
      release: 'kube-prometheus-stack',
    });
    t.equal(at(values, 'metrics.prometheusRule.enabled'), false, 'rules come from alerts.yaml');
  },
);

t.test('images default to repositories that still pull (bitnamilegacy)', async (t) => {
  t.equal(at(values, 'image.repository'), 'bitnamilegacy/redis');
  t.equal(at(values, 'metrics.image.repository'), 'bitnamilegacy/redis-exporter');
  t.equal(at(values, 'global.security.allowInsecureImages'), true);
});

t.test(
  'dangerous commands are disabled on both roles, CONFIG stays for the exporter',
  async (t) => {
    for (const role of ['master', 'replica']) {
      t.same(at(values, `${role}.disableCommands`), ['FLUSHDB', 'FLUSHALL', 'SHUTDOWN']);
    }
    t.match(String(values.commonConfiguration), /^maxmemory-policy allkeys-lru$/m);
    t.match(String(values.commonConfiguration), /^maxmemory 1gb$/m);
  },
);

t.test('the README records the disabled-commands decision the values carry out', async (t) => {
  const readme = await readFile(join(REDIS_SHARED_DIR, 'README.md'), 'utf8');
  const decision = /^- \*\*Dangerous commands\.\*\*[\s\S]*?(?=^- \*\*|^#)/m.exec(readme)?.[0] ?? '';
  t.ok(decision, 'a "Dangerous commands" paragraph');
  const disabled = (at(values, 'master.disableCommands') as string[]).map((c) => `\`${c}\``);
  const list = `${disabled.slice(0, -1).join(', ')} and ${disabled.at(-1)}`;
  t.match(decision.replace(/\s+/g, ' '), `${list} are renamed away`, 'the disabled list, in full');
  t.match(decision, /\*\*`CONFIG` stays enabled\*\*/, 'CONFIG is kept, and said so');
  t.match(decision, /redis_exporter/, 'with the reason: the exporter reads CONFIG');
});

t.test('a real redis-server accepts commonConfiguration and applies it', async (t) => {
  const lines = String(values.commonConfiguration)
    .split('\n')
    .filter((l) => l.trim() && !l.startsWith('#'));
  const renames = (at(values, 'master.disableCommands') as string[]).map(
    (c) => `rename-command ${c} ""`,
  );
  const server = await startRedisServer(t, { config: [...lines, ...renames] });
  const get = async (key: string) =>
    (await redisCli(server, ['CONFIG', 'GET', key])).split('\n')[1];
  t.equal(await get('maxmemory-policy'), 'allkeys-lru');
  t.equal(await get('maxmemory'), String(1024 ** 3));
  t.equal(await get('appendonly'), 'yes');
  t.equal(await get('slowlog-log-slower-than'), '10000');
  t.equal(await get('save'), '900 1 300 10 60 10000');
  t.equal(await get('maxclients'), '10000');
  t.match(await redisCli(server, ['FLUSHALL']), /unknown command/i, 'FLUSHALL is gone');
});

t.test(
  'FR-005/SC-004: the NetworkPolicy admits the client namespaces, monitoring on 9121 and the private network',
  async (t) => {
    t.equal(at(values, 'networkPolicy.enabled'), true);
    t.equal(at(values, 'networkPolicy.allowExternal'), false, 'not every source on 6379');
    t.equal(at(values, 'networkPolicy.metrics.allowExternal'), false, 'not every source on 9121');
    t.same(at(values, 'networkPolicy.metrics.ingressNSMatchLabels'), {
      'kubernetes.io/metadata.name': 'monitoring',
    });
    t.same(at(values, 'networkPolicy.extraIngress'), [
      {
        ports: [{ port: 6379, protocol: 'TCP' }],
        from: [
          { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'beersystem' } } },
          { ipBlock: { cidr: '192.168.4.0/24' } },
        ],
      },
    ]);
    // The keys are the chart's (the key-path test above checks them against its values file);
    // what they render to is the chart's networkpolicy.yaml, as the sandbox's stand-in renders
    // it. Held against Kubernetes' rules for who may connect:
    const objects = chartObjects({
      name: 'redis-shared',
      namespace: 'redis',
      chartVersion,
      values,
    });
    const policy = objects.find((o) => o.kind === 'NetworkPolicy');
    t.ok(policy, 'the chart renders a NetworkPolicy');
    const namespaces: Record<string, KubeObject> = Object.fromEntries(
      ['redis', 'beersystem', 'monitoring', 'default'].map((ns) => [
        ns,
        {
          apiVersion: 'v1',
          kind: 'Namespace',
          metadata: { name: ns, labels: { 'kubernetes.io/metadata.name': ns } },
        },
      ]),
    );
    const cluster = {
      list: (kind: { kind: string }) => (kind.kind === 'NetworkPolicy' ? [policy] : []),
      get: (_kind: unknown, _ns: unknown, name: string) => namespaces[name],
    } as unknown as ClusterAccess;
    const master: KubeObject = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {
        name: 'redis-shared-master-0',
        namespace: 'redis',
        labels: {
          'app.kubernetes.io/name': 'redis',
          'app.kubernetes.io/instance': 'redis-shared',
          'app.kubernetes.io/component': 'master',
        },
      },
    };
    const pod = (namespace: string, labels: Record<string, string> = {}): { pod: KubeObject } => ({
      pod: { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p', namespace, labels } },
    });
    const allowed = (source: Parameters<typeof ingressAllowed>[1], port: number) =>
      ingressAllowed(cluster, source, master, port).allowed;
    t.ok(allowed(pod('beersystem'), 6379), 'a beersystem pod reaches Redis');
    t.notOk(allowed(pod('default'), 6379), 'a pod of another namespace does not');
    t.notOk(allowed(pod('monitoring'), 6379), 'monitoring does not reach Redis itself');
    t.ok(allowed(pod('monitoring'), 9121), 'monitoring scrapes the exporter');
    t.notOk(allowed(pod('beersystem'), 9121), 'clients do not reach the exporter');
    t.ok(
      allowed(
        pod('redis', {
          'app.kubernetes.io/name': 'redis',
          'app.kubernetes.io/instance': 'redis-shared',
        }),
        6379,
      ),
      'the replica reaches its master',
    );
    t.ok(allowed({ host: '192.168.4.20' }, 6379), 'the private network, through MetalLB');
    t.notOk(allowed({ host: '203.0.113.9' }, 6379), 'nothing else');
  },
);
