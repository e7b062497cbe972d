// The sandbox's scheduler places pods on its 4 nodes honouring (anti-)affinity, required and
// preferred, as kube-scheduler does; `kubectl get pods -o wide` shows the node; a pod no node
// fits stays Pending with the scheduler's FailedScheduling reason.
import t from 'tap';
import { chartObjects } from '../../sandbox/tofu/chart.ts';
import { type SandboxFixture, startTestSandbox } from '../helpers/sandbox.ts';

// Twenty-odd kubectl runs against the sandbox, with the machine's two cores shared.
t.setTimeout(240_000);

const pod = (name: string, labels: Record<string, string>, affinity?: object) =>
  JSON.stringify({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: 'default', labels },
    spec: { ...(affinity ? { affinity } : {}), containers: [{ name: 'main', image: 'busybox' }] },
  });

const term = (labels: Record<string, string>) => ({
  labelSelector: { matchLabels: labels },
  topologyKey: 'kubernetes.io/hostname',
});

async function nodeOf(fx: SandboxFixture, name: string, ns = 'default'): Promise<string> {
  for (let i = 0; i < 100; i++) {
    const node = await fx.kubectlOk([
      'get',
      'pod',
      name,
      '-n',
      ns,
      '-o',
      'jsonpath={.spec.nodeName}',
    ]);
    if (node) return node;
    await new Promise((r) => setTimeout(r, 50));
  }
  return '';
}

t.test('pods are placed honouring (anti-)affinity', async (t) => {
  const fx = await startTestSandbox(t);

  await t.test(
    'required anti-affinity: one per node, the fifth Pending with the reason',
    async (t) => {
      const spread = {
        podAntiAffinity: {
          requiredDuringSchedulingIgnoredDuringExecution: [term({ app: 'spread' })],
        },
      };
      const nodes = new Set<string>();
      for (const i of [1, 2, 3, 4]) {
        await fx.kubectlOk(['create', '-f', '-'], pod(`spread-${i}`, { app: 'spread' }, spread));
        nodes.add(await nodeOf(fx, `spread-${i}`));
      }
      t.equal(nodes.size, 4, `four pods on four nodes: ${[...nodes]}`);
      await fx.kubectlOk(['create', '-f', '-'], pod('spread-5', { app: 'spread' }, spread));
      let events = '';
      for (let i = 0; i < 100 && !events.includes('FailedScheduling'); i++) {
        events = await fx.kubectlOk([
          'get',
          'events',
          '-n',
          'default',
          '--field-selector',
          'involvedObject.name=spread-5',
        ]);
        await new Promise((r) => setTimeout(r, 50));
      }
      t.match(events, "0/4 nodes are available: 4 node(s) didn't match pod anti-affinity rules.");
      t.equal(
        await fx.kubectlOk(['get', 'pod', 'spread-5', '-o', 'jsonpath={.status.phase}']),
        'Pending',
      );
      await fx.kubectlOk(['delete', 'pod', 'spread-1', '--wait=false']);
      t.ok(await nodeOf(fx, 'spread-5'), 'scheduled once a node frees up');
      const wide = await fx.kubectlOk(['get', 'pods', '-o', 'wide']);
      t.match(wide, /NODE/);
      t.match(wide, new RegExp(`spread-5 .* ${await nodeOf(fx, 'spread-5')}`), 'the NODE column');
    },
  );

  await t.test("an existing pod's required anti-affinity keeps others off its node", async (t) => {
    await fx.kubectlOk(
      ['create', '-f', '-'],
      pod(
        'loner',
        { app: 'loner' },
        {
          podAntiAffinity: {
            requiredDuringSchedulingIgnoredDuringExecution: [term({ app: 'crowd' })],
          },
        },
      ),
    );
    const lonerNode = await nodeOf(fx, 'loner');
    for (const i of [1, 2, 3, 4, 5, 6]) {
      await fx.kubectlOk(['create', '-f', '-'], pod(`crowd-${i}`, { app: 'crowd' }));
      t.not(await nodeOf(fx, `crowd-${i}`), lonerNode, `crowd-${i}`);
    }
  });

  await t.test('preferred affinity and anti-affinity steer the choice', async (t) => {
    await fx.kubectlOk(['create', '-f', '-'], pod('anchor', { app: 'anchor' }));
    const anchor = await nodeOf(fx, 'anchor');
    for (const i of [1, 2, 3]) {
      await fx.kubectlOk(
        ['create', '-f', '-'],
        pod(
          `near-${i}`,
          { app: 'near' },
          {
            podAffinity: {
              preferredDuringSchedulingIgnoredDuringExecution: [
                { weight: 10, podAffinityTerm: term({ app: 'anchor' }) },
              ],
            },
          },
        ),
      );
      t.equal(await nodeOf(fx, `near-${i}`), anchor, `near-${i} joins the anchor`);
      await fx.kubectlOk(
        ['create', '-f', '-'],
        pod(
          `far-${i}`,
          { app: 'far' },
          {
            podAntiAffinity: {
              preferredDuringSchedulingIgnoredDuringExecution: [
                { weight: 10, podAffinityTerm: term({ app: 'anchor' }) },
              ],
            },
          },
        ),
      );
      t.not(await nodeOf(fx, `far-${i}`), anchor, `far-${i} avoids it`);
    }
  });

  await t.test("the module's render: master and replica never share a node", async (t) => {
    await fx.kubectlOk(['create', 'namespace', 'redis']);
    // The module's affinity, as values.yaml.tftpl sets it (test/terraform/chart-render.test.ts
    // holds the template to it).
    const master = {
      'app.kubernetes.io/instance': 'redis-shared',
      'app.kubernetes.io/name': 'redis',
      'app.kubernetes.io/component': 'master',
    };
    const replica = { ...master, 'app.kubernetes.io/component': 'replica' };
    const objects = chartObjects({
      name: 'redis-shared',
      namespace: 'redis',
      chartVersion: '23.1.1',
      values: {
        master: { count: 1 },
        replica: {
          replicaCount: 3,
          affinity: {
            podAntiAffinity: {
              requiredDuringSchedulingIgnoredDuringExecution: [term(master)],
              preferredDuringSchedulingIgnoredDuringExecution: [
                { weight: 1, podAffinityTerm: term(replica) },
              ],
            },
          },
        },
      },
    }).filter((o) => o.kind === 'StatefulSet');
    for (const o of objects) await fx.kubectlOk(['create', '-f', '-'], JSON.stringify(o));
    const masterNode = await nodeOf(fx, 'redis-shared-master-0', 'redis');
    const replicaNodes = new Set<string>();
    for (const i of [0, 1, 2])
      replicaNodes.add(await nodeOf(fx, `redis-shared-replicas-${i}`, 'redis'));
    t.notOk(
      replicaNodes.has(masterNode),
      `master on ${masterNode}, replicas on ${[...replicaNodes]}`,
    );
    t.equal(replicaNodes.size, 3, 'the replicas spread over the other three nodes');
  });
});
