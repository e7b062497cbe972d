// lib/cluster/kube.ts against the sandbox with the real @kubernetes/client-node: typed reads, the
// context pin, secrets masked on read, watch-based waits, and that reads are never mutations.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import {
  createKube,
  KubeError,
  type KubeObject,
  toDeploymentInfo,
} from '../../lib/cluster/kube.ts';
import { maskSecrets } from '../../lib/mask.ts';
import { sandboxConfig, stepContext } from '../helpers/kube-config.ts';
import { startTestSandbox } from '../helpers/sandbox.ts';

t.test('reads run in a dry run and send nothing: the journal stays empty', async (t) => {
  const fx = await startTestSandbox(t);
  const cfg = sandboxConfig(fx);
  const kube = createKube(cfg);
  const lines: string[] = [];
  const ctx = stepContext(cfg, true, lines);

  const dep = await kube.deployment('beersystem', 'beersystem');
  t.equal(dep?.replicas, 1);
  t.equal(dep?.readyReplicas, 1);
  t.equal(dep?.selector, 'app=beersystem');
  t.same(
    dep?.containers[0]?.env.find((e) => e.name === 'REDIS_PORT'),
    {
      name: 'REDIS_PORT',
      value: '6379',
    },
  );
  t.equal(
    await kube.deployment('beersystem', 'absent'),
    undefined,
    'a missing object is undefined',
  );

  const pods = await kube.pods('beersystem', dep!.selector);
  t.equal(pods.length, 1);
  t.match(pods[0], { phase: 'Running', ready: true, restarts: 0, deleting: false });
  t.ok(pods[0]?.node, 'scheduled onto a node');

  const prom = await kube.statefulSet('monitoring', 'prometheus-kube-prometheus-stack-prometheus');
  t.equal(prom?.readyReplicas, 1);

  const nodes = await kube.list('v1', 'Node');
  t.same(nodes.map((n) => n.metadata.name).sort(), ['master1', 'worker1', 'worker2', 'worker3']);
  const pool = await kube.get('metallb.io/v1beta1', 'IPAddressPool', 'eero-pool', 'metallb-system');
  t.equal(pool?.metadata.name, 'eero-pool', 'custom resources through discovery');
  const byLabel = await kube.list('apps/v1', 'Deployment', {
    namespace: 'beersystem',
    labelSelector: 'app in (redis)',
  });
  t.same(
    byLabel.map((d) => d.metadata.name),
    ['redis'],
  );
  t.same(await kube.serviceIngress('kube-system', 'traefik'), [fx.sandbox.network.held.traefik]);
  t.same(await kube.serviceIngress('beersystem', 'redis'), [], 'a ClusterIP Service has none');
  const events = await kube.events('beersystem', 'Pod', pods[0]!.name);
  t.ok(
    events.some((e) => e.reason === 'Scheduled'),
    'events of the pod',
  );
  t.match(await kube.podLogs('beersystem', pods[0]!.name), /fake runtime/);

  // The mutation a step would send next, in the same dry run: printed, not sent.
  const scaled = await ctx.kubectl([
    'scale',
    'deployment',
    'beersystem',
    '-n',
    'beersystem',
    '--replicas=0',
  ]);
  t.equal(scaled.skipped, true);
  t.match(lines.join('\n'), /would run: kubectl --context sandbox .* scale deployment beersystem/);
  t.same(await fx.journal(), [], 'not one mutating request reached the API');
});

t.test('pinned to KUBE_CONTEXT, whatever the kubeconfig current context is', async (t) => {
  const fx = await startTestSandbox(t);
  const yaml = (await import('node:fs')).readFileSync(fx.sandbox.kubeconfigPath, 'utf8');
  const kubeconfig = join(fx.dir, 'two-contexts');
  writeFileSync(
    kubeconfig,
    yaml
      .replace('current-context: sandbox', 'current-context: elsewhere')
      .replace(
        'contexts:\n',
        'contexts:\n- name: elsewhere\n  context:\n    cluster: nowhere\n    user: sandbox\n',
      )
      .replace(
        'clusters:\n',
        'clusters:\n- name: nowhere\n  cluster:\n    server: http://127.0.0.1:1\n    insecure-skip-tls-verify: true\n',
      ),
  );
  const cfg = sandboxConfig(fx, { KUBECONFIG: kubeconfig });
  t.equal((await createKube(cfg).deployment('beersystem', 'beersystem'))?.name, 'beersystem');

  const wrong = createKube(sandboxConfig(fx, { KUBECONFIG: kubeconfig, KUBE_CONTEXT: 'prod' }));
  await t.rejects(wrong.list('v1', 'Node'), {
    name: 'KubeError',
    message: /no context "prod" \(it has: elsewhere, sandbox\); correct KUBE_CONTEXT/,
  });
  const down = createKube(sandboxConfig(fx, { KUBECONFIG: kubeconfig, KUBE_CONTEXT: 'elsewhere' }));
  await t.rejects(down.list('v1', 'Node'), {
    name: 'KubeError',
    status: 0,
    message: /failed: .*Check that the cluster is reachable: kubectl --context elsewhere/,
  });
  await t.rejects(createKube(cfg).list('example.com/v1', 'Widget'), {
    message: /serves no kind Widget in example.com\/v1/,
  });
});

t.test('a Secret value is registered for masking the moment it is read', async (t) => {
  const fx = await startTestSandbox(t);
  const kube = createKube(sandboxConfig(fx));
  const raw = await kube.get<KubeObject>('v1', 'Secret', 'beersystem-redis', 'beersystem');
  const password = await kube.secretValue('beersystem', 'beersystem-redis', 'redis-password');
  t.ok(password && password.length > 8);
  t.equal(Buffer.from(raw?.data['redis-password'], 'base64').toString(), password);
  t.equal(maskSecrets(`auth ${password}`), 'auth ***');
  t.equal(maskSecrets(raw?.data['redis-password']), '***', 'the base64 form too');
  t.equal(await kube.secretValue('beersystem', 'beersystem-redis', 'other-key'), undefined);
  t.equal(await kube.secretValue('beersystem', 'absent', 'redis-password'), undefined);
});

t.test('watchUntil resolves on the change it waits for, from a watch', async (t) => {
  const fx = await startTestSandbox(t);
  const kube = createKube(sandboxConfig(fx));
  const controller = new AbortController();
  t.teardown(() => controller.abort());
  let calls = 0;
  const threeReady = kube.watchUntil(
    '/apis/apps/v1/namespaces/beersystem/deployments',
    { fieldSelector: 'metadata.name=beersystem' },
    (objs) => {
      calls++;
      const dep = objs[0] && toDeploymentInfo(objs[0]);
      return dep && dep.readyReplicas === 3 ? dep : undefined;
    },
    controller.signal,
  );
  // The first evaluation (from the list) does not hold; only a watch event can end it now.
  await t.resolves(
    kube.watchUntil('/api/v1/namespaces/beersystem/pods', {}, () => true, controller.signal),
  );
  t.equal(calls, 1, 'evaluated once, on the list');
  await fx.kubectlOk(['scale', 'deployment', 'beersystem', '-n', 'beersystem', '--replicas=3']);
  const dep = await threeReady;
  t.equal(dep.readyReplicas, 3);
  t.ok(calls > 1, 'resolved by watch events');

  await t.test('pods gone: DELETED events remove objects', async (t) => {
    const gone = kube.watchUntil(
      '/api/v1/namespaces/beersystem/pods',
      { labelSelector: 'app=beersystem' },
      (objs) => objs.length === 0,
      controller.signal,
    );
    await fx.kubectlOk(['scale', 'deployment', 'beersystem', '-n', 'beersystem', '--replicas=0']);
    t.equal(await gone, true);
  });

  await t.test('an abort rejects the wait and closes its watch', async (t) => {
    const stop = new AbortController();
    let seen = 0;
    const never = kube.watchUntil(
      '/apis/apps/v1/namespaces/beersystem/deployments',
      {},
      () => {
        seen++;
        return undefined;
      },
      stop.signal,
    );
    await fx.kubectlOk(['annotate', 'deployment', 'beersystem', '-n', 'beersystem', 'a=1']);
    stop.abort(new Error('interrupted'));
    await t.rejects(never, { message: 'interrupted' });
    const before = seen;
    // A second watch sees the next change; the aborted one must not.
    const next = kube.watchUntil(
      '/apis/apps/v1/namespaces/beersystem/deployments',
      { fieldSelector: 'metadata.name=beersystem' },
      (objs) => objs[0]?.metadata.annotations?.a === '2',
      controller.signal,
    );
    await fx.kubectlOk([
      'annotate',
      'deployment',
      'beersystem',
      '-n',
      'beersystem',
      'a=2',
      '--overwrite',
    ]);
    await next;
    t.equal(seen, before, 'no event reached the aborted watch');
  });
});

t.test(
  'a watch the API server drops (a restart) is opened again and still sees the change',
  async (t) => {
    const fx = await startTestSandbox(t);
    const kube = createKube(sandboxConfig(fx));
    const controller = new AbortController();
    t.teardown(() => controller.abort());
    const dropWatches = async () =>
      (
        (await (
          await fetch(`${fx.sandbox.url}/sandbox/fault`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ args: ['drop-watches'] }),
          })
        ).json()) as { message: string }
      ).message;
    const annotated = kube.watchUntil(
      '/apis/apps/v1/namespaces/beersystem/deployments',
      { fieldSelector: 'metadata.name=beersystem' },
      (objs) => objs[0]?.metadata.annotations?.dropped === 'yes' || undefined,
      controller.signal,
    );
    // Dropped as soon as it is open (until then there is nothing to drop).
    let dropped = '';
    while (!/^[1-9]/.test(dropped)) {
      await new Promise((r) => setTimeout(r, 50));
      dropped = await dropWatches();
    }
    t.match(dropped, /^1 open watch\(es\) ended/, 'the wait’s watch was ended');
    await fx.kubectlOk(['annotate', 'deployment', 'beersystem', '-n', 'beersystem', 'dropped=yes']);
    t.equal(await annotated, true, 'the change made after the drop ends the wait');
  },
);

t.test('jobLogs reads the log of the Job’s pod; errors say what is missing', async (t) => {
  const fx = await startTestSandbox(t);
  const kube = createKube(sandboxConfig(fx));
  await fx.kubectlOk(
    ['apply', '--server-side', '-f', '-'],
    JSON.stringify({
      apiVersion: 'batch/v1',
      kind: 'Job',
      metadata: { name: 'probe', namespace: 'default' },
      spec: {
        backoffLimit: 0,
        template: {
          metadata: { annotations: { 'sandbox.runbooks/log': 'PONG' } },
          spec: { restartPolicy: 'Never', containers: [{ name: 'probe', image: 'redis:7' }] },
        },
      },
    }),
  );
  const controller = new AbortController();
  await kube.watchUntil(
    '/apis/batch/v1/namespaces/default/jobs',
    { fieldSelector: 'metadata.name=probe' },
    (objs) => objs[0]?.status?.succeeded === 1,
    controller.signal,
  );
  t.match(await kube.jobLogs('default', 'probe'), /PONG/);
  await t.rejects(kube.jobLogs('default', 'absent'), KubeError);
  const missing = await kube.podLogs('default', 'absent').catch((err: KubeError) => err);
  t.equal((missing as KubeError).status, 404);
  t.match((missing as KubeError).message, /pods\/absent\/log answered 404 NotFound/);
});
