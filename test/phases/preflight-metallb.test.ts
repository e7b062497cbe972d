// 01's MetalLB and K3s judgements on given objects: the controller's version from its image tag,
// ServiceLB's marks, an advertisement for the pool, and the pool's serviceAllocation.
import t from 'tap';
import {
  judgeMetallbVersion,
  judgePoolAdmits,
  judgePoolAnnounced,
  judgeServiceLbOff,
  metallbControllerTag,
  moduleLabels,
} from '../../lib/phases/preflight.ts';

const controller = (image: string) => ({
  metadata: { name: 'controller', namespace: 'metallb-system' },
  spec: { template: { spec: { containers: [{ name: 'controller', image }] } } },
});

t.test('the MetalLB controller must be v0.14.9 or later, read from its image tag', async (t) => {
  t.equal(metallbControllerTag('quay.io/metallb/controller:v0.14.8'), 'v0.14.8');
  t.equal(metallbControllerTag('quay.io/metallb/controller@sha256:abc'), undefined);
  const ns = 'metallb-system';
  t.ok(judgeMetallbVersion([controller('quay.io/metallb/controller:v0.14.9')], ns).ok);
  t.ok(judgeMetallbVersion([controller('quay.io/metallb/controller:v0.15.2')], ns).ok);
  t.ok(judgeMetallbVersion([controller('quay.io/metallb/controller:v1.0.0')], ns).ok);
  const old = judgeMetallbVersion([controller('quay.io/metallb/controller:v0.14.8')], ns);
  t.notOk(old.ok);
  t.match(old.detail, /is v0\.14\.8: before v0\.14\.9 it ignores the metallb\.io\/address-pool/);
  t.match(old.fix, /upgrade MetalLB to v0\.14\.9 or later/);
  const older = judgeMetallbVersion([controller('metallb/controller:v0.9.6')], ns);
  t.notOk(older.ok, 'an old image without the registry is read too');
  t.match(judgeMetallbVersion([], ns).detail, /no MetalLB controller Deployment in metallb-system/);
  t.match(
    judgeMetallbVersion([controller('quay.io/metallb/controller:main')], ns).fix,
    /pin the controller image to a release tag/,
  );
});

t.test(
  'K3s ServiceLB: svclb DaemonSets, pods or the node label refuse, naming --disable servicelb',
  async (t) => {
    t.ok(judgeServiceLbOff([], [], [{ metadata: { name: 'n', labels: {} } }]).ok);
    const ds = {
      metadata: {
        name: 'svclb-traefik-1a2b3c4d',
        namespace: 'kube-system',
        labels: { 'svccontroller.k3s.cattle.io/svcname': 'traefik' },
      },
    };
    const byDs = judgeServiceLbOff([ds], [], []);
    t.notOk(byDs.ok);
    t.match(byDs.detail, /DaemonSet kube-system\/svclb-traefik-1a2b3c4d/);
    t.match(byDs.fix, /--disable servicelb/);
    t.notOk(
      judgeServiceLbOff(
        [],
        [{ metadata: { name: 'svclb-x-1-abcde', namespace: 'kube-system' } }],
        [],
      ).ok,
    );
    const byNode = judgeServiceLbOff(
      [],
      [],
      [
        {
          metadata: { name: 'worker1', labels: { 'svccontroller.k3s.cattle.io/enablelb': 'true' } },
        },
      ],
    );
    t.match(byNode.detail, /node worker1 \(label svccontroller\.k3s\.cattle\.io\/enablelb\)/);
  },
);

t.test('the pool must be announced by an L2Advertisement or BGPAdvertisement', async (t) => {
  const pool = {
    metadata: { name: 'eero-pool', namespace: 'metallb-system', labels: { lan: 'eero' } },
  };
  const ad = (spec: object, kind = 'L2Advertisement') => ({
    kind,
    metadata: { name: 'a', namespace: 'metallb-system' },
    spec,
  });
  t.notOk(judgePoolAnnounced(pool, 'eero-pool', [], 'metallb-system').ok);
  t.match(
    judgePoolAnnounced(pool, 'eero-pool', [], 'metallb-system').fix,
    /"kind":"L2Advertisement"/,
  );
  t.notOk(judgePoolAnnounced(pool, 'eero-pool', [ad({ ipAddressPools: ['other'] })], 'x').ok);
  t.ok(judgePoolAnnounced(pool, 'eero-pool', [ad({ ipAddressPools: ['eero-pool'] })], 'x').ok);
  t.ok(judgePoolAnnounced(pool, 'eero-pool', [ad({})], 'x').ok, 'no pool list: every pool');
  t.ok(
    judgePoolAnnounced(
      pool,
      'eero-pool',
      [ad({ ipAddressPoolSelectors: [{ matchLabels: { lan: 'eero' } }] }, 'BGPAdvertisement')],
      'x',
    ).ok,
  );
});

t.test("the pool's serviceAllocation must admit namespace redis", async (t) => {
  const labels = moduleLabels('redis-shared', 'redis');
  const svc = {
    namespace: 'redis',
    namespaceLabels: labels.namespace,
    labels: labels.externalService,
  };
  const pool = (serviceAllocation?: object) => ({
    metadata: { name: 'eero-pool' },
    spec: { addresses: ['x'], ...(serviceAllocation ? { serviceAllocation } : {}) },
  });
  t.ok(judgePoolAdmits(pool(), 'eero-pool', svc).ok);
  const shut = judgePoolAdmits(pool({ namespaces: ['default'] }), 'eero-pool', svc);
  t.notOk(shut.ok);
  t.match(shut.fix, /add redis to spec\.serviceAllocation\.namespaces of pool eero-pool/);
  t.ok(judgePoolAdmits(pool({ namespaces: ['redis'] }), 'eero-pool', svc).ok);
  t.ok(
    judgePoolAdmits(
      pool({ namespaceSelectors: [{ matchLabels: { type: 'shared-service' } }] }),
      'eero-pool',
      svc,
    ).ok,
    'selected by the labels the module gives the namespace',
  );
  t.notOk(
    judgePoolAdmits(
      pool({ serviceSelectors: [{ matchLabels: { exposed: 'yes' } }] }),
      'eero-pool',
      svc,
    ).ok,
  );
});
