// The sandbox's kubelet runs the probes the chart renders (startup, liveness, readiness; an exec
// probe emulated by what its health script checks): readiness takes a pod out of its Services'
// endpoints and out of headless DNS, a failed liveness probe restarts the container and counts
// restartCount. With the chart's default replica probes (which also ping the master), stopping
// the master makes the replica not Ready and restarted, as on a real cluster (issue: SC-002).
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { parse as parseYaml, stringify as toYaml } from 'yaml';
import { chartObjects } from '../../sandbox/tofu/chart.ts';
import { renderTemplate } from '../../sandbox/tofu/template.ts';
import { ENDPOINTS, POD } from '../../sandbox/workloads/kinds.ts';
import { loadModule, REDIS_SHARED_DIR, resolveValue } from '../helpers/terraform-hcl.ts';
import { eventually } from '../helpers/workloads-cluster.ts';
import { type SandboxFixture, startWholeSandbox } from '../helpers/workloads-sandbox.ts';

t.setTimeout(300_000);

// biome-ignore lint/suspicious/noExplicitAny: manifests as YAML
type Any = any;

/** The module's values with the replica's probes as the chart defaults them (the module's own fix removed). */
async function chartDefaultProbeValues(): Promise<Any> {
  const mod = await loadModule(REDIS_SHARED_DIR);
  const vars = resolveValue(mod, mod.locals.values_template_vars) as Record<string, unknown>;
  const values = parseYaml(
    renderTemplate(readFileSync(join(REDIS_SHARED_DIR, 'values.yaml.tftpl'), 'utf8'), vars),
  ) as Any;
  delete values.replica.customLivenessProbe;
  delete values.replica.customReadinessProbe;
  return values;
}

/** The PID of a pod's main process, from the supervisor's records. */
function mainPid(runDir: string, pod: string): number {
  for (const entry of readdirSync(join(runDir, 'pids'))) {
    const [, name] = readFileSync(join(runDir, 'pids', entry), 'utf8').split('\n');
    if (name === pod) return Number(entry);
  }
  throw new Error(`no process for ${pod}`);
}

t.test('the kubelet runs the chart probes', async (t) => {
  let fx: SandboxFixture | undefined;
  t.teardown(async () => {
    await fx?.close();
  });
  fx = await startWholeSandbox();
  const { kubectl, runDir } = fx;
  await fx.sandbox.settled(30_000);
  const values = await chartDefaultProbeValues();
  const objects = chartObjects({
    name: 'redis-shared',
    namespace: 'redis',
    chartVersion: '23.1.1',
    values,
  });
  await kubectl(['create', 'namespace', 'redis']);
  const passwordFile = join(runDir, 'password');
  writeFileSync(passwordFile, 'kubelet-probes-test-password-01', { mode: 0o600 });
  await kubectl([
    'create',
    'secret',
    'generic',
    'redis-credentials',
    '-n',
    'redis',
    `--from-file=redis-password=${passwordFile}`,
  ]);
  const manifest = join(runDir, 'chart.yaml');
  writeFileSync(manifest, objects.map((o) => `---\n${toYaml(o)}`).join(''));
  await kubectl(['apply', '-f', manifest]);
  const pod = async (name: string): Promise<Any> => fx!.object(POD, 'redis', name);
  const ready = (p: Any) =>
    p.status?.conditions?.find((c: Any) => c.type === 'Ready')?.status === 'True';
  const restarts = (p: Any) => Number(p.status?.containerStatuses?.[0]?.restartCount ?? 0);
  const bothReady = () =>
    eventually(
      'master and replica Ready',
      async () =>
        ready(await pod('redis-shared-master-0')) && ready(await pod('redis-shared-replicas-0')),
      60_000,
    );
  await bothReady();
  const hosts = () => readFileSync(fx!.workloads.hostsFile('redis'), 'utf8');
  const replicaName = 'redis-shared-replicas-0.redis-shared-headless.redis.svc.cluster.local';
  t.match(hosts(), replicaName, 'a Ready pod has its name under the headless Service');
  const endpoints = async (): Promise<Any> =>
    fx!.object(ENDPOINTS, 'redis', 'redis-shared-replicas');

  await t.test(
    'with the chart default probes, a stopped master gets the replica restarted',
    async (t) => {
      const set = JSON.parse(
        await kubectl(['get', 'statefulset', 'redis-shared-replicas', '-n', 'redis', '-o', 'json']),
      );
      const liveness = set.spec.template.spec.containers[0].livenessProbe;
      t.match(liveness.exec.command.join(' '), /ping_liveness_local_and_master\.sh/);
      const windowMs =
        (liveness.periodSeconds * liveness.failureThreshold + liveness.timeoutSeconds) * 1000;
      const before = restarts(await pod('redis-shared-replicas-0'));
      await kubectl(['scale', 'statefulset', 'redis-shared-master', '-n', 'redis', '--replicas=0']);
      const stoppedAt = Date.now();
      await eventually(
        'the replica not Ready',
        async () => !ready(await pod('redis-shared-replicas-0')),
        windowMs + 15_000,
      );
      t.notMatch(hosts(), replicaName, 'a not Ready pod leaves headless DNS');
      t.notOk(
        (await endpoints()).subsets?.some((s: Any) => s.addresses?.length),
        'and the replicas Service endpoints',
      );
      await eventually(
        'the replica restarted',
        async () => restarts(await pod('redis-shared-replicas-0')) > before,
        windowMs + 20_000,
      );
      const tookMs = Date.now() - stoppedAt;
      t.ok(
        tookMs >= liveness.periodSeconds * (liveness.failureThreshold - 1) * 1000,
        `not before failureThreshold failures (${tookMs} ms)`,
      );
      await kubectl(['scale', 'statefulset', 'redis-shared-master', '-n', 'redis', '--replicas=1']);
      await bothReady();
      t.match(hosts(), replicaName, 'Ready again: back in headless DNS');
    },
  );

  await t.test(
    'a paused redis-server turns not Ready and is restarted within its window',
    async (t) => {
      // Short timings and grace so the test waits seconds, not a minute: the window is the pod's own.
      const probes = { periodSeconds: 1, timeoutSeconds: 1, failureThreshold: 3 };
      await kubectl([
        'patch',
        'statefulset',
        'redis-shared-replicas',
        '-n',
        'redis',
        '--type=json',
        '-p',
        JSON.stringify([
          { op: 'replace', path: '/spec/template/spec/terminationGracePeriodSeconds', value: 2 },
          ...['livenessProbe', 'readinessProbe'].flatMap((probe) =>
            Object.entries(probes).map(([k, v]) => ({
              op: 'replace',
              path: `/spec/template/spec/containers/0/${probe}/${k}`,
              value: v,
            })),
          ),
        ]),
      ]);
      const rolled = await eventually(
        'the replica rolled onto the new probes',
        async () => {
          const p = await pod('redis-shared-replicas-0');
          return ready(p) && p.spec.containers[0].livenessProbe.periodSeconds === 1 && p;
        },
        60_000,
      );
      const liveness = rolled.spec.containers[0].livenessProbe;
      const windowMs =
        (liveness.periodSeconds * liveness.failureThreshold + liveness.timeoutSeconds) * 1000 +
        rolled.spec.terminationGracePeriodSeconds * 1000;
      const before = restarts(rolled);
      const pid = mainPid(runDir, 'redis/redis-shared-replicas-0');
      process.kill(pid, 'SIGSTOP');
      t.teardown(() => {
        try {
          process.kill(pid, 'SIGCONT');
        } catch {
          // Gone: the kubelet killed it, as it should.
        }
      });
      const pausedAt = Date.now();
      await eventually(
        'the paused replica not Ready',
        async () => !ready(await pod('redis-shared-replicas-0')),
        windowMs + 5_000,
      );
      const restarted = await eventually(
        'the paused replica restarted',
        async () => restarts(await pod('redis-shared-replicas-0')) > before && Date.now(),
        windowMs + 10_000,
      );
      t.ok(
        restarted - pausedAt <= windowMs + 5_000,
        `restarted ${restarted - pausedAt} ms after the pause (window ${windowMs} ms)`,
      );
      await eventually(
        'the replica Ready again',
        async () => ready(await pod('redis-shared-replicas-0')),
        30_000,
      );
    },
  );
});
