// The tofu stand-in applied to the sandbox's API half (pods run by the fake runtime):
// plan/show/apply of a saved plan, variables, -target, the migration switch, destroy.
// test/sandbox-workloads-e2e.test.ts applies it to real workloads.
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import { type Sandbox, startSandbox } from '../sandbox/server.ts';
import { ENVIRONMENT_DIR, SANDBOX_VARS, TOFU } from './helpers/workloads-sandbox.ts';

const run = promisify(execFile);
// Real processes and a dozen tofu/kubectl runs: more than the default per-file timeout when
// the machine's two cores are shared with other suites.
t.setTimeout(240_000);

t.test('tofu stand-in against the sandbox API', async (t) => {
  const runDir = mkdtempSync(join(tmpdir(), 'sandbox-tofu-'));
  let sandbox: Sandbox | undefined;
  t.teardown(async () => {
    await sandbox?.stop();
    rmSync(runDir, { recursive: true, force: true });
  });
  sandbox = await startSandbox({ runDir, podReadyDelayMs: 20 });
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
      'lb_ip=127.0.0.203',
      '-var',
      'private_cidr=127.0.0.0/24',
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
        'jsonpath={.spec.loadBalancerSourceRanges[0]} {.metadata.annotations.metallb\\.universe\\.tf/loadBalancerIPs}',
      ]),
      '127.0.0.0/24 127.0.0.203',
    );
    const state = join(runDir, 'tofu', 'terraform.tfstate');
    t.equal(statSync(state).mode & 0o777, 0o600, 'the state (which holds the password) is 0600');
    const password = JSON.parse(readFileSync(state, 'utf8')).password as string;
    t.match(password, /^[A-Za-z0-9]{32}$/);
    const secrets = ['redis', 'beersystem'].map(async (ns) =>
      Buffer.from(
        await kubectl([
          'get',
          'secret',
          'redis-credentials',
          '-n',
          ns,
          '-o',
          'jsonpath={.data.redis-password}',
        ]),
        'base64',
      ).toString(),
    );
    t.same(
      await Promise.all(secrets),
      [password, password],
      'the same password in both namespaces',
    );
    t.notMatch(plan.stdout + applied.stdout, password);
    const outputs = JSON.parse((await tofu(['output', '-json'])).stdout);
    t.equal(outputs.redis_master_service_dns.value, 'redis-shared-master.redis.svc.cluster.local');
    t.equal(outputs.redis_lb_ip.value, '127.0.0.203');
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
      'lb_ip = "127.0.0.203"\nprivate_cidr = "127.0.0.0/24"\nkube_context = "sandbox"\n',
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

  await t.test('the migration switch sets beersystem env and gives it back', async (t) => {
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
    const before = await envOf();
    await tofu([
      'apply',
      '-auto-approve',
      ...SANDBOX_VARS,
      '-var',
      'enable_beersystem_migration=true',
    ]);
    const migrated = await envOf();
    t.same(
      migrated.find((e: { name: string }) => e.name === 'REDIS_HOST'),
      { name: 'REDIS_HOST', value: 'redis-shared-master.redis.svc.cluster.local' },
    );
    t.same(
      migrated.find((e: { name: string }) => e.name === 'REDIS_PASSWORD').valueFrom.secretKeyRef,
      { name: 'redis-credentials', key: 'redis-password' },
    );
    t.equal(
      JSON.parse((await tofu(['output', '-json'])).stdout).beersystem_redis_host.value,
      'redis-shared-master.redis.svc.cluster.local',
    );
    const back = await tofu([
      'apply',
      '-auto-approve',
      ...SANDBOX_VARS,
      '-var',
      'enable_beersystem_migration=false',
    ]);
    t.match(back.stdout, /0 added, 0 changed, 1 destroyed/);
    t.same(await envOf(), before, 'turning it off restores the old env');
  });

  await t.test('destroy removes what apply created', async (t) => {
    const destroyed = await tofu(['destroy', '-auto-approve', ...SANDBOX_VARS]);
    t.match(destroyed.stdout, /Destroy complete! Resources: 8 destroyed\./);
    t.match(await kubectl(['get', 'namespaces', '-o', 'name']), /^(?![\s\S]*namespace\/redis\n)/);
    t.equal(
      await kubectl([
        'get',
        'secret',
        '-n',
        'beersystem',
        '-l',
        'app.kubernetes.io/part-of=redis-shared',
        '-o',
        'name',
      ]),
      '',
    );
    t.match((await tofu(['plan', ...SANDBOX_VARS])).stdout, /Plan: 8 to add/);
  });
});
