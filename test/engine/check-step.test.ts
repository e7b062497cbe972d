// Check steps: strict ones fail their step, deferred ones are collected for the verdict step.
import t from 'tap';
import {
  deferredCheck,
  failuresSoFar,
  strictCheck,
  verdictStep,
} from '../../lib/engine/check-step.ts';

t.test('check steps: strict fails its step, deferred collects for the verdict', async (t) => {
  const lines: string[] = [];
  const ctx = { state: {}, log: { info: (l: string) => lines.push(l), warn: () => {} } } as never;
  let calls = 0;
  let ok = false;
  const strict = strictCheck({
    id: 'T016',
    title: 't',
    check: () => {
      calls++;
      return ok ? { ok, detail: 'fine' } : { ok, detail: 'broken', fix: 'mend it' };
    },
  });
  t.equal(strict.risk, 'read');
  t.equal(await strict.done?.(ctx), false);
  await t.rejects(async () => strict.run(ctx), /broken\. Fix: mend it/);
  t.equal(calls, 2, 'run judges again after done saw a failure');
  ok = true;
  const fresh = { state: {}, log: { info: (l: string) => lines.push(l), warn: () => {} } } as never;
  t.equal(await strict.done?.(fresh), true);
  t.match(lines.at(-1), /✓ fine/);

  const deferred = deferredCheck({
    id: 'P05',
    title: 'd',
    check: () => ({ ok: false, detail: 'CRD missing: x', fix: 'install y' }),
  });
  const passing = deferredCheck({
    id: 'P06',
    title: 'p',
    check: () => ({ ok: true, detail: 'selects' }),
  });
  const verdict = verdictStep('P13', 'v');
  const run = { state: {}, log: { info: (l: string) => lines.push(l), warn: () => {} } } as never;
  t.equal(await verdict.done?.(run), true, 'nothing failed yet');
  t.equal(await deferred.done?.(run), false);
  await deferred.run(run);
  t.equal(await deferred.verify?.(run), true, 'the failed check does not stop the run');
  t.match(lines.at(-1), /✗ CRD missing: x\n\s+fix: install y/);
  t.equal(await passing.done?.(run), true);
  t.same(failuresSoFar(run), [{ step: 'P05', detail: 'CRD missing: x', fix: 'install y' }]);
  t.equal(await verdict.done?.(run), false);
  await t.rejects(
    async () => verdict.run(run),
    /1 preflight check failed; nothing was changed:\n\s+P05: CRD missing: x/,
  );
});

t.test(
  'a check that cannot be made counts as failed, unless the run was interrupted',
  async (t) => {
    const lines: string[] = [];
    const controller = new AbortController();
    const ctx = {
      state: {},
      signal: controller.signal,
      log: { info: (l: string) => lines.push(l), warn: () => {} },
    } as never;
    const broken = deferredCheck({
      id: 'P07',
      title: 'b',
      check: () => {
        throw new Error('the server could not find the requested resource');
      },
    });
    t.equal(await broken.done?.(ctx), false);
    await broken.run(ctx);
    t.match(failuresSoFar(ctx)[0]?.detail, /could not be made: the server could not find/);
    controller.abort();
    const interrupted = strictCheck({
      id: 'T016',
      title: 'i',
      check: () => {
        throw new Error('interrupted while waiting');
      },
    });
    await t.rejects(async () => interrupted.done?.(ctx), /interrupted while waiting/);
  },
);
