// An API error's text is masked before it is cut, so a secret straddling the cut leaves no tail.
import t from 'tap';
import { apiError } from '../../lib/cluster/kube-api.ts';
import { clearSecretsForTests, registerSecret } from '../../lib/mask.ts';

t.teardown(clearSecretsForTests);

t.test(
  'a secret straddling the 500-character cut of a non-Status body leaves no part behind',
  async (t) => {
    const secret = 'straddling-S3cret-value';
    registerSecret(secret);
    const body = `${'x'.repeat(490)}${secret} and more`;
    const err = apiError('GET', '/api/v1/x', 500, body);
    t.notMatch(err.message, /S3cret|cret-value|straddl/, 'no fragment of the secret');
    t.match(err.message, /\*\*\*/, 'the masked form is what was cut');
  },
);

t.test('the message of a Status object is masked', async (t) => {
  registerSecret('status-S3cret');
  const err = apiError(
    'GET',
    '/api/v1/x',
    422,
    JSON.stringify({ reason: 'Invalid', message: 'bad status-S3cret' }),
  );
  t.notMatch(err.message, /status-S3cret/);
  t.match(err.message, /422 Invalid: bad \*\*\*/);
});
