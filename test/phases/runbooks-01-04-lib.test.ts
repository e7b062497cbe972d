// The judgements and manifests 01–04 rely on, on given objects, and the probe Job's script run
// for real (sh, redis-cli, redis-benchmark) against a real master and replica.
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { promisify } from 'node:util';
import t from 'tap';
import {
  MARKER_SEEN,
  manifestHasLiteral,
  parseProbeOutput,
  parseReadLoopOutput,
  probeJobManifest,
  probeScript,
  readLoopJobManifest,
  readLoopScript,
  splitSections,
} from '../../lib/cluster/probe-job.ts';
import { tofuVarArgs, tofuVars } from '../../lib/cluster/tofu-vars.ts';
import {
  deferredCheck,
  failuresSoFar,
  strictCheck,
  verdictStep,
} from '../../lib/engine/check-step.ts';
import { allOf, formatFailures } from '../../lib/engine/judgement.ts';
import { proven, recordProof } from '../../lib/engine/proof.ts';
import {
  alertingRules,
  alertState,
  firingTimeoutMs,
  prometheusDurationMs,
  resolveTimeoutMs,
  scrapeIntervalMs,
} from '../../lib/phases/alert-drill.ts';
import {
  applyImpact,
  describeChange,
  judgeProbes,
  judgePvc,
  judgeResources,
  parseQuantity,
  placement,
  planLines,
  RESEARCH_RESOURCES,
  restartWarning,
  unexpectedChanges,
} from '../../lib/phases/deploy-checks.ts';
import {
  declaredAlerts,
  judgeRulesLoaded,
  judgeScrapeInterval,
  judgeTargets,
  missingPods,
  REQUIRED_SERIES,
  seriesQuery,
} from '../../lib/phases/monitoring-checks.ts';
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
import { isBlocked, probeFromSource } from '../../lib/redis/source-probe.ts';
import { startRedisServer, waitForReplicaLink } from '../helpers/redis-server.ts';
import {
  loadModule,
  REDIS_SHARED_DIR,
  ROOT_MODULE_DIR,
  variableDefaults,
} from '../helpers/terraform-hcl.ts';
import { eventually } from '../helpers/workloads-cluster.ts';

const exec = promisify(execFile);

t.test('allOf: ok only when every judgement is, and then shows every detail', async (t) => {
  const pass = { ok: true, detail: 'a fine' };
  const failA = { ok: false, detail: 'b broken', fix: 'mend b' };
  const failB = { ok: false, detail: 'c broken' };
  t.same(allOf(pass, { ok: true, detail: 'd fine' }), { ok: true, detail: 'a fine; d fine' });
  t.same(allOf(pass, failA, failB), { ok: false, detail: 'b broken; c broken', fix: 'mend b' });
});

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

t.test('all preflight failures in one message, each with its fix', async (t) => {
  const text = formatFailures(
    [
      { step: 'P05', detail: 'CRD missing: x', fix: 'install y' },
      { step: 'P07', detail: 'held by a/b', fix: 'choose another' },
    ],
    './runbooks/01-setup.mts',
  );
  t.match(text, /^2 preflight checks failed; nothing was changed:/);
  t.match(text, /P05: CRD missing: x\n\s+fix: install y/);
  t.match(text, /P07: held by a\/b/);
  t.match(text, /run \.\/runbooks\/01-setup\.mts again/);
});

t.test(
  '#20.5: a plan that updates the Helm release warns that both Redis pods restart',
  async (t) => {
    const release = {
      address: 'module.redis_shared.helm_release.redis_shared',
      type: 'helm_release',
      action: 'update',
    };
    const warning = restartWarning([release]);
    t.match(warning, /both Redis pods restart/);
    t.match(warning, /writes fail/);
    t.equal(
      restartWarning([{ ...release, action: 'create' }]),
      undefined,
      'a first install restarts nothing',
    );
    t.equal(restartWarning([{ ...release, action: 'no-op' }]), undefined);
  },
);

t.test('the deploy plan in words; deletes and foreign addresses are flagged', async (t) => {
  const changes = [
    {
      address: 'module.redis_shared.random_password.redis',
      type: 'random_password',
      action: 'create',
    },
    {
      address: 'module.redis_shared.kubernetes_secret_v1.credentials["beersystem"]',
      type: 'kubernetes_secret_v1',
      action: 'create',
    },
    {
      address: 'module.redis_shared.helm_release.redis_shared',
      type: 'helm_release',
      action: 'no-op',
    },
    {
      address: 'module.beersystem_migration[0].kubernetes_env.x',
      type: 'kubernetes_env',
      action: 'create',
    },
    {
      address: 'module.redis_shared.kubernetes_config_map_v1.dashboard',
      type: 'kubernetes_config_map_v1',
      action: 'delete',
    },
  ];
  t.equal(
    describeChange(changes[1]!),
    'create a password Secret (beersystem) — module.redis_shared.kubernetes_secret_v1.credentials["beersystem"]',
  );
  t.same(
    planLines(changes),
    [
      'create  the generated password           module.redis_shared.random_password.redis',
      'create  a password Secret (beersystem)   module.redis_shared.kubernetes_secret_v1.credentials["beersystem"]',
      "create  beersystem's Redis environment   module.beersystem_migration[0].kubernetes_env.x",
      'delete  the Grafana dashboard ConfigMap  module.redis_shared.kubernetes_config_map_v1.dashboard',
    ],
    'no-ops left out; action, what and address in columns',
  );
  const impact = applyImpact(planLines(changes), 'the pods restart');
  t.match(
    impact,
    /^tofu apply makes these changes in the cluster:\n {4}create {2}the generated password {11}module/,
  );
  t.equal(impact.split('\n').length, 6, 'a line a change, then the restart warning');
  t.match(applyImpact([], undefined), /^tofu apply creates namespace redis/);
  t.same(
    unexpectedChanges(changes, 'module.redis_shared').map((c) => c.type),
    ['kubernetes_env', 'kubernetes_config_map_v1'],
  );
});

t.test('quantities, resources and probes against the research decisions', async (t) => {
  t.equal(parseQuantity('500m'), 0.5);
  t.equal(parseQuantity('1'), 1);
  t.equal(parseQuantity('1000m'), 1);
  t.equal(parseQuantity('2Gi'), 2 * 1024 ** 3);
  t.equal(parseQuantity('1G'), 1e9);
  t.equal(parseQuantity(3), 3);
  t.equal(parseQuantity('lots'), undefined);
  t.equal(parseQuantity(undefined), undefined);
  const master = {
    name: 'redis',
    resources: { requests: { cpu: '500m', memory: '1Gi' }, limits: { cpu: '1', memory: '2Gi' } },
    livenessProbe: {},
    readinessProbe: {},
    startupProbe: {},
  };
  t.ok(judgeResources(master, RESEARCH_RESOURCES.master, 'master').ok);
  const wrong = judgeResources(master, RESEARCH_RESOURCES.replica, 'replica');
  t.notOk(wrong.ok);
  t.match(wrong.detail, /requests\.cpu 500m \(want 250m\)/);
  t.notOk(judgeResources(undefined, RESEARCH_RESOURCES.master, 'master').ok);
  t.match(judgeProbes(master, 'master').detail, /liveness, readiness, startup/);
  const noProbe = judgeProbes({ name: 'redis', readinessProbe: {} }, 'replica');
  t.notOk(noProbe.ok);
  t.match(noProbe.detail, /no livenessProbe/);
});

t.test('PVCs: Bound, 10Gi, local-path', async (t) => {
  const pvc = {
    spec: { storageClassName: 'local-path', resources: { requests: { storage: '10Gi' } } },
    status: { phase: 'Bound', capacity: { storage: '10Gi' } },
  };
  t.ok(judgePvc(pvc, 'redis-data-redis-shared-master-0', '10Gi', 'local-path').ok);
  const pending = judgePvc(
    { ...pvc, status: { phase: 'Pending' } },
    'redis-data-redis-shared-master-0',
    '10Gi',
    'local-path',
  );
  t.notOk(pending.ok);
  t.match(pending.detail, /Pending, 10Gi on local-path \(want Bound/);
  t.notOk(judgePvc(undefined, 'x', '10Gi', 'local-path').ok);
});

t.test('monitoring judgements', async (t) => {
  t.equal(
    seriesQuery({ metric: 'redis_up' }, 'redis-shared-metrics'),
    'count by (pod) (redis_up{service="redis-shared-metrics"})',
  );
  t.equal(
    seriesQuery({ metric: 'redis_commands_processed_total', rate: true }, 's'),
    'count by (pod) (rate(redis_commands_processed_total{service="s"}[1m]))',
  );
  t.ok(REQUIRED_SERIES.some((s) => s.what === 'ops/s' && s.rate));
  t.same(missingPods([{ metric: { pod: 'a' } }], ['a', 'b']), ['b']);
  const targets = [
    { labels: { service: 'm', pod: 'a' }, health: 'up', scrapeInterval: '15s' },
    { labels: { service: 'm', pod: 'b' }, health: 'down', lastError: 'refused' },
    { labels: { service: 'other', pod: 'c' }, health: 'up' },
  ];
  t.ok(judgeTargets(targets.slice(0, 1), 'm', ['a']).ok);
  const down = judgeTargets(targets, 'm', ['a', 'b', 'x']);
  t.notOk(down.ok);
  t.match(down.detail, /b: down refused; x: no target/);
  t.ok(judgeScrapeInterval({ spec: { endpoints: [{ interval: '15s' }] } }, 'sm').ok);
  t.notOk(judgeScrapeInterval({ spec: { endpoints: [{ interval: '30s' }] } }, 'sm').ok);
  t.notOk(
    judgeScrapeInterval({ spec: { endpoints: [{}] } }, 'sm').ok,
    'unset uses the 30s default',
  );
  t.notOk(judgeScrapeInterval({ spec: { endpoints: [] } }, 'sm').ok);
  t.notOk(judgeScrapeInterval(undefined, 'sm').ok);
  const rule = { spec: { groups: [{ rules: [{ alert: 'A' }, { record: 'r' }, { alert: 'B' }] }] } };
  t.same(declaredAlerts(rule), ['A', 'B']);
  t.ok(judgeRulesLoaded(['A', 'B'], ['B', 'A', 'C']).ok);
  t.match(judgeRulesLoaded(['A', 'B'], ['A']).detail, /not loaded: B/);
  t.notOk(judgeRulesLoaded([], []).ok);
});

t.test('alert drill timeouts come from for, evaluation and scrape intervals', async (t) => {
  t.equal(prometheusDurationMs('15s'), 15_000);
  t.equal(prometheusDurationMs('1m30s'), 90_000);
  t.equal(prometheusDurationMs(60), 60_000);
  t.equal(prometheusDurationMs('2.5'), 2500);
  t.equal(prometheusDurationMs(''), undefined);
  t.equal(prometheusDurationMs(undefined), undefined);
  t.equal(prometheusDurationMs(-1), undefined);
  // The homelab: for 2m, evaluated every 30s, scraped every 15s.
  const real = { forMs: 120_000, evaluationMs: 30_000, scrapeMs: 15_000 };
  t.equal(firingTimeoutMs(real), 2 * (30_000 + 60_000 + 120_000));
  t.equal(resolveTimeoutMs(real, 20_000), 2 * (20_000 + 30_000 + 60_000));
  // The sandbox: everything shortened; the floor keeps a slow machine from failing the drill.
  t.equal(firingTimeoutMs({ forMs: 2000, evaluationMs: 1000, scrapeMs: 1000 }), 30_000);
  const groups = [
    {
      name: 'redis-shared.critical',
      interval: 30,
      rules: [
        { type: 'alerting', name: 'RedisDown', duration: 60, query: 'redis_up == 0' },
        { type: 'recording', name: 'x' },
      ],
    },
    { name: 'g2', rules: [{ type: 'alerting', name: 'NoFor' }] },
  ];
  t.same(alertingRules(groups), [
    {
      name: 'RedisDown',
      group: 'redis-shared.critical',
      forMs: 60_000,
      evaluationMs: 30_000,
      query: 'redis_up == 0',
    },
    { name: 'NoFor', group: 'g2', forMs: 0, evaluationMs: 60_000, query: '' },
  ]);
  t.equal(scrapeIntervalMs([{ scrapeInterval: '15s' }, { scrapeInterval: '30s' }, {}]), 30_000);
  t.equal(scrapeIntervalMs([{}]), undefined);
  const alerts = [
    { labels: { alertname: 'RedisDown' }, state: 'pending' },
    { labels: { alertname: 'RedisDown' }, state: 'firing' },
    { labels: { alertname: 'Other' }, state: 'pending' },
  ];
  t.equal(alertState(alerts, 'RedisDown'), 'firing');
  t.equal(alertState(alerts, 'Other'), 'pending');
  t.equal(alertState(alerts, 'Missing'), 'inactive');
});

const SECRET = 'probe-job-secret-7f3a9c1e55';

t.test('the probe Job carries the password only by reference', async (t) => {
  const input = {
    name: 'redis-shared-probe-abc',
    namespace: 'beersystem',
    image: 'bitnamilegacy/redis:8.2.1-debian-12-r0',
    secretName: 'redis-credentials',
    secretKey: 'redis-password',
    masterHost: 'redis-shared-master.redis.svc.cluster.local',
    replicaHost: 'redis-shared-replicas.redis.svc.cluster.local',
    port: 6379,
    probeKey: 'runbook:probe:abc',
    roundTrips: 1000,
  };
  const job = probeJobManifest(input);
  const container = job.spec.template.spec.containers[0];
  t.same(container.env, [
    {
      name: 'REDIS_PASSWORD',
      valueFrom: { secretKeyRef: { name: 'redis-credentials', key: 'redis-password' } },
    },
  ]);
  t.equal(job.spec.backoffLimit, 0);
  t.equal(job.spec.template.spec.restartPolicy, 'Never');
  t.notOk(manifestHasLiteral(job, SECRET));
  t.ok(manifestHasLiteral({ env: [{ value: SECRET }] }, SECRET));
  t.notOk(manifestHasLiteral(job, ''));
  const loop = readLoopJobManifest({
    ...input,
    name: 'redis-shared-failover-reads',
    markerKey: 'k',
    doneKey: 'd',
    maxSeconds: 120,
  });
  t.equal(loop.spec.activeDeadlineSeconds, 180);
  t.same(loop.spec.template.spec.containers[0].env, container.env);
});

t.test('probe output parsing: anything missing is a failed check', async (t) => {
  t.same(splitSections('noise\n==a==\nx\n==b=='), { a: 'x\n', b: '' });
  const empty = parseProbeOutput('');
  t.notOk(empty.pong);
  t.notOk(empty.setOk);
  t.notOk(empty.getMatched);
  t.equal(empty.resolved, undefined);
  t.equal(empty.markerTries, undefined);
  t.same(empty.bench, []);
  t.notOk(empty.complete);
  const unresolved = parseProbeOutput(
    '==dns==\nunresolved x\n==get==\n(error) NOAUTH x\n==marker==\ntries=50 value=\n',
  );
  t.equal(unresolved.resolved, undefined);
  t.notOk(unresolved.getMatched);
  t.equal(unresolved.markerTries, undefined);
  t.equal(parseReadLoopOutput('nothing'), undefined);
  t.same(parseReadLoopOutput('read failed: x\nreads ok=10 failed=1\n'), {
    ok: 10,
    failed: 1,
    sawDone: true,
  });
  t.same(parseReadLoopOutput('gave up after 5s\nreads ok=3 failed=0\n'), {
    ok: 3,
    failed: 0,
    sawDone: false,
  });
});

t.test('the probe script, run for real against a master and its replica', async (t) => {
  const master = await startRedisServer(t, { password: SECRET });
  const replica = await startRedisServer(t, {
    password: SECRET,
    replicaOf: { host: master.host, port: master.port, password: SECRET },
  });
  await waitForReplicaLink(replica);
  const script = probeScript({
    name: 'x',
    namespace: 'beersystem',
    image: 'unused',
    secretName: 's',
    secretKey: 'k',
    masterHost: master.host,
    // The replica's own name resolves to the same loopback address; only its port differs.
    replicaHost: 'localhost',
    port: master.port,
    replicaPort: replica.port,
    probeKey: 'runbook:probe:test',
    roundTrips: 200,
  });
  const { stdout, stderr } = await exec('sh', ['-c', script], {
    env: { ...process.env, REDIS_PASSWORD: SECRET, HOSTNAME: 'probe-pod' },
  });
  t.notOk(stdout.includes(SECRET) || stderr.includes(SECRET), 'the password is never printed');
  const out = parseProbeOutput(stdout, 'probe-pod');
  t.equal(out.resolved, '127.0.0.1');
  t.ok(out.pong, 'PING answered with the password from the environment');
  t.ok(out.setOk);
  t.ok(out.getMatched);
  t.same(
    out.bench.map((r) => r.test),
    ['SET', 'GET'],
  );
  t.ok((out.bench[0]?.p95LatencyMs ?? -1) >= 0);
  t.equal(out.master.role, 'master');
  t.equal(out.replica.role, 'slave');
  t.equal(out.replica.masterLinkStatus, 'up');
  t.type(out.markerTries, 'number', 'the marker written on the master was read on the replica');
  t.ok(out.complete);
});

t.test(
  'the replica read loop counts reads from the marker on and stops on the done key',
  async (t) => {
    const server = await startRedisServer(t, { password: SECRET });
    const cli = (...args: string[]) =>
      exec(
        'redis-cli',
        ['--no-auth-warning', '-h', server.host, '-p', String(server.port), ...args],
        {
          env: { ...process.env, REDISCLI_AUTH: SECRET },
        },
      );
    const script = (markerKey: string, doneKey: string, maxSeconds: number) =>
      readLoopScript({
        name: 'x',
        namespace: 'beersystem',
        image: 'unused',
        secretName: 's',
        secretKey: 'k',
        replicaHost: server.host,
        port: server.port,
        markerKey,
        doneKey,
        maxSeconds,
      });
    const env = { ...process.env, REDIS_PASSWORD: SECRET };

    // The marker not there yet (a replica catching up): not counted, the loop gives up in time.
    const absent = await exec('sh', ['-c', script('absent', 'never', 1)], { env });
    t.same(parseReadLoopOutput(absent.stdout), { ok: 0, failed: 0, sawDone: false });
    t.notMatch(absent.stdout, MARKER_SEEN);

    // Seen, then lost (what a failed read is), then done.
    await cli('SET', 'marker', 'v');
    const child = spawn('sh', ['-c', script('marker', 'done', 30)], { env });
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
    });
    const closed = once(child, 'close');
    await eventually(
      'the loop to see the marker',
      async () => out.includes(MARKER_SEEN) || undefined,
      10_000,
    );
    await cli('DEL', 'marker');
    await eventually('a failed read', async () => out.includes('read failed') || undefined, 10_000);
    await cli('SET', 'done', 'done');
    await closed;
    const tally = parseReadLoopOutput(out);
    t.ok((tally?.ok ?? 0) >= 1, 'the reads that found the marker');
    t.ok(
      (tally?.failed ?? 0) >= 1,
      'a read after the marker was seen that found nothing is a failure',
    );
    t.equal(tally?.sawDone, true);
  },
);

t.test(
  'SC-004 probe: a reply means reached; reset, refused and timeout mean blocked',
  async (t) => {
    const server = await startRedisServer(t, { password: SECRET });
    const reached = await probeFromSource('127.0.0.1', server.host, server.port);
    t.equal(reached.outcome, 'reached');
    t.match(reached.detail, /NOAUTH/);
    t.notOk(isBlocked(reached));
    const own = await probeFromSource(undefined, server.host, server.port);
    t.equal(own.outcome, 'reached', "without a source the system picks this machine's address");
    t.equal(own.source, '127.0.0.1', 'and the probe says which it was');
    // A listener that resets whatever connects.
    const resetter = createServer((socket) => socket.resetAndDestroy());
    await new Promise<void>((resolve) => resetter.listen(0, '127.0.0.1', resolve));
    t.teardown(() => resetter.close());
    const port = (resetter.address() as { port: number }).port;
    const reset = await probeFromSource('127.0.0.5', '127.0.0.1', port);
    t.ok(isBlocked(reset), `reset counts as blocked (${reset.outcome})`);
    const refused = await probeFromSource('127.0.0.1', '127.0.0.1', 1);
    t.equal(refused.outcome, 'refused');
    t.ok(isBlocked(refused));
    const silent = createServer(() => {});
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    t.teardown(() => silent.close());
    const timeout = await probeFromSource(
      '127.0.0.1',
      '127.0.0.1',
      (silent.address() as { port: number }).port,
      200,
    );
    t.equal(timeout.outcome, 'timeout');
    t.ok(isBlocked(timeout));
    const badSource = await probeFromSource('203.0.113.9', '127.0.0.1', server.port, 500);
    t.equal(badSource.outcome, 'error', 'a source address this host does not have proves nothing');
    t.notOk(isBlocked(badSource));
  },
);

t.test('the module defaults the runbooks check against are the module’s', async (t) => {
  const defaults = variableDefaults(await loadModule(REDIS_SHARED_DIR));
  t.equal(defaults.prometheus_release_label, MODULE_DEFAULTS.prometheusReleaseLabel);
  t.equal(defaults.storage_class, MODULE_DEFAULTS.storageClass);
  t.equal(defaults.storage_size, MODULE_DEFAULTS.storageSize);
  const labels = monitoringLabels('redis-shared');
  t.equal(labels.serviceMonitor.release, 'kube-prometheus-stack');
  t.equal(labels.prometheusRule['app.kubernetes.io/managed-by'], 'opentofu');
});

t.test(
  'tofu variables come from the settings, and each one exists in the root module',
  async (t) => {
    const vars = tofuVars(
      {
        redis: {
          namespace: 'redis',
          release: 'redis-shared',
          port: 6379,
          lbIp: '127.0.0.203',
          metallbPool: 'eero-pool',
          privateCidr: '127.0.0.0/24',
          secretName: 'redis-credentials',
          secretKey: 'redis-password',
          outsideProbeSource: undefined,
        },
        monitoring: { namespace: 'monitoring', prometheusService: 'p', prometheusPort: 9090 },
        beersystem: { namespace: 'beersystem', deployment: 'beersystem', container: 'beersystem' },
      },
      { migration: false },
    );
    t.equal(vars.enable_beersystem_migration, 'false');
    t.equal(vars.lb_ip, '127.0.0.203');
    const declared = (await loadModule(ROOT_MODULE_DIR)).variables;
    for (const name of Object.keys(vars)) t.ok(declared[name], `root module declares ${name}`);
    t.same(tofuVarArgs({ a: '1', b: 'x y' }), ['-var', 'a=1', '-var', 'b=x y']);
  },
);

t.test('check steps: strict fails its step, deferred collects for the verdict', async (t) => {
  const lines: string[] = [];
  const ctx = { state: {}, log: { info: (l: string) => lines.push(l), warn: () => {} } } as never;
  let calls = 0;
  let ok = false;
  const strict = strictCheck({
    id: 'T016',
    title: 't',
    check: () => {
      calls++;
      return ok ? { ok, detail: 'fine' } : { ok, detail: 'broken', fix: 'mend it' };
    },
  });
  t.equal(strict.risk, 'read');
  t.equal(await strict.done?.(ctx), false);
  await t.rejects(async () => strict.run(ctx), /broken\. Fix: mend it/);
  t.equal(calls, 2, 'run judges again after done saw a failure');
  ok = true;
  const fresh = { state: {}, log: { info: (l: string) => lines.push(l), warn: () => {} } } as never;
  t.equal(await strict.done?.(fresh), true);
  t.match(lines.at(-1), /✓ fine/);

  const deferred = deferredCheck({
    id: 'P05',
    title: 'd',
    check: () => ({ ok: false, detail: 'CRD missing: x', fix: 'install y' }),
  });
  const passing = deferredCheck({
    id: 'P06',
    title: 'p',
    check: () => ({ ok: true, detail: 'selects' }),
  });
  const verdict = verdictStep('P13', 'v');
  const run = { state: {}, log: { info: (l: string) => lines.push(l), warn: () => {} } } as never;
  t.equal(await verdict.done?.(run), true, 'nothing failed yet');
  t.equal(await deferred.done?.(run), false);
  await deferred.run(run);
  t.equal(await deferred.verify?.(run), true, 'the failed check does not stop the run');
  t.match(lines.at(-1), /✗ CRD missing: x\n\s+fix: install y/);
  t.equal(await passing.done?.(run), true);
  t.same(failuresSoFar(run), [{ step: 'P05', detail: 'CRD missing: x', fix: 'install y' }]);
  t.equal(await verdict.done?.(run), false);
  await t.rejects(
    async () => verdict.run(run),
    /1 preflight check failed; nothing was changed:\n\s+P05: CRD missing: x/,
  );
});

t.test(
  'a check that cannot be made counts as failed, unless the run was interrupted',
  async (t) => {
    const lines: string[] = [];
    const controller = new AbortController();
    const ctx = {
      state: {},
      signal: controller.signal,
      log: { info: (l: string) => lines.push(l), warn: () => {} },
    } as never;
    const broken = deferredCheck({
      id: 'P07',
      title: 'b',
      check: () => {
        throw new Error('the server could not find the requested resource');
      },
    });
    t.equal(await broken.done?.(ctx), false);
    await broken.run(ctx);
    t.match(failuresSoFar(ctx)[0]?.detail, /could not be made: the server could not find/);
    controller.abort();
    const interrupted = strictCheck({
      id: 'T016',
      title: 'i',
      check: () => {
        throw new Error('interrupted while waiting');
      },
    });
    await t.rejects(async () => interrupted.done?.(ctx), /interrupted while waiting/);
  },
);

t.test('proof: this run’s evidence counts; earlier runs’ count unless --recheck', async (t) => {
  const earlier: Record<string, unknown> = {
    'evidence.SC-001': { met: true },
    'evidence.SC-002': { met: false },
  };
  const printed: string[] = [];
  const ctx = (flags: Record<string, boolean>) =>
    ({
      state: {},
      flags,
      recall: async (k: string) => earlier[k],
      evidence: async (id: string, line: string) => {
        printed.push(`${id}: ${line}`);
      },
    }) as never;
  const plain = ctx({});
  t.equal(await proven(plain, 'SC-001'), true, 'met in an earlier run');
  t.equal(await proven(plain, 'SC-001', 'SC-002'), false, 'one not met is not proven');
  t.equal(await proven(plain, 'SC-003'), false, 'never recorded');
  const recheck = ctx({ recheck: true });
  t.equal(await proven(recheck, 'SC-001'), false, '--recheck sets earlier runs aside');
  await recordProof(recheck, 'SC-001', 'p95 0.4 ms: met', { met: true });
  t.equal(await proven(recheck, 'SC-001'), true, 'proven by this run');
  await recordProof(recheck, 'SC-003', 'p95 120 ms: NOT met', { met: false });
  t.equal(await proven(recheck, 'SC-003'), false);
  t.same(printed, ['SC-001: p95 0.4 ms: met', 'SC-003: p95 120 ms: NOT met']);
});

t.test('proof: "not proven" settles a step without counting as met', async (t) => {
  const { judged, recordNotProven } = await import('../../lib/engine/proof.ts');
  const earlier: Record<string, unknown> = { 'evidence.SC-004': { met: 'not proven' } };
  const data: Record<string, unknown> = {};
  const ctx = (flags: Record<string, boolean>) =>
    ({
      state: {},
      flags,
      recall: async (k: string) => earlier[k],
      evidence: async (id: string, _line: string, d: Record<string, unknown>) => {
        data[id] = d;
      },
    }) as never;
  const plain = ctx({});
  t.equal(await judged(plain, 'SC-004'), true, 'an earlier "not proven" is a verdict');
  t.equal(await proven(plain, 'SC-004'), false, 'but never proof');
  const run = ctx({ recheck: true });
  t.equal(await judged(run, 'SC-004'), false);
  await recordNotProven(run, 'SC-004', 'configured, not proven', { toProve: 'set X' });
  t.equal(await judged(run, 'SC-004'), true);
  t.equal(await proven(run, 'SC-004'), false);
  t.same(data['SC-004'], { toProve: 'set X', met: 'not proven' });
  await recordProof(run, 'SC-008', 'NOT met', { met: false });
  t.equal(await judged(run, 'SC-008'), false, 'NOT met is not settled');
});

t.test('SC-005 is measured: each target scraped within the last 15 s', async (t) => {
  const { judgeFreshness } = await import('../../lib/phases/monitoring-checks.ts');
  const now = Date.parse('2026-12-01T10:00:00Z');
  const target = (pod: string, lastScrape: string) => ({
    labels: { service: 'redis-shared-metrics', pod },
    lastScrape,
  });
  const pods = ['redis-shared-master-0', 'redis-shared-replicas-0'];
  const fresh = judgeFreshness(
    [target(pods[0]!, '2026-12-01T09:59:55Z'), target(pods[1]!, '2026-12-01T09:59:46Z')],
    'redis-shared-metrics',
    pods,
    now,
  );
  t.ok(fresh.ok);
  t.match(fresh.detail, /redis-shared-master-0 5\.0 s ago, redis-shared-replicas-0 14\.0 s ago/);
  const stale = judgeFreshness(
    [target(pods[0]!, '2026-12-01T09:59:55Z'), target(pods[1]!, '2026-12-01T09:59:30Z')],
    'redis-shared-metrics',
    pods,
    now,
  );
  t.notOk(stale.ok, 'a configured interval does not make 30 s old metrics fresh');
  t.notOk(judgeFreshness([], 'redis-shared-metrics', pods, now).ok, 'never scraped');
});

t.test(
  '02 reports each instance node and warns when both share one (two instances, two nodes)',
  async (t) => {
    const apart = placement(
      { name: 'redis-shared-master-0', node: 'worker1' },
      { name: 'redis-shared-replicas-0', node: 'worker2' },
    );
    t.equal(
      apart.detail,
      'redis-shared-master-0 on node worker1, redis-shared-replicas-0 on node worker2',
    );
    t.equal(apart.warning, undefined);
    const together = placement(
      { name: 'redis-shared-master-0', node: 'worker1' },
      { name: 'redis-shared-replicas-0', node: 'worker1' },
    );
    t.match(together.warning, /share node worker1: one node failure takes both instances/);
    t.match(together.warning, /replica\.affinity/);
  },
);
