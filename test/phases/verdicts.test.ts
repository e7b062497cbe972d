import t from 'tap';
import {
  judgeLatency,
  judgeThroughput,
  LATENCY_P95_LIMIT_MS,
  THROUGHPUT_MIN_OPS_PER_SEC,
} from '../../lib/phases/verdicts.ts';

t.test('SC-006: 10,000 ops/s is met, 9,999 is not', async (t) => {
  t.same(judgeThroughput(10_000), {
    id: 'SC-006',
    met: true,
    threshold: 10_000,
    unit: 'ops/s',
    value: 10_000,
    text: 'SC-006 met: 10,000 ops/s ≥ 10,000 ops/s (benchmark throughput)',
  });
  const below = judgeThroughput(9_999);
  t.equal(below.met, false);
  t.equal(below.text, 'SC-006 NOT met: 9,999 ops/s, needs ≥ 10,000 ops/s (benchmark throughput)');
  t.equal(judgeThroughput(9_999.999).met, false, 'a fraction below is still below');
  t.match(judgeThroughput(9_999.999).text, /^SC-006 NOT met: 9,999\.999 ops\/s/);
  t.equal(judgeThroughput(250_000).met, true);
  t.equal(judgeThroughput(0).met, false, 'a run that did nothing is not met');
  t.equal(THROUGHPUT_MIN_OPS_PER_SEC, 10_000, 'the spec says at least 10,000');
});

t.test('SC-001: p95 9.9 ms is met, 10.1 ms is not, exactly 10 ms is not', async (t) => {
  t.same(judgeLatency('SC-001', 9.9), {
    id: 'SC-001',
    met: true,
    threshold: 10,
    unit: 'ms',
    value: 9.9,
    text: 'SC-001 met: p95 9.9 ms < 10 ms (SET/GET from inside the cluster)',
  });
  const slow = judgeLatency('SC-001', 10.1);
  t.equal(slow.met, false);
  t.equal(
    slow.text,
    'SC-001 NOT met: p95 10.1 ms, needs < 10 ms (SET/GET from inside the cluster)',
  );
  t.equal(judgeLatency('SC-001', 10).met, false, '"under 10 milliseconds" is strict');
  t.equal(judgeLatency('SC-001', 0.35).met, true);
});

t.test('SC-003: p95 99.9 ms is met, 100.1 ms is not, exactly 100 ms is not', async (t) => {
  const fast = judgeLatency('SC-003', 99.9);
  t.equal(fast.met, true);
  t.equal(fast.threshold, 100);
  t.equal(fast.text, 'SC-003 met: p95 99.9 ms < 100 ms (round trips from the private network)');
  t.equal(judgeLatency('SC-003', 100.1).met, false);
  t.equal(judgeLatency('SC-003', 100).met, false);
  t.equal(judgeLatency('SC-003', 10.1).met, true, 'SC-001 missed can still be SC-003 met');
  t.same(LATENCY_P95_LIMIT_MS, { 'SC-001': 10, 'SC-003': 100 });
});

t.test('a value just under the limit is never printed as the limit', async (t) => {
  t.equal(
    judgeLatency('SC-001', 9.9999).text,
    'SC-001 met: p95 9.9999 ms < 10 ms (SET/GET from inside the cluster)',
  );
  t.match(judgeLatency('SC-001', 10.004).text, /^SC-001 NOT met: p95 10\.004 ms,/);
  t.match(judgeLatency('SC-001', 1.23456).text, /p95 1\.23 ms/, 'two decimals otherwise');
});

t.test('what is not a measurement is refused, not judged', async (t) => {
  for (const bad of [Number.NaN, -1, Number.POSITIVE_INFINITY]) {
    t.throws(() => judgeThroughput(bad), {
      name: 'RangeError',
      message: /^the operations per second of SC-006 is .+, not a measurement: judge only what/,
    });
    t.throws(() => judgeLatency('SC-001', bad), { name: 'RangeError', message: /p95 of SC-001/ });
  }
  t.throws(() => judgeThroughput(undefined as unknown as number), RangeError);
  t.throws(() => judgeLatency('SC-006' as 'SC-001', 1), {
    name: 'RangeError',
    message: 'SC-006 is not judged on latency: use SC-001 or SC-003',
  });
});
