// When beersystem became Ready, as the cluster recorded it: the migration record and the downtime
// are taken from it, so a resume cannot carry an earlier attempt's time.
import t from 'tap';
import { downtimeUntilReady, readyTimeOf } from '../../lib/phases/migration.ts';

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

t.test('the downtime is counted to the end of the second the cluster recorded', async (t) => {
  // Kubernetes keeps lastTransitionTime to the second: an outage inside one second came out as
  // -144ms when the Ready time was taken as exact.
  t.same(downtimeUntilReady('2026-12-07T06:29:01.144Z', '2026-12-07T06:29:01.000Z'), {
    ms: 856,
    atMost: true,
  });
  t.same(downtimeUntilReady('2026-12-07T06:29:01.144Z', '2026-12-07T06:29:07.000Z'), {
    ms: 6856,
    atMost: true,
  });
  t.same(downtimeUntilReady('2026-12-07T06:29:01.144Z', '2026-12-07T06:29:07.250Z'), {
    ms: 6106,
    atMost: false,
  });
});
