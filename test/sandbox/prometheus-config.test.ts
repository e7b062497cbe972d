// sandbox/workloads/prometheus-config.ts: the sandbox's Prometheus runs the rules on a clock 30
// times faster, their `for:` and their range windows alike.
import t from 'tap';
import { sandboxExpr, sandboxFor } from '../../sandbox/workloads/prometheus-config.ts';

t.test('range windows are divided like for:, never below four samples', async (t) => {
  t.equal(sandboxFor('15m'), '30s');
  t.equal(
    sandboxExpr(
      'rate(redis_keyspace_hits_total[5m]) / (rate(redis_keyspace_hits_total[5m]) + rate(redis_keyspace_misses_total[5m])) < 0.80',
    ),
    'rate(redis_keyspace_hits_total[10s]) / (rate(redis_keyspace_hits_total[10s]) + rate(redis_keyspace_misses_total[10s])) < 0.80',
  );
  t.equal(sandboxExpr('increase(x[1m]) > 0'), 'increase(x[4s]) > 0', 'clamped to 4 s');
  t.equal(sandboxExpr('increase(x[1h]) > 0'), 'increase(x[120s]) > 0');
  t.equal(sandboxExpr('redis_up == 0'), 'redis_up == 0', 'an instant expression is unchanged');
});
