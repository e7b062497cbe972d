// 01-setup → 04-monitoring in order against the sandbox with real workloads (real kubectl,
// redis-server, exporter, Prometheus, the tofu stand-in), each first with --dry-run (no
// mutating API request, no tofu apply), then for real, then again (every step verified-done,
// the journal unchanged). Then the failures an operator meets: a pod that never becomes Ready,
// an alert that never fires. No password in any output, log or file of these runs.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { POD } from '../../sandbox/workloads/kinds.ts';
import { runbookSandbox, stepStatuses } from '../helpers/runbook-sandbox.ts';
import { run as runCommand } from '../helpers/sandbox.ts';
import { secretPassword } from '../helpers/secret.ts';
import { eventually } from '../helpers/workloads-cluster.ts';
import { type SandboxFixture, startWholeSandbox } from '../helpers/workloads-sandbox.ts';

// Four runbooks three times each, two drills and two failure drills on real processes, with the
// machine's two cores shared.
t.setTimeout(1_200_000);

const PHASES = ['01-setup', '02-deploy', '03-access', '04-monitoring'] as const;
// The SC-002 drill holds the master down past the replica's liveness window (read from the
// cluster, about 31 s with the chart's timings): its default, as a real run would.
const EXTRA: Record<string, string[]> = {};

t.test('phases 1–4 against the sandbox', async (t) => {
  let fx: SandboxFixture | undefined;
  t.teardown(async () => {
    await fx?.close();
  });
  fx = await startWholeSandbox();
  await fx.sandbox.settled(30_000);
  const { sandbox, kubectl, runDir } = fx;
  const rb = runbookSandbox(runDir, sandbox);
  const tfstate = join(runDir, 'tofu', 'terraform.tfstate');

  for (const phase of PHASES) {
    await t.test(`${phase} --dry-run sends no mutation`, async (t) => {
      const before = rb.journal().length;
      const stateBefore = existsSync(tfstate) ? statSync(tfstate).mtimeMs : 0;
      const run = await rb.run(phase, ['--dry-run', '--json', ...(EXTRA[phase] ?? [])]);
      t.equal(run.code, 0, 'exit 0', run.code === 0 ? {} : { stderr: run.stderr });
      t.equal(run.summary?.outcome, 'ok');
      t.same(rb.journal().slice(before), [], 'no mutating API request');
      t.equal(existsSync(tfstate) ? statSync(tfstate).mtimeMs : 0, stateBefore, 'no tofu apply');
      if (phase === '02-deploy') {
        t.match(run.stderr, /would run: .*tofu apply .*redis-shared\.tfplan/);
        t.match(run.stderr, /create +the Helm release/, 'the plan is shown');
      }
    });

    await t.test(`${phase} runs for real`, async (t) => {
      const run = await rb.run(phase, ['--yes', '--json', ...(EXTRA[phase] ?? [])]);
      t.equal(run.code, 0, 'exit 0', run.code === 0 ? {} : { stderr: run.stderr });
      t.equal(run.summary?.outcome, 'ok');
      t.notMatch(
        stepStatuses(run).join('\n'),
        /failed|skipped|not-run/,
        stepStatuses(run).join(', '),
      );
      if (phase === '03-access') {
        for (const id of [
          'US1-AS-1',
          'US1-AS-2',
          'US1-AS-3',
          'SC-001',
          'US2-AS-1',
          'US2-AS-2',
          'US2-AS-3',
          'SC-003',
          'SC-004',
          'SC-008',
          'SC-007',
          'SC-002',
        ]) {
          t.match(
            run.stderr,
            new RegExp(`evidence ${id}: (met:|.*(: met|${id} met))`),
            `${id} met`,
          );
        }
        const outside = sandbox.network.outsideProbeSource.replaceAll('.', '\\.');
        t.match(
          run.stderr,
          new RegExp(`evidence SC-004: .*3/3 connections from ${outside} .* blocked`),
          'SC-004 proven by probes from the outside source',
        );
        t.same(
          JSON.parse(await kubectl(['get', 'jobs', '-n', 'beersystem', '-o', 'json'])).items,
          [],
          'the probe Jobs are deleted',
        );
      }
      if (phase === '04-monitoring') {
        for (const id of ['SC-005', 'US3-AS-1', 'US3-AS-3', 'US3-AS-2']) {
          t.match(
            run.stderr,
            new RegExp(`evidence ${id}: (met:|.*(: met|${id} met))`),
            `${id} met`,
          );
        }
      }
    });

    await t.test(`${phase} again: every step verified-done, the journal unchanged`, async (t) => {
      const before = rb.changes().length;
      const run = await rb.run(phase, ['--yes', '--json', ...(EXTRA[phase] ?? [])]);
      t.equal(run.code, 0, 'exit 0', run.code === 0 ? {} : { stderr: run.stderr });
      const statuses = stepStatuses(run);
      t.ok(statuses.length > 0);
      t.same(
        statuses.filter((s) => !s.endsWith(' verified-done')),
        [],
        'every step verified-done',
      );
      t.same(rb.changes().slice(before), [], 'no mutating API request');
    });
  }

  await t.test('02-deploy: a pod that never becomes Ready fails T014 with its state', async (t) => {
    // The replica's probes check only its own server (the module's fix for SC-002), so a
    // partition no longer makes it not Ready: its redis-server is paused instead. Its readiness
    // fails after about 25 s; liveness kills it only after its grace period (SIGTERM does not
    // reach a stopped process), so it stays not Ready long enough for T014's 6 s wait.
    let pid = 0;
    for (const entry of readdirSync(join(runDir, 'pids'))) {
      const [, name] = readFileSync(join(runDir, 'pids', entry), 'utf8').split('\n');
      if (name === 'redis/redis-shared-replicas-0') pid = Number(entry);
    }
    t.ok(pid > 0, 'the replica has a process');
    process.kill(pid, 'SIGSTOP');
    const replicaReady = () =>
      fx!
        .object(POD, 'redis', 'redis-shared-replicas-0')
        .status?.conditions?.find((c: { type: string }) => c.type === 'Ready')?.status;
    const resume = () => {
      try {
        process.kill(pid, 'SIGCONT');
      } catch {
        // Gone: the kubelet restarted it.
      }
    };
    t.teardown(resume);
    await eventually(
      'the paused replica not Ready',
      () => replicaReady() === 'False' || undefined,
      60_000,
    );
    const run = await rb.run('02-deploy', ['--only', 'T014', '--json'], { WAIT_TIMEOUT: '6s' });
    t.equal(run.code, 1, 'exit 1', run.code === 1 ? {} : { stderr: run.stderr });
    t.match(
      run.stderr,
      /timed out after 6\.0s waiting for redis\/redis-shared-replicas-0 Ready \(last seen: redis-shared-replicas-0: Running, ready false/,
    );
    t.match(run.stderr, /kubectl describe pod redis-shared-replicas-0 -n redis/);
    resume();
    await eventually(
      'the replica Ready again',
      () => replicaReady() === 'True' || undefined,
      60_000,
    );
  });

  await t.test(
    '04-monitoring: an alert that never fires fails the drill, and the replica is restored',
    async (t) => {
      const rule = JSON.parse(
        await kubectl(['get', 'prometheusrule', 'redis-shared', '-n', 'monitoring', '-o', 'json']),
      );
      for (const group of rule.spec.groups) {
        for (const r of group.rules)
          if (r.alert === 'RedisNoReplicaConnected') r.expr = 'vector(0) > 1';
      }
      // Not execFileSync: the sandbox's API server runs in this process and must keep answering.
      const replaced = await runCommand(
        'kubectl',
        ['replace', '--validate=false', '-f', '-'],
        fx!.env,
        JSON.stringify(rule),
      );
      t.equal(replaced.code, 0, replaced.stderr);
      await eventually(
        'Prometheus to load the changed rule',
        async () => {
          // what `kubectl get --raw` of this path reads, without a kubectl each look
          const rules = await (
            await fetch(
              `${sandbox.url}/api/v1/namespaces/monitoring/services/kube-prometheus-stack-prometheus:9090/proxy/api/v1/rules`,
            )
          ).json();
          const loaded = rules.data.groups
            .flatMap((g: { rules: { name: string; query: string }[] }) => g.rules)
            .find((r: { name: string }) => r.name === 'RedisNoReplicaConnected');
          return loaded?.query === 'vector(0) > 1' || undefined;
        },
        60_000,
      );
      const run = await rb.run('04-monitoring', [
        '--only',
        'T025-AS2',
        '--recheck',
        '--yes',
        '--json',
      ]);
      t.equal(run.code, 1, 'exit 1', run.code === 1 ? {} : { stderr: run.stderr });
      t.match(run.stderr, /RedisNoReplicaConnected did not go pending or firing within/);
      t.match(run.stderr, /evidence US3-AS-2: .*did not fire within .*: NOT met/);
      t.equal(
        (
          await kubectl([
            'get',
            'statefulset',
            'redis-shared-replicas',
            '-n',
            'redis',
            '-o',
            'jsonpath={.spec.replicas}',
          ])
        ).trim(),
        '1',
        'the drill gave the replica back',
      );
    },
  );

  await t.test('no password in any output, log or file of these runs', async (t) => {
    const password = await secretPassword(kubectl, 'redis');
    t.ok(password.length >= 32, 'the generated password was read for the scan');
    for (const run of rb.runs) {
      t.notOk(
        run.stdout.includes(password) || run.stderr.includes(password),
        `not in the output of ${run.args.join(' ')}`,
      );
    }
    t.notOk(readFileSync(rb.auditLog, 'utf8').includes(password), 'not in the audit log');
    const files = (dir: string): string[] =>
      existsSync(dir)
        ? readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
            e.isDirectory() ? files(join(dir, e.name)) : [join(dir, e.name)],
          )
        : [];
    for (const file of [...files(join(runDir, 'backups')), ...files(join(runDir, 'reports'))]) {
      t.notOk(readFileSync(file, 'utf8').includes(password), `not in ${file}`);
    }
  });
});
