// What 01-setup and 02-deploy do when the cluster is not ready or the operator did not confirm,
// on the sandbox's API (real kubectl and client-node, the tofu stand-in; no pod processes are
// needed, so the fake runtime): every preflight failure named at once with exit 1 and nothing
// changed; no --yes without a terminal refused with exit 2 and nothing changed.
import { cpSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { runbookSandbox, stepStatuses } from '../helpers/runbook-sandbox.ts';
import { startTestSandbox } from '../helpers/sandbox.ts';
import { REPO } from '../helpers/workloads-sandbox.ts';

t.setTimeout(480_000);

t.test('01-setup and 02-deploy refuse with the reason', async (t) => {
  const fx = await startTestSandbox(t);
  const rb = runbookSandbox(fx.dir, fx.sandbox, {
    WAIT_TIMEOUT: '20s',
  });
  const crd = await fx.kubectlOk([
    'get',
    'crd',
    'servicemonitors.monitoring.coreos.com',
    '-o',
    'json',
  ]);

  await t.test(
    'a missing CRD and the LB address held by another Service: 01 lists both, exit 1',
    async (t) => {
      await fx.kubectlOk(['delete', 'crd', 'servicemonitors.monitoring.coreos.com']);
      const squatter = {
        apiVersion: 'v1',
        kind: 'Service',
        metadata: { name: 'squatter', namespace: 'default' },
        spec: {
          type: 'LoadBalancer',
          loadBalancerIP: fx.sandbox.network.redisLbIp,
          ports: [{ port: 6379 }],
        },
      };
      await fx.kubectlOk(['create', '-f', '-'], JSON.stringify(squatter));
      const before = rb.changes().length;
      const run = await rb.run('01-setup', ['--json']);
      t.equal(run.code, 1, 'exit 1', run.code === 1 ? {} : { stderr: run.stderr });
      t.match(run.stderr, /2 preflight checks failed; nothing was changed:/);
      t.match(run.stderr, /P05: CRD missing: servicemonitors\.monitoring\.coreos\.com/);
      t.match(run.stderr, /fix: install the Prometheus Operator/);
      t.match(run.stderr, /P07: 127\.0\.0\.203 is already held by default\/squatter/);
      t.same(rb.changes().slice(before), [], 'nothing was changed');
      t.match(stepStatuses(run).join(','), /P13 failed/);
    },
  );

  await t.test('fixed, 01 passes', async (t) => {
    await fx.kubectlOk(['delete', 'service', 'squatter', '-n', 'default']);
    const restored = JSON.parse(crd);
    delete restored.metadata.resourceVersion;
    delete restored.metadata.uid;
    delete restored.metadata.creationTimestamp;
    await fx.kubectlOk(['create', '-f', '-'], JSON.stringify(restored));
    const run = await rb.run('01-setup', ['--json']);
    t.equal(run.code, 0, 'exit 0', run.code === 0 ? {} : { stderr: run.stderr });
    t.match(
      run.stderr,
      /beersystem: 1 replica\(s\).*REDIS_HOST=redis\.beersystem\.svc\.cluster\.local/,
    );
  });

  await t.test('02 without --yes and without a terminal: exit 2, nothing changed', async (t) => {
    const before = rb.changes().length;
    const run = await rb.run('02-deploy', ['--json']);
    t.equal(run.code, 2, 'exit 2', run.code === 2 ? {} : { stderr: run.stderr });
    t.match(run.stderr, /--yes/);
    t.same(rb.changes().slice(before), [], 'nothing was changed');
  });

  await t.test('a tfvars file naming another context: 02 refuses before planning', async (t) => {
    // A copy of terraform/ whose terraform.tfvars was copied from an old example.
    cpSync(join(REPO, 'terraform'), join(fx.dir, 'terraform'), { recursive: true });
    const tofuDir = join(fx.dir, 'terraform', 'environments', 'chocolandiadc-mvp');
    writeFileSync(join(tofuDir, 'terraform.tfvars'), 'kube_context = "chocolandiadc-mvp"\n');
    const run = await rb.run('02-deploy', ['--yes', '--json'], { TOFU_DIR: tofuDir });
    t.equal(run.code, 1, 'exit 1', run.code === 1 ? {} : { stderr: run.stderr });
    t.match(
      run.stderr,
      /terraform\.tfvars sets kube_context = "chocolandiadc-mvp", but this run is pinned to context "sandbox".*nothing was planned/,
    );
    const ns = await fx.kubectl(['get', 'namespace', 'redis']);
    t.not(ns.code, 0, 'nothing was applied: no redis namespace');
  });
});

t.test(
  '01-setup refuses an old MetalLB, an active K3s ServiceLB, an unannounced pool and a pool that shuts redis out, naming each fix',
  async (t) => {
    const fx = await startTestSandbox(t, { metallbVersion: 'v0.14.8', serviceLb: true });
    const rb = runbookSandbox(fx.dir, fx.sandbox, {
      WAIT_TIMEOUT: '20s',
    });
    await fx.kubectlOk(['delete', 'l2advertisement', 'eero-l2', '-n', 'metallb-system']);
    await fx.kubectlOk([
      'patch',
      'ipaddresspool',
      'eero-pool',
      '-n',
      'metallb-system',
      '--type=merge',
      '-p',
      JSON.stringify({ spec: { serviceAllocation: { namespaces: ['default'] } } }),
    ]);
    const before = rb.changes().length;
    const run = await rb.run('01-setup', ['--json']);
    t.equal(run.code, 1, 'exit 1', run.code === 1 ? {} : { stderr: run.stderr });
    t.match(
      run.stderr,
      /MetalLB controller metallb-system\/controller is v0\.14\.8: before v0\.14\.9 it ignores/,
    );
    t.match(run.stderr, /upgrade MetalLB to v0\.14\.9 or later/);
    t.match(run.stderr, /K3s ServiceLB is active \(DaemonSet kube-system\/svclb-/);
    t.match(run.stderr, /--disable servicelb/);
    t.match(run.stderr, /no L2Advertisement or BGPAdvertisement announces pool eero-pool/);
    t.match(run.stderr, /"kind":"L2Advertisement"/);
    t.match(
      run.stderr,
      /pool eero-pool's serviceAllocation does not admit the Service: namespace redis/,
    );
    t.match(run.stderr, /add redis to spec\.serviceAllocation\.namespaces of pool eero-pool/);
    t.same(rb.changes().slice(before), [], 'nothing was changed');
  },
);
