// 01's preflight judgements on given objects: the MetalLB pool and the LB address, namespace
// ownership, label and Prometheus selectors, nodes, CRDs, beersystem today, the module defaults.
import t from 'tap';
import {
  addressEntryContains,
  beersystemToday,
  judgeAddressFree,
  judgeAddressInCidr,
  judgeCrds,
  judgeNamespaceOwnership,
  judgeNodes,
  judgePoolContains,
  judgePrometheusSelects,
  MODULE_DEFAULTS,
  monitoringLabels,
  REQUIRED_CRDS,
  selectorMatches,
  serviceAddresses,
} from '../../lib/phases/preflight.ts';
import { loadModule, REDIS_SHARED_DIR, variableDefaults } from '../helpers/terraform-hcl.ts';

t.test('MetalLB pool entries: ranges and CIDRs', async (t) => {
  t.ok(addressEntryContains('192.168.4.200-192.168.4.210', '192.168.4.203'));
  t.ok(addressEntryContains('192.168.4.200 - 192.168.4.210', '192.168.4.210'));
  t.notOk(addressEntryContains('192.168.4.200-192.168.4.210', '192.168.4.211'));
  t.ok(addressEntryContains('192.168.4.200/29', '192.168.4.203'));
  t.notOk(addressEntryContains('192.168.4.200/30', '192.168.4.204'));
  t.notOk(addressEntryContains('not-an-address', '192.168.4.203'));
  t.notOk(addressEntryContains('1.2.3.4-bad', '1.2.3.4'));
});

t.test('the pool must exist and contain the LB address', async (t) => {
  const pool = {
    metadata: { name: 'eero-pool', namespace: 'metallb-system' },
    spec: { addresses: ['127.0.0.200-127.0.0.210'] },
  };
  t.ok(judgePoolContains(pool, 'eero-pool', '127.0.0.203').ok);
  const outside = judgePoolContains(pool, 'eero-pool', '127.0.0.220');
  t.notOk(outside.ok);
  t.match(outside.detail, /does not contain 127\.0\.0\.220/);
  t.match(outside.fix, /REDIS_LB_IP/);
  const absent = judgePoolContains(undefined, 'eero-pool', '127.0.0.203');
  t.notOk(absent.ok);
  t.match(absent.detail, /eero-pool not found/);
});

t.test('the holder of an address is named; our own Service does not count', async (t) => {
  const services = [
    {
      metadata: { name: 'traefik', namespace: 'kube-system' },
      spec: { type: 'LoadBalancer', loadBalancerIP: '127.0.0.202' },
    },
    {
      metadata: {
        name: 'squatter',
        namespace: 'default',
        annotations: { 'metallb.io/loadBalancerIPs': '127.0.0.205, 127.0.0.203' },
      },
    },
    {
      metadata: { name: 'redis-shared-external', namespace: 'redis' },
      status: { loadBalancer: { ingress: [{ ip: '127.0.0.204' }] } },
    },
  ];
  t.same(serviceAddresses(services[1]!).sort(), ['127.0.0.203', '127.0.0.205']);
  const held = judgeAddressFree(services, '127.0.0.203', 'redis/redis-shared-external');
  t.notOk(held.ok);
  t.match(held.detail, /held by default\/squatter/);
  const ours = judgeAddressFree(services, '127.0.0.204', 'redis/redis-shared-external');
  t.ok(ours.ok);
  t.match(ours.detail, /ours/);
  t.ok(judgeAddressFree(services, '127.0.0.209', 'redis/redis-shared-external').ok);
});

t.test('the LB address must be inside PRIVATE_CIDR', async (t) => {
  t.ok(judgeAddressInCidr('192.168.4.203', '192.168.4.0/24').ok);
  t.notOk(judgeAddressInCidr('10.0.0.1', '192.168.4.0/24').ok);
});

t.test('namespace redis: absent or ours, never someone else’s', async (t) => {
  t.ok(judgeNamespaceOwnership(undefined, 'redis').ok);
  const ours = {
    metadata: {
      name: 'redis',
      labels: {
        'app.kubernetes.io/managed-by': 'opentofu',
        'app.kubernetes.io/part-of': 'redis-shared',
      },
    },
  };
  t.ok(judgeNamespaceOwnership(ours, 'redis').ok);
  const theirs = judgeNamespaceOwnership(
    { metadata: { name: 'redis', labels: { team: 'argo' } } },
    'redis',
  );
  t.notOk(theirs.ok);
  t.match(theirs.detail, /not ours \(labels: team=argo\)/);
});

t.test('label selectors behave as Kubernetes defines them', async (t) => {
  const labels = { release: 'kube-prometheus-stack', app: 'redis' };
  t.ok(selectorMatches({}, labels), 'empty selects everything');
  t.notOk(selectorMatches(null, labels), 'absent selects nothing');
  t.ok(selectorMatches({ matchLabels: { release: 'kube-prometheus-stack' } }, labels));
  t.notOk(selectorMatches({ matchLabels: { release: 'other' } }, labels));
  const expr = (operator: string, values?: string[]) => ({
    matchExpressions: [{ key: 'app', operator, ...(values ? { values } : {}) }],
  });
  t.ok(selectorMatches(expr('In', ['redis', 'x']), labels));
  t.notOk(selectorMatches(expr('In', ['x']), labels));
  t.ok(selectorMatches(expr('NotIn', ['x']), labels));
  t.notOk(selectorMatches(expr('NotIn', ['redis']), labels));
  t.ok(selectorMatches(expr('Exists'), labels));
  t.notOk(selectorMatches(expr('DoesNotExist'), labels));
  t.notOk(selectorMatches(expr('Gt', ['1']), labels), 'unknown operators never match');
});

t.test('Prometheus selectors must pick up the module’s objects', async (t) => {
  const target = {
    kind: 'PrometheusRule',
    selectorField: 'ruleSelector',
    namespaceSelectorField: 'ruleNamespaceSelector',
    namespace: 'monitoring',
    namespaceLabels: { 'kubernetes.io/metadata.name': 'monitoring' },
    labels: { release: 'kube-prometheus-stack' },
  };
  const prometheus = (spec: object, namespace = 'monitoring') => ({
    metadata: { name: 'kps', namespace },
    spec,
  });
  t.ok(
    judgePrometheusSelects(
      [prometheus({ ruleSelector: { matchLabels: { release: 'kube-prometheus-stack' } } })],
      target,
    ).ok,
    'absent namespace selector: own namespace',
  );
  const elsewhere = judgePrometheusSelects(
    [prometheus({ ruleSelector: {} }, 'observability')],
    target,
  );
  t.notOk(elsewhere.ok, 'absent namespace selector in another namespace excludes monitoring');
  t.match(elsewhere.detail, /excludes monitoring/);
  t.ok(
    judgePrometheusSelects(
      [prometheus({ ruleSelector: {}, ruleNamespaceSelector: {} }, 'observability')],
      target,
    ).ok,
  );
  const wrong = judgePrometheusSelects(
    [prometheus({ ruleSelector: { matchLabels: { release: 'prom' } } })],
    target,
  );
  t.notOk(wrong.ok);
  t.match(wrong.detail, /ruleSelector \{"matchLabels":\{"release":"prom"\}\}/);
  t.match(wrong.fix, /prometheus_release_label/);
  t.notOk(judgePrometheusSelects([], target).ok);
});

t.test('nodes: every one Ready, with count and versions', async (t) => {
  const node = (name: string, ready: boolean) => ({
    metadata: { name },
    status: {
      conditions: [{ type: 'Ready', status: ready ? 'True' : 'False' }],
      nodeInfo: { kubeletVersion: 'v1.32.4+k3s1' },
    },
  });
  const ok = judgeNodes([node('a', true), node('b', true)]);
  t.ok(ok.ok);
  t.equal(ok.detail, '2/2 nodes Ready (v1.32.4+k3s1)');
  const bad = judgeNodes([node('a', true), node('b', false)]);
  t.notOk(bad.ok);
  t.match(bad.detail, /1\/2 nodes Ready; not Ready: b/);
  t.notOk(judgeNodes([]).ok);
});

t.test('CRDs: every missing one is named with who provides it', async (t) => {
  t.ok(judgeCrds(new Set(REQUIRED_CRDS.map((c) => c.name))).ok);
  const missing = judgeCrds(new Set(['ipaddresspools.metallb.io']));
  t.notOk(missing.ok);
  t.match(missing.detail, /servicemonitors\.monitoring\.coreos\.com, prometheusrules/);
  t.match(missing.fix, /Prometheus Operator/);
});

t.test('what beersystem uses today, without the password', async (t) => {
  const deployment = {
    spec: {
      replicas: 2,
      template: {
        spec: {
          containers: [
            {
              name: 'beersystem',
              image: 'beersystem:latest',
              env: [
                { name: 'REDIS_HOST', value: 'redis.beersystem.svc.cluster.local' },
                { name: 'REDIS_PORT', value: '6379' },
                {
                  name: 'REDIS_PASSWORD',
                  valueFrom: { secretKeyRef: { name: 'beersystem-redis', key: 'redis-password' } },
                },
              ],
            },
          ],
        },
      },
    },
    status: { readyReplicas: 2 },
  };
  t.same(beersystemToday(deployment, 'beersystem'), {
    replicas: 2,
    readyReplicas: 2,
    image: 'beersystem:latest',
    redisHost: 'redis.beersystem.svc.cluster.local',
    redisPort: '6379',
    passwordFrom: 'secretKeyRef beersystem-redis/redis-password',
  });
  const literal = beersystemToday(
    {
      spec: {
        template: {
          spec: { containers: [{ name: 'x', env: [{ name: 'REDIS_PASSWORD', value: 's' }] }] },
        },
      },
    },
    'beersystem',
  );
  t.equal(literal.passwordFrom, 'literal');
  t.equal(literal.replicas, 1);
});

t.test('the module defaults the runbooks check against are the module’s', async (t) => {
  const defaults = variableDefaults(await loadModule(REDIS_SHARED_DIR));
  t.equal(defaults.prometheus_release_label, MODULE_DEFAULTS.prometheusReleaseLabel);
  t.equal(defaults.storage_class, MODULE_DEFAULTS.storageClass);
  t.equal(defaults.storage_size, MODULE_DEFAULTS.storageSize);
  const labels = monitoringLabels('redis-shared');
  t.equal(labels.serviceMonitor.release, 'kube-prometheus-stack');
  t.equal(labels.prometheusRule['app.kubernetes.io/managed-by'], 'opentofu');
});
