import t from 'tap';
import {
  clearSecretsForTests,
  maskDeep,
  maskError,
  maskSecrets,
  registerSecret,
} from '../lib/mask.ts';

t.beforeEach(() => clearSecretsForTests());

t.test('a registered secret is masked in plain and base64 form', async (t) => {
  registerSecret('s3cr3t-value');
  const b64 = Buffer.from('s3cr3t-value').toString('base64');
  t.equal(maskSecrets(`auth s3cr3t-value and ${b64}`), 'auth *** and ***');
});

t.test('short values are not registered, so ordinary words are never masked', async (t) => {
  registerSecret('ab');
  registerSecret('');
  registerSecret(undefined);
  t.equal(maskSecrets('ab cd'), 'ab cd');
});

t.test('a secret containing another one is masked whole', async (t) => {
  registerSecret('abcd');
  registerSecret('abcdefgh');
  t.equal(maskSecrets('x abcdefgh y abcd'), 'x *** y ***');
});

t.test('maskDeep masks strings nested in objects and arrays, and keeps other values', async (t) => {
  registerSecret('hunter22');
  t.same(maskDeep({ a: ['pw=hunter22', 3], b: { c: 'hunter22' }, d: null, e: true }), {
    a: ['pw=***', 3],
    b: { c: '***' },
    d: null,
    e: true,
  });
});

t.test('maskError masks message and stack and keeps name and code', async (t) => {
  registerSecret('hunter22');
  const err = Object.assign(new TypeError('bad hunter22'), { code: 'EX' });
  const masked = maskError(err);
  t.equal(masked.message, 'bad ***');
  t.equal(masked.name, 'TypeError');
  t.notMatch(masked.stack ?? '', /hunter22/);
  t.equal((masked as { code?: string }).code, 'EX');
  t.equal(maskError('plain hunter22').message, 'plain ***');
});
