// lib/cluster/kube-api.ts waits out a throttled API as client-go does: a 429 (or 5xx) with
// Retry-After is sent again after those seconds, up to 10 times, then the answer is given back.
// The real kubectl (client-go) is held to the same fault beside it.
import t from 'tap';
import { createKubeApi } from '../../lib/cluster/kube-api.ts';
import { sandboxConfig } from '../helpers/kube-config.ts';
import { startTestSandbox } from '../helpers/sandbox.ts';

const DEPLOYMENT = '/apis/apps/v1/namespaces/beersystem/deployments/beersystem';

t.test('a throttled read is retried after Retry-After, and succeeds', async (t) => {
  const fx = await startTestSandbox(t);
  const fault = async (args: string[]) =>
    (
      await fetch(`${fx.sandbox.url}/sandbox/fault`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ args }),
      })
    ).status;
  const api = createKubeApi(sandboxConfig(fx));
  await api.json('GET', '/version');

  t.equal(await fault(['throttle', '2', '1']), 200);
  const started = Date.now();
  const dep = await api.json<{ metadata: { name: string } }>('GET', DEPLOYMENT);
  t.equal(dep?.metadata.name, 'beersystem', 'the read succeeds once the API lets it through');
  t.ok(Date.now() - started >= 2000, 'after waiting the two Retry-After seconds');

  t.equal(await fault(['throttle', '11', '1']), 200);
  const refused = await api.request('GET', DEPLOYMENT);
  t.equal(refused.status, 429, 'past ten retries the 429 comes back to the caller');

  t.equal(await fault(['throttle', '1', '1']), 200);
  const kubectl = await fx.kubectl(['get', 'deployment', 'beersystem', '-n', 'beersystem']);
  t.equal(kubectl.code, 0, 'kubectl (client-go) waits it out the same way', {
    stderr: kubectl.stderr,
  });
});

t.test('an error without Retry-After is answered at once, not retried', async (t) => {
  const fx = await startTestSandbox(t);
  const api = createKubeApi(sandboxConfig(fx));
  const armed = await fetch(`${fx.sandbox.url}/sandbox/fault`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ args: ['read-error', '1', '503'] }),
  });
  t.equal(armed.status, 200);
  t.equal((await api.request('GET', DEPLOYMENT)).status, 503);
  t.equal((await api.request('GET', DEPLOYMENT)).status, 200);
});
