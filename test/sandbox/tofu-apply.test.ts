// The tofu stand-in applied to the sandbox's API half (pods run by the fake runtime):
// plan/show/apply of a saved plan, variables, -target, the migration switch, destroy.
// test/sandbox/workloads-e2e.test.ts applies it to real workloads.
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { gunzipSync } from 'node:zlib';
import t from 'tap';
import { type Sandbox, startSandbox } from '../../sandbox/server.ts';
import { secretPassword } from '../helpers/secret.ts';
import { ENVIRONMENT_DIR, sandboxVars, TOFU } from '../helpers/workloads-sandbox.ts';

const run = promisify(execFile);
// Real processes and a dozen tofu/kubectl runs: more than the default per-file timeout when
// the machine's two cores are shared with other suites.
t.setTimeout(480_000);

t.test('tofu stand-in against the sandbox API', async (t) => {
  const runDir = mkdtempSync(join(tmpdir(), 'sandbox-tofu-'));
  let sandbox: Sandbox | undefined;
  t.teardown(async () => {
    await sandbox?.stop();
    rmSync(runDir, { recursive: true, force: true });
  });
  sandbox = await startSandbox({ runDir, podReadyDelayMs: 20 });
  const net = sandbox.network;
  const SANDBOX_VARS = sandboxVars(net);
  const env = {
    ...process.env,
    KUBECONFIG: sandbox.kubeconfigPath,
    SANDBOX_RUN_DIR: runDir,
    KUBECACHEDIR: join(runDir, 'kc'),
  };
  const tofu = (args: string[], extraEnv: Record<string, string> = {}) =>
    run(TOFU, args, { env: { ...env, ...extraEnv }, cwd: ENVIRONMENT_DIR }).then(
      (r) => ({ ...r, code: 0 }),
      (e: { stdout: string; stderr: string; code: number }) => ({
        stdout: e.stdout,
        stderr: e.stderr,
        code: e.code,
      }),
    );
  const kubectl = async (args: string[]) => (await run('kubectl', args, { env })).stdout;

  await t.test('it applies only to the sandbox, in the named context', async (t) => {
    const noContext = await tofu([
      'plan',
      '-var',
      `lb_ip=${net.redisLbIp}`,
      '-var',
      `private_cidr=${net.privateCidr}`,
    ]);
    t.equal(noContext.code, 1);
    t.match(
      noContext.stderr,
      /no context "chocolandiadc-mvp" \(variable kube_context; contexts there: sandbox\)/,
    );
    // A server that is not the sandbox's emulator, as a real cluster would be.
    const other = createServer((_req, res) => {
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end('{"kind":"Status","code":404}');
    });
    await new Promise<void>((r) => other.listen(0, '127.0.0.1', () => r()));
    t.teardown(() => {
      if (other.listening) other.close();
    });
    const kubeconfig = join(runDir, 'other.kubeconfig');
    const port = (other.address() as AddressInfo).port;
    writeFileSync(
      kubeconfig,
      readFileSync(sandbox!.kubeconfigPath, 'utf8').replace(
        /server: .*/,
        `server: http://127.0.0.1:${port}`,
      ),
    );
    const refused = await tofu(['apply', '-auto-approve', ...SANDBOX_VARS], {
      KUBECONFIG: kubeconfig,
      SANDBOX_RUN_DIR: join(runDir, 'elsewhere'),
    });
    t.equal(refused.code, 1);
    t.match(refused.stderr, /is not the sandbox: this tofu is the sandbox's stand-in/);
    // Nothing listens there any more: a sandbox that is down.
    await new Promise<void>((r) => other.close(() => r()));
    const down = await tofu(['apply', '-auto-approve', ...SANDBOX_VARS], {
      KUBECONFIG: kubeconfig,
      SANDBOX_RUN_DIR: join(runDir, 'elsewhere'),
    });
    t.equal(down.code, 1);
    t.match(down.stderr, /cannot reach the cluster at .*Start it with `npm run sandbox -- up`/);
  });

  const planFile = join(runDir, 'redis.tfplan');
  await t.test('plan -out, show -json, apply of the saved plan', async (t) => {
    const journal = () =>
      existsSync(sandbox!.journalPath) ? readFileSync(sandbox!.journalPath, 'utf8') : '';
    const before = journal();
    const plan = await tofu(['plan', '-input=false', ...SANDBOX_VARS, `-out=${planFile}`]);
    t.equal(journal(), before, 'plan sends no mutating request (the journal is unchanged)');
    t.match(plan.stdout, /Plan: 8 to add, 0 to change, 0 to destroy\./);
    const shown = JSON.parse((await tofu(['show', '-json', planFile])).stdout);
    const addresses = shown.resource_changes.map(
      (c: { address: string; change: { actions: string[] } }) =>
        `${c.address} ${c.change.actions.join(',')}`,
    );
    t.ok(addresses.includes('module.redis_shared.helm_release.redis_shared create'));
    t.ok(
      addresses.includes(
        'module.redis_shared.kubernetes_secret_v1.credentials["beersystem"] create',
      ),
    );
    const applied = await tofu(['apply', planFile]);
    t.equal(applied.code, 0, applied.stderr);
    t.match(applied.stdout, /Apply complete! Resources: 8 added, 0 changed, 0 destroyed\./);
    t.equal((await tofu(['apply', planFile])).code, 1, 'a saved plan applies once');
    t.match(
      await kubectl(['get', 'statefulset', '-n', 'redis', '-o', 'name']),
      /redis-shared-master[\s\S]*redis-shared-replicas/,
    );
    t.match(
      await kubectl([
        'get',
        'svc',
        'redis-shared-external',
        '-n',
        'redis',
        '-o',
        'jsonpath={.spec.loadBalancerSourceRanges[0]} {.metadata.annotations.metallb\\.io/loadBalancerIPs} {.metadata.annotations.metallb\\.io/address-pool} [{.spec.loadBalancerIP}]',
      ]),
      `${net.privateCidr} ${net.redisLbIp} eero-pool []`,
      'address and pool as metallb.io annotations only: MetalLB refuses spec.loadBalancerIP beside them',
    );
    t.equal(
      await kubectl([
        'get',
        'svc',
        'redis-shared-external',
        '-n',
        'redis',
        '-o',
        'jsonpath={.status.loadBalancer.ingress[0].ip} {.metadata.annotations.metallb\\.io/ip-allocated-from-pool}',
      ]),
      `${net.redisLbIp} eero-pool`,
      'MetalLB gave it the address',
    );
    t.match(
      await kubectl(['get', 'networkpolicy,pdb', '-n', 'redis', '-o', 'name']),
      /networkpolicy.networking.k8s.io\/redis-shared\n[\s\S]*poddisruptionbudget.policy\/redis-shared-master\npoddisruptionbudget.policy\/redis-shared-replicas/,
      "the chart's NetworkPolicy and PodDisruptionBudgets",
    );
    const release = JSON.parse(
      await kubectl([
        'get',
        'secret',
        'sh.helm.release.v1.redis-shared.v1',
        '-n',
        'redis',
        '-o',
        'json',
      ]),
    );
    t.equal(release.type, 'helm.sh/release.v1');
    t.same(release.metadata.labels, {
      name: 'redis-shared',
      owner: 'helm',
      status: 'deployed',
      version: '1',
    });
    const record = JSON.parse(
      gunzipSync(
        Buffer.from(Buffer.from(release.data.release, 'base64').toString(), 'base64'),
      ).toString(),
    );
    t.equal(record.chart.metadata.version, '23.1.1', 'the release records the chart version');
    t.equal(record.info.status, 'deployed');
    const state = join(runDir, 'tofu', 'terraform.tfstate');
    t.equal(statSync(state).mode & 0o777, 0o600, 'the state (which holds the password) is 0600');
    const password = JSON.parse(readFileSync(state, 'utf8')).password as string;
    t.match(password, /^[A-Za-z0-9]{32}$/);
    const secrets = ['redis', 'beersystem'].map((ns) => secretPassword(kubectl, ns));
    t.same(
      await Promise.all(secrets),
      [password, password],
      'the same password in both namespaces',
    );
    t.notMatch(plan.stdout + applied.stdout, password);
    const outputs = JSON.parse((await tofu(['output', '-json'])).stdout);
    t.equal(outputs.redis_master_service_dns.value, 'redis-shared-master.redis.svc.cluster.local');
    t.equal(outputs.redis_lb_ip.value, net.redisLbIp);
    t.equal((await tofu(['output', '-raw', 'redis_port'])).stdout.trim(), '6379');
    t.match(
      (await tofu(['state', 'list', 'module.redis_shared.kubernetes_secret_v1'])).stdout,
      /^module\.redis_shared\.kubernetes_secret_v1\.credentials\["beersystem"\]\nmodule\.redis_shared\.kubernetes_secret_v1\.credentials\["redis"\]\n$/,
    );
  });

  await t.test('no changes; variables from a var file and TF_VAR_; -target', async (t) => {
    const same = await tofu(['plan', '-detailed-exitcode', ...SANDBOX_VARS]);
    t.equal(same.code, 0);
    t.match(same.stdout, /No changes\./);
    const varFile = join(runDir, 'sandbox.tfvars');
    writeFileSync(
      varFile,
      `lb_ip = "${net.redisLbIp}"\nprivate_cidr = "${net.privateCidr}"\nkube_context = "sandbox"\n`,
    );
    const more = await tofu(['plan', '-detailed-exitcode', `-var-file=${varFile}`], {
      TF_VAR_replica_count: '2',
    });
    t.equal(more.code, 2, 'changes give exit code 2 with -detailed-exitcode');
    t.match(
      more.stdout,
      /# module\.redis_shared\.helm_release\.redis_shared will be updated in-place/,
    );
    t.match(more.stdout, /Plan: 0 to add, 1 to change, 0 to destroy\./);
    const targeted = await tofu([
      'apply',
      '-auto-approve',
      ...SANDBOX_VARS,
      '-var',
      'replica_count=2',
      '-target=module.redis_shared.helm_release.redis_shared',
    ]);
    t.match(targeted.stdout, /0 added, 1 changed, 0 destroyed/);
    t.equal(
      await kubectl([
        'get',
        'statefulset',
        'redis-shared-replicas',
        '-n',
        'redis',
        '-o',
        'jsonpath={.spec.replicas}',
      ]),
      '2',
    );
    await tofu(['apply', '-auto-approve', ...SANDBOX_VARS]);
    t.equal(
      await kubectl([
        'get',
        'statefulset',
        'redis-shared-replicas',
        '-n',
        'redis',
        '-o',
        'jsonpath={.spec.replicas}',
      ]),
      '1',
    );
  });

  await t.test(
    '-replace of the password: a replace by request, both Secret copies updated with the new value',
    async (t) => {
      const before = await secretPassword(kubectl, 'redis');
      const address = 'module.redis_shared.random_password.redis';
      const planned = await tofu([
        'plan',
        ...SANDBOX_VARS,
        `-replace=${address}`,
        '-target=module.redis_shared.random_password.redis',
        '-target=module.redis_shared.kubernetes_secret_v1.credentials',
        '-out=replace.tfplan',
      ]);
      t.equal(planned.code, 0, planned.stderr);
      t.match(
        planned.stdout,
        /# module\.redis_shared\.random_password\.redis will be replaced, as requested/,
      );
      t.match(planned.stdout, /Plan: 1 to add, 2 to change, 1 to destroy\./);
      const shown = JSON.parse((await tofu(['show', '-json', 'replace.tfplan'])).stdout);
      const password = shown.resource_changes.find(
        (c: { address: string }) => c.address === address,
      );
      t.same(password.change.actions, ['delete', 'create']);
      t.equal(password.action_reason, 'replace_by_request');
      t.notOk(planned.stdout.includes(before), 'the plan does not show the password');
      const applied = await tofu(['apply', 'replace.tfplan']);
      t.match(applied.stdout, /1 added, 2 changed, 1 destroyed/);
      const after = await secretPassword(kubectl, 'redis');
      t.not(after, before, 'a new password');
      t.equal(await secretPassword(kubectl, 'beersystem'), after, 'the same in both copies');
      const again = await tofu(['plan', '-detailed-exitcode', ...SANDBOX_VARS]);
      t.equal(again.code, 0, 'nothing left to change');
    },
  );

  await t.test(
    'the migration switch: true sets the env; false releases it without restoring, and is refused until the old values are back',
    async (t) => {
      const envOf = async () =>
        JSON.parse(
          await kubectl([
            'get',
            'deployment',
            'beersystem',
            '-n',
            'beersystem',
            '-o',
            'jsonpath={.spec.template.spec.containers[0].env}',
          ]),
        );
      const restore = (env: unknown) =>
        kubectl([
          'patch',
          'deployment',
          'beersystem',
          '-n',
          'beersystem',
          '--type=json',
          '-p',
          JSON.stringify([
            { op: 'replace', path: '/spec/template/spec/containers/0/env', value: env },
          ]),
        ]);
      const before = await envOf();
      const migrate = ['apply', '-auto-approve', ...SANDBOX_VARS, '-var'];

      // A literal REDIS_PASSWORD would end up beside the secretKeyRef: the module refuses first.
      await kubectl([
        'set',
        'env',
        'deployment/beersystem',
        '-n',
        'beersystem',
        'REDIS_PASSWORD=literal',
      ]);
      const literal = await tofu([...migrate, 'enable_beersystem_migration=true']);
      t.equal(literal.code, 1);
      t.match(literal.stderr, /Resource precondition failed/);
      t.match(
        literal.stderr,
        /REDIS_PASSWORD of container beersystem in Deployment beersystem\/beersystem is a literal value: the API refuses an env var with both value and valueFrom/,
      );
      t.match(
        (await envOf()).find((e: { name: string }) => e.name === 'REDIS_PASSWORD'),
        {
          value: 'literal',
        },
      );
      await restore(before);

      const on = await tofu([...migrate, 'enable_beersystem_migration=true']);
      t.equal(on.code, 0, on.stderr);
      const migrated = await envOf();
      t.same(
        migrated.find((e: { name: string }) => e.name === 'REDIS_HOST'),
        { name: 'REDIS_HOST', value: 'redis-shared-master.redis.svc.cluster.local' },
      );
      t.same(
        migrated.find((e: { name: string }) => e.name === 'REDIS_PASSWORD').valueFrom.secretKeyRef,
        { name: 'redis-credentials', key: 'redis-password' },
      );
      const managers = JSON.parse(
        await kubectl([
          'get',
          'deployment',
          'beersystem',
          '-n',
          'beersystem',
          '-o',
          'json',
          '--show-managed-fields',
        ]),
      ).metadata.managedFields.map(
        (m: { manager: string; operation: string }) => `${m.manager} ${m.operation}`,
      );
      t.ok(
        managers.includes('Terraform Apply'),
        'kubernetes_env applies as field manager Terraform',
      );
      t.equal(
        JSON.parse((await tofu(['output', '-json'])).stdout).beersystem_redis_host.value,
        'redis-shared-master.redis.svc.cluster.local',
      );

      // false alone: the provider applies an empty env; secretKeyRef.name, which only Terraform
      // owns, would go and leave a reference without a name, which the API refuses.
      const refused = await tofu([...migrate, 'enable_beersystem_migration=false']);
      t.equal(refused.code, 1);
      t.match(
        refused.stderr,
        /spec\.template\.spec\.containers\[0\]\.env\[2\]\.valueFrom\.secretKeyRef\.name: Invalid value: "": a lowercase RFC 1123 subdomain/,
      );
      t.same(await envOf(), migrated, 'nothing changed');

      // 05 --rollback: the backed-up values first (an Update, which takes the fields over), then
      // false releases what Terraform still co-owns and removes nothing.
      await restore(before);
      const back = await tofu([...migrate, 'enable_beersystem_migration=false']);
      t.equal(back.code, 0, back.stderr);
      t.match(back.stdout, /0 added, 0 changed, 1 destroyed/);
      t.same(await envOf(), before, 'the restored values stay');
    },
  );

  await t.test("validation blocks refuse bad values with the modules' messages", async (t) => {
    const publicCidr = await tofu([
      'plan',
      '-var',
      'kube_context=sandbox',
      '-var',
      'lb_ip=8.8.8.203',
      '-var',
      'private_cidr=8.8.8.0/24',
    ]);
    t.equal(publicCidr.code, 1);
    t.match(publicCidr.stderr, /Error: Invalid value for variable/);
    t.match(publicCidr.stderr, /module\.redis_shared\.var\.private_cidr is "8\.8\.8\.0\/24"/);
    t.match(
      publicCidr.stderr,
      /private_cidr must lie inside an RFC 1918 private range \(10\/8, 172\.16\/12, 192\.168\/16\) or loopback \(127\/8\)/,
    );
    const outside = await tofu(['validate', ...SANDBOX_VARS, '-var', 'lb_ip=127.1.0.203']);
    t.equal(outside.code, 1);
    t.match(outside.stderr, /lb_ip must lie inside private_cidr/);
    const root = await tofu(['validate', ...SANDBOX_VARS, '-var', 'replica_namespaces=["redis"]']);
    t.equal(root.code, 1);
    t.match(
      root.stderr,
      /var\.beersystem_namespace is "beersystem"[\s\S]*beersystem_namespace must be one of replica_namespaces/,
    );
    t.equal((await tofu(['validate', ...SANDBOX_VARS])).code, 0, 'the sandbox values pass');
  });

  await t.test(
    'destroy is refused: the namespace holds the data, the Secrets are in use',
    async (t) => {
      const journal = () =>
        existsSync(sandbox!.journalPath) ? readFileSync(sandbox!.journalPath, 'utf8') : '';
      const before = journal();
      const destroyed = await tofu(['destroy', '-auto-approve', ...SANDBOX_VARS]);
      t.equal(destroyed.code, 1);
      t.match(destroyed.stderr, /Error: Instance cannot be destroyed/);
      for (const guarded of [
        'module.redis_shared.kubernetes_namespace_v1.redis',
        'module.redis_shared.kubernetes_secret_v1.credentials["beersystem"]',
      ]) {
        t.match(
          destroyed.stderr,
          `Resource ${guarded} has lifecycle.prevent_destroy set, but the plan calls for this resource to be destroyed.`,
        );
      }
      t.equal(journal(), before, 'nothing was deleted');
      t.match(await kubectl(['get', 'namespaces', '-o', 'name']), /namespace\/redis\n/);
    },
  );
});
