// 02's deploy judgements: the plan in words and its restart warning, resources, probes, PVCs and
// where the two instances landed.
import t from 'tap';
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

t.test('a plan that updates the Helm release warns that both Redis pods restart', async (t) => {
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
});

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
