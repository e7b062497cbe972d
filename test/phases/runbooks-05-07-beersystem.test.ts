// lib/phases/beersystem.ts against the sandbox's API (fake runtime: pods are Ready, nothing answers
// behind them): what 05–07 read about beersystem and the two Redis servers.
import t from 'tap';
import { clearSecretsForTests } from '../../lib/mask.ts';
import {
  beersystemHealth,
  beersystemPods,
  beersystemState,
  expectedSharedRedis,
  oldRedisTarget,
  sharedRedisTarget,
} from '../../lib/phases/beersystem.ts';
import { redisEnvOf } from '../../lib/phases/migration.ts';
import { sandboxConfig, stepContext } from '../helpers/kube-config.ts';
import { startTestSandbox } from '../helpers/sandbox.ts';

t.teardown(clearSecretsForTests);

t.test(
  'beersystem as the sandbox starts: on its own Redis, one replica, env noted without values',
  async (t) => {
    const fx = await startTestSandbox(t);
    const ctx = stepContext(sandboxConfig(fx), false);
    const s = await beersystemState(ctx);
    t.equal(s.onShared, false);
    t.equal(s.deployment.replicas, 1);
    t.equal(s.containerIndex, 0);
    t.same(
      redisEnvOf(s.env).map((e) => e.name),
      ['REDIS_HOST', 'REDIS_PORT', 'REDIS_PASSWORD'],
    );
    const pods = await beersystemPods(ctx, s.deployment.selector);
    t.equal(pods.length, 1);
    t.equal(expectedSharedRedis(ctx), 'redis-shared-master.redis.svc.cluster.local:6379');

    // Nothing answers behind the fake pods: the service proxy says 503, health is not ok.
    const health = await beersystemHealth(ctx);
    t.equal(health.ok, false);

    // The old Redis: its pod's address and the password from beersystem's Secret reference.
    const old = await oldRedisTarget(ctx, redisEnvOf(s.env), 'runbook-test');
    t.ok(old?.host, `the old Redis pod has an address (${old?.host})`);
    t.equal(old?.port, 6379);
    t.ok(
      old?.password && old.password.length >= 8,
      'its password was read (and registered for masking)',
    );

    // redis-shared is not deployed in this sandbox: the error says what to run.
    await t.rejects(
      sharedRedisTarget(ctx, 'x'),
      /redis-credentials has no key redis-password: run \.\/runbooks\/02-deploy\.mts/,
    );
  },
);

t.test('a missing Deployment or old Redis is named, with what to check', async (t) => {
  const fx = await startTestSandbox(t);
  const ctx = stepContext(sandboxConfig(fx, { BEERSYSTEM_DEPLOYMENT: 'nope' }), false);
  await t.rejects(
    beersystemState(ctx),
    /Deployment beersystem\/nope not found: check BEERSYSTEM_NAMESPACE and BEERSYSTEM_DEPLOYMENT/,
  );
  const ctx2 = stepContext(sandboxConfig(fx, { OLD_REDIS_DEPLOYMENT: 'gone' }), false);
  t.equal(await oldRedisTarget(ctx2, [], 'x'), undefined);
});

t.test(
  'BEERSYSTEM_URL: beersystem reached directly instead of through the service proxy',
  async (t) => {
    const { createServer } = await import('node:http');
    const server = createServer((req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          status: 'ok',
          redis: 'redis-shared-master.redis.svc.cluster.local:6379',
          path: req.url,
        }),
      );
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    t.teardown(() => server.close());
    const address = server.address() as { port: number };
    process.env.BEERSYSTEM_URL = `http://127.0.0.1:${address.port}`;
    t.teardown(() => {
      delete process.env.BEERSYSTEM_URL;
    });
    const fx = await startTestSandbox(t);
    const ctx = stepContext(sandboxConfig(fx), false);
    const health = await beersystemHealth(ctx);
    t.same(health, {
      ok: true,
      redis: 'redis-shared-master.redis.svc.cluster.local:6379',
      status: 200,
    });
  },
);
