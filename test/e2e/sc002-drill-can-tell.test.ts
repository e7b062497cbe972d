// The SC-002 drill can tell: with the chart's default replica probes (which also ping the
// master; the module's fix reverted in a copy of terraform/), holding the master down past the
// replica's liveness window gets the replica restarted and out of the replicas Service, and 03
// reports SC-002 not met. With the module as it is, the same drill passes (runbooks-01-04-e2e).
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { runbookSandbox, stepStatuses } from '../helpers/runbook-sandbox.ts';
import { REPO, type SandboxFixture, startWholeSandbox } from '../helpers/workloads-sandbox.ts';

t.setTimeout(900_000);

t.test("with the chart's default replica probes the SC-002 drill fails", async (t) => {
  const copy = mkdtempSync(join(tmpdir(), 'sc002-module-'));
  let fx: SandboxFixture | undefined;
  t.teardown(async () => {
    await fx?.close();
    rmSync(copy, { recursive: true, force: true });
  });
  cpSync(join(REPO, 'terraform'), join(copy, 'terraform'), { recursive: true });
  const values = join(copy, 'terraform', 'modules', 'redis-shared', 'values.yaml.tftpl');
  const template = readFileSync(values, 'utf8');
  const reverted = template.replace(
    /\n {2}customLivenessProbe:[\s\S]*?(?=\n {2}# Two instances)/,
    '',
  );
  t.not(reverted, template, 'the copy has the custom probes removed');
  t.notMatch(reverted, /^ +custom(Liveness|Readiness)Probe:/m);
  writeFileSync(values, reverted);

  fx = await startWholeSandbox();
  await fx.sandbox.settled(30_000);
  const rb = runbookSandbox(fx.runDir, fx.sandbox, {
    TOFU_DIR: join(copy, 'terraform', 'environments', 'chocolandiadc-mvp'),
  });
  for (const phase of ['01-setup', '02-deploy']) {
    const run = await rb.run(phase, ['--yes', '--json']);
    t.equal(run.code, 0, `${phase} exit 0`, run.code === 0 ? {} : { stderr: run.stderr });
  }
  const liveness = JSON.parse(
    await fx.kubectl([
      'get',
      'sts',
      'redis-shared-replicas',
      '-n',
      'redis',
      '-o',
      'jsonpath={.spec.template.spec.containers[0].livenessProbe}',
    ]),
  );
  t.match(
    liveness.exec.command.join(' '),
    /ping_liveness_local_and_master\.sh/,
    "the chart's probe",
  );
  const run = await rb.run('03-access', ['--yes', '--json', '--skip-restart-drill']);
  t.equal(run.code, 1, 'the drill fails the run');
  t.match(stepStatuses(run).join('\n'), /T021-SC002.*failed/);
  t.match(run.stderr, /SC-002 not met \(redis-shared-replicas-0 restarted [1-9]\d* time\(s\)/);
});
