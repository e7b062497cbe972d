// The API faults a crash inside the window needs besides failing mutations: failing reads, 429
// with Retry-After (as kube-apiserver's max-in-flight filter answers), and watches that drop.
import t from 'tap';
import { startTestSandbox } from '../helpers/sandbox.ts';

t.test('read-error, throttle and drop-watches', async (t) => {
  const fx = await startTestSandbox(t);
  const url = (path: string) => `${fx.sandbox.url}${path}`;
  const fault = async (args: string[]) =>
    (
      await fetch(url('/sandbox/fault'), {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ args }),
      })
    ).status;
  const deployments = '/apis/apps/v1/namespaces/beersystem/deployments';

  t.equal(await fault(['read-error', '1', '503']), 200);
  t.equal((await fetch(url(deployments))).status, 503, 'the next read fails');
  t.equal((await fetch(url(deployments))).status, 200, 'then reads answer again');

  t.equal(await fault(['throttle', '1', '2']), 200);
  const throttled = await fetch(url(deployments));
  t.equal(throttled.status, 429);
  t.equal(throttled.headers.get('retry-after'), '2');
  t.match(await throttled.json(), { reason: 'TooManyRequests', details: { retryAfterSeconds: 2 } });
  t.equal((await fetch(url(deployments))).status, 200);

  const watch = await fetch(url(`${deployments}?watch=true`));
  t.equal(watch.status, 200);
  const ended = watch.text();
  t.equal(await fault(['drop-watches']), 200);
  t.type(await ended, 'string', 'the watch stream ended');

  t.equal(await fault(['read-error', '0', '500']), 400, 'a count below 1 is refused');
});
