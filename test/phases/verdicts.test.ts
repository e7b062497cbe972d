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

t.test(
  'SC-004 is met only when proven: outside blocked while this machine gets through',
  async (t) => {
    const { judgeSourceRange } = await import('../../lib/phases/verdicts.ts');
    const inPrivate = (ip: string) => ip.startsWith('192.168.4.');
    const probe = (
      outcome: 'reached' | 'timeout' | 'refused' | 'reset' | 'error',
      source?: string,
    ) => ({
      outcome,
      detail: outcome,
      ...(source ? { source } : {}),
    });
    const base = {
      ranges: ['192.168.4.0/24'],
      privateCidr: '192.168.4.0/24',
      outsideSource: '10.9.0.5',
      inPrivate,
    };
    const three = <T>(x: T) => [x, x, x];
    const met = judgeSourceRange({
      ...base,
      outside: three(probe('timeout', '10.9.0.5')),
      inside: three(probe('reached', '192.168.4.20')),
    });
    t.equal(met.verdict, 'met');
    t.match(
      met.text,
      /3\/3 connections from 10\.9\.0\.5 \(outside 192\.168\.4\.0\/24\) blocked \(timeout, timeout, timeout\); 3\/3 from this machine \(192\.168\.4\.20\) reached Redis/,
    );

    const unset = judgeSourceRange({ ...base, outsideSource: undefined, outside: [], inside: [] });
    t.equal(unset.verdict, 'not proven', 'configuration alone is not proof');
    t.match(unset.text, /^SC-004 configured, not proven: .*OUTSIDE_PROBE_SOURCE unset/);
    t.match(
      unset.toProve,
      /set OUTSIDE_PROBE_SOURCE to an address of this machine outside 192\.168\.4\.0\/24/,
    );

    const deadHost = judgeSourceRange({
      ...base,
      outside: three(probe('timeout')),
      inside: three(probe('timeout')),
    });
    t.equal(deadHost.verdict, 'not proven', 'a host that reaches nothing proves nothing');
    t.match(deadHost.text, /this machine does not reach the LoadBalancer/);

    t.equal(
      judgeSourceRange({
        ...base,
        outside: [probe('timeout'), probe('reached', '10.9.0.5'), probe('timeout')],
        inside: three(probe('reached', '192.168.4.20')),
      }).verdict,
      'not met',
    );
    const natted = judgeSourceRange({
      ...base,
      outside: three(probe('timeout')),
      inside: three(probe('reached', '100.64.0.7')),
    });
    t.equal(natted.verdict, 'not met', 'this machine outside the range and still reaching Redis');
    t.match(natted.text, /100\.64\.0\.7 is outside PRIVATE_CIDR and still reached Redis/);
    t.equal(
      judgeSourceRange({
        ...base,
        outside: three(probe('error')),
        inside: three(probe('reached', '192.168.4.20')),
      }).verdict,
      'not proven',
      'an outside address this machine cannot bind proves nothing',
    );
    t.equal(
      judgeSourceRange({ ...base, ranges: [], outside: [], inside: [] }).verdict,
      'not met',
      'no source range at all',
    );
  },
);
