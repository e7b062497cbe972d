// Judgements: allOf, and every preflight failure in one message with its fix.
import t from 'tap';
import { allOf, formatFailures } from '../../lib/engine/judgement.ts';

t.test('allOf: ok only when every judgement is, and then shows every detail', async (t) => {
  const pass = { ok: true, detail: 'a fine' };
  const failA = { ok: false, detail: 'b broken', fix: 'mend b' };
  const failB = { ok: false, detail: 'c broken' };
  t.same(allOf(pass, { ok: true, detail: 'd fine' }), { ok: true, detail: 'a fine; d fine' });
  t.same(allOf(pass, failA, failB), { ok: false, detail: 'b broken; c broken', fix: 'mend b' });
});

t.test('all preflight failures in one message, each with its fix', async (t) => {
  const text = formatFailures(
    [
      { step: 'P05', detail: 'CRD missing: x', fix: 'install y' },
      { step: 'P07', detail: 'held by a/b', fix: 'choose another' },
    ],
    './runbooks/01-setup.mts',
  );
  t.match(text, /^2 preflight checks failed; nothing was changed:/);
  t.match(text, /P05: CRD missing: x\n\s+fix: install y/);
  t.match(text, /P07: held by a\/b/);
  t.match(text, /run \.\/runbooks\/01-setup\.mts again/);
});
