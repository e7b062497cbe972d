// runbooks/rotate-password.mts against the sandbox with beersystem on redis-shared (02–04 laid
// down, 05-migrate run): real redis-server pods that start with the password from the Secret, a
// real exporter and Prometheus, the beersystem stand-in reading the Secret. A dry run changes
// nothing; the real run leaves a new password in both Secret copies that works through the
// LoadBalancer while the old one is refused, beersystem healthy, the exporter scraping, the
// writer's errors recorded as 0 — and neither password in any output or the audit log.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { openRedis } from '../../lib/redis/redis-probe.ts';
import { MIGRATE, mutations, startCluster } from '../helpers/migrate-cluster.ts';
import { REPO } from '../helpers/run-cli.ts';
import { secretPassword } from '../helpers/secret.ts';

t.setTimeout(900_000);

const ROTATE = join(REPO, 'runbooks', 'rotate-password.mts');

t.test('rotate-password in the sandbox, beersystem on redis-shared', async (t) => {
  const c = await startCluster(t);
  const lb = c.fx.sandbox.network.redisLbIp;
  const secret = (ns: string) => secretPassword((a) => c.kubectl(a), ns);
  /** AUTH's answer on a fresh connection to the LoadBalancer. */
  const auth = async (password: string) => {
    const client = await openRedis({ host: lb, port: 6379, name: 'rotate-e2e' }, { auth: false });
    try {
      return String(await client.call('AUTH', password));
    } catch (err) {
      return (err as Error).message;
    } finally {
      client.disconnect();
    }
  };

  const migrated = await c.run(MIGRATE, ['--yes']);
  t.equal(migrated.code, 0, '05-migrate moved beersystem', {
    stderr: migrated.stderr.slice(-3000),
  });
  const old = await secret('redis');
  t.equal(await secret('beersystem'), old, 'one password in both copies before');

  await t.test('--dry-run shows the plan and changes nothing', async (t) => {
    const before = mutations(c.journal()).length;
    const r = await c.run(ROTATE, ['--dry-run']);
    t.equal(mutations(c.journal()).length, before, 'the journal gained no mutating request');
    t.equal(r.code, 0, 'exit 0', { stderr: r.stderr.slice(-3000) });
    const text = r.stdout + r.stderr;
    t.match(text, /replace module\.redis_shared\.random_password\.redis/);
    t.match(text, /would run: .*tofu apply -input=false -no-color \S+rotate-password\.tfplan/);
    t.match(text, /would run: kubectl .*rollout restart statefulset\/redis-shared-master -n redis/);
    t.equal(await secret('redis'), old, 'the Secret is unchanged');
    t.equal(await auth(old), 'OK', 'the old password still works');
  });

  let fresh = '';
  await t.test('the rotation runs for real', async (t) => {
    const r = await c.run(ROTATE, ['--yes', '--json']);
    t.equal(r.code, 0, 'exit 0', { stderr: r.stderr.slice(-4000) });
    const summary = JSON.parse(r.stdout) as {
      outcome: string;
      steps: { id: string; status: string }[];
    };
    t.equal(summary.outcome, 'ok');
    t.same(
      summary.steps
        .map((s) => `${s.id} ${s.status}`)
        .filter((s) => !/ (ok|done|verified-done)$/.test(s)),
      [],
      'every step ran and passed',
    );
    const figures = /evidence ROTATION: (.*)/.exec(r.stderr)?.[1] ?? '';
    t.comment(`ROTATION: ${figures}`);
    t.match(
      figures,
      /^\d+ writes through the LoadBalancer .*: 0 write errors, 0 acknowledged writes lost/,
    );
    t.match(
      r.stderr,
      /strategy RollingUpdate, 1 replica\(s\), maxUnavailable 0, maxSurge 1: .*no downtime/,
    );
    fresh = await secret('redis');
  });

  await t.test(
    'afterwards: the old password refused, the new one in both copies and working',
    async (t) => {
      t.ok(fresh.length >= 32 && fresh !== old, 'a new 32-character password');
      t.equal(await secret('beersystem'), fresh, 'the beersystem copy holds it too');
      t.match(await auth(old), /WRONGPASS/, 'SC-008: the old password is refused');
      t.equal(await auth(fresh), 'OK', 'the new one works through the LoadBalancer');
    },
  );

  await t.test('beersystem is healthy on redis-shared', async (t) => {
    const health = await c.proxy('/healthz');
    t.equal(health.status, 200);
    t.match(String(health.body.redis), /redis-shared-master\.redis\.svc\.cluster\.local:6379/);
  });

  let third = '';
  await t.test(
    'a failure after the apply: the runbook names the commands that finish the switch, and they do',
    async (t) => {
      const applied = await c.run(ROTATE, ['--only', 'P01,R01,R02', '--yes']);
      t.equal(applied.code, 0, 'plan and apply only', { stderr: applied.stderr.slice(-3000) });
      third = await secret('redis');
      t.not(third, fresh, 'a third password is in the Secret');
      t.equal(await auth(fresh), 'OK', 'Redis still takes only the one before');
      t.match(await auth(third), /WRONGPASS/);
      const resumed = await c.run(ROTATE, ['--from', 'R03', '--yes']);
      t.equal(resumed.code, 1, 'R03 cannot tell Redis without the old password');
      const text = resumed.stdout + resumed.stderr;
      t.match(text, /the old password was only in the memory of the run that replaced it/);
      t.match(text, /--only R05,R06\b/);
      t.match(text, /--only R04,V02,V03,V04\b/);
      const restarted = await c.run(ROTATE, ['--only', 'R05,R06', '--yes']);
      t.equal(restarted.code, 0, 'the pods restart onto the Secret', {
        stderr: restarted.stderr.slice(-3000),
      });
      const finished = await c.run(ROTATE, ['--only', 'R04,V02,V03,V04', '--yes']);
      t.equal(finished.code, 0, 'beersystem restarted and the checks pass', {
        stderr: finished.stderr.slice(-3000),
      });
      t.match(await auth(fresh), /WRONGPASS/, 'the password before is refused');
      t.equal(await auth(third), 'OK', 'the third one works');
      t.equal((await c.proxy('/healthz')).status, 200, 'beersystem is healthy');
    },
  );

  await t.test('neither password appears in any output or the audit log', async (t) => {
    const audit = readFileSync(c.env.AUDIT_LOG as string, 'utf8');
    for (const [name, value] of [
      ['old', old],
      ['new', fresh],
      ['third', third],
    ] as const) {
      if (!value) continue;
      t.notOk(
        c.outputs.some((o) => o.includes(value)),
        `the ${name} password is in no output`,
      );
      t.notOk(audit.includes(value), `the ${name} password is not in the audit log`);
    }
    t.match(
      audit,
      /tofu apply -input=false -no-color \S+rotate-password\.tfplan/,
      'the apply is audited',
    );
    t.match(audit, /rollout restart statefulset\/redis-shared-master -n redis/, 'the restarts too');
  });
});
