// When beersystem became Ready, as the cluster recorded it: the migration record and the downtime
// are taken from it, so a resume cannot carry an earlier attempt's time.
import t from 'tap';
import { readyTimeOf } from '../../lib/phases/migration.ts';

const pod = (name: string, readySince: string | undefined, ready = true, deleting = false) => ({
  name,
  ready,
  readySince,
  deleting,
});

t.test('the latest Ready transition, once all replicas are Ready', async (t) => {
  t.same(
    readyTimeOf([pod('a', '2026-12-01T02:35:20.000Z'), pod('b', '2026-12-01T02:35:25.000Z')], 2),
    { at: '2026-12-01T02:35:25.000Z' },
  );
});

t.test('unknown, with why, while pods are not all Ready or carry no time', async (t) => {
  t.same(readyTimeOf([pod('a', '2026-12-01T02:35:20.000Z'), pod('b', undefined, false)], 2), {
    at: undefined,
    why: '1/2 pods are Ready',
  });
  t.same(readyTimeOf([pod('a', '2026-12-01T02:35:20.000Z', true, true)], 1), {
    at: undefined,
    why: '0/1 pods are Ready',
  });
  t.same(readyTimeOf([pod('a', undefined)], 1), {
    at: undefined,
    why: 'the Ready condition of a carries no lastTransitionTime',
  });
});
