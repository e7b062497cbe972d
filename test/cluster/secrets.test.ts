// lib/cluster/secrets.ts against the sandbox: both copies of the Redis password Secret read with
// client-node, compared, registered for masking; what it reports never holds the value.
import t from 'tap';
import { createKube } from '../../lib/cluster/kube.ts';
import { readReplicatedSecret } from '../../lib/cluster/secrets.ts';
import { maskSecrets } from '../../lib/mask.ts';
import { randomSecret } from '../../sandbox/initial-state.ts';
import { sandboxConfig } from '../helpers/kube-config.ts';
import { type SandboxFixture, startTestSandbox } from '../helpers/sandbox.ts';

// Through stdin, so the value is never in kubectl's argv.
async function putSecret(fx: SandboxFixture, namespace: string, value: string) {
  await fx.kubectlOk(
    ['apply', '--server-side', '-f', '-'],
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'redis-credentials', namespace },
      stringData: { 'redis-password': value },
    }),
  );
}

t.test('FR-012a: the copies in redis and beersystem are compared without printing', async (t) => {
  const fx = await startTestSandbox(t);
  await fx.kubectlOk(['create', 'namespace', 'redis']);
  const cfg = sandboxConfig(fx);
  const kube = createKube(cfg);

  const none = await readReplicatedSecret(kube, cfg);
  t.equal(none.matches, false);
  t.equal(none.password, undefined);
  t.match(none.summary, /missing in redis and beersystem: apply module.redis_shared/);

  const password = randomSecret();
  await putSecret(fx, 'redis', password);
  const half = await readReplicatedSecret(kube, cfg);
  t.same(half.copies, [
    { namespace: 'redis', present: true },
    { namespace: 'beersystem', present: false },
  ]);
  t.match(half.summary, /is missing in beersystem/);
  t.equal(maskSecrets(password), '***', 'registered for masking on read');

  await putSecret(fx, 'beersystem', password);
  const same = await readReplicatedSecret(kube, cfg);
  t.equal(same.matches, true);
  t.equal(same.password, password);
  t.equal(
    same.summary,
    'Secret redis-credentials (key redis-password) holds the same password in redis and beersystem',
  );

  const other = randomSecret();
  await putSecret(fx, 'beersystem', other);
  const differs = await readReplicatedSecret(kube, cfg);
  t.equal(differs.matches, false);
  t.match(differs.summary, /differs between redis and beersystem/);
  t.notOk(differs.summary.includes(password) || differs.summary.includes(other), 'no value in it');
  t.equal(maskSecrets(other), '***');
});
