// Proof: which evidence counts as met, and "not proven" as a verdict that is never proof.
import t from 'tap';
import { proven, recordProof } from '../../lib/engine/proof.ts';

t.test('proof: this run’s evidence counts; earlier runs’ count unless --recheck', async (t) => {
  const earlier: Record<string, unknown> = {
    'evidence.SC-001': { met: true },
    'evidence.SC-002': { met: false },
  };
  const printed: string[] = [];
  const ctx = (flags: Record<string, boolean>) =>
    ({
      state: {},
      flags,
      recall: async (k: string) => earlier[k],
      evidence: async (id: string, line: string) => {
        printed.push(`${id}: ${line}`);
      },
    }) as never;
  const plain = ctx({});
  t.equal(await proven(plain, 'SC-001'), true, 'met in an earlier run');
  t.equal(await proven(plain, 'SC-001', 'SC-002'), false, 'one not met is not proven');
  t.equal(await proven(plain, 'SC-003'), false, 'never recorded');
  const recheck = ctx({ recheck: true });
  t.equal(await proven(recheck, 'SC-001'), false, '--recheck sets earlier runs aside');
  await recordProof(recheck, 'SC-001', 'p95 0.4 ms: met', { met: true });
  t.equal(await proven(recheck, 'SC-001'), true, 'proven by this run');
  await recordProof(recheck, 'SC-003', 'p95 120 ms: NOT met', { met: false });
  t.equal(await proven(recheck, 'SC-003'), false);
  t.same(printed, ['SC-001: p95 0.4 ms: met', 'SC-003: p95 120 ms: NOT met']);
});

t.test('proof: "not proven" settles a step without counting as met', async (t) => {
  const { judged, recordNotProven } = await import('../../lib/engine/proof.ts');
  const earlier: Record<string, unknown> = { 'evidence.SC-004': { met: 'not proven' } };
  const data: Record<string, unknown> = {};
  const ctx = (flags: Record<string, boolean>) =>
    ({
      state: {},
      flags,
      recall: async (k: string) => earlier[k],
      evidence: async (id: string, _line: string, d: Record<string, unknown>) => {
        data[id] = d;
      },
    }) as never;
  const plain = ctx({});
  t.equal(await judged(plain, 'SC-004'), true, 'an earlier "not proven" is a verdict');
  t.equal(await proven(plain, 'SC-004'), false, 'but never proof');
  const run = ctx({ recheck: true });
  t.equal(await judged(run, 'SC-004'), false);
  await recordNotProven(run, 'SC-004', 'configured, not proven', { toProve: 'set X' });
  t.equal(await judged(run, 'SC-004'), true);
  t.equal(await proven(run, 'SC-004'), false);
  t.same(data['SC-004'], { toProve: 'set X', met: 'not proven' });
  await recordProof(run, 'SC-008', 'NOT met', { met: false });
  t.equal(await judged(run, 'SC-008'), false, 'NOT met is not settled');
});
