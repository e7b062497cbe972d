// 04's monitoring judgements: series, targets, scrape interval and freshness, rules loaded.
import t from 'tap';
import {
  declaredAlerts,
  judgeRulesLoaded,
  judgeScrapeInterval,
  judgeTargets,
  missingPods,
  REQUIRED_SERIES,
  seriesQuery,
} from '../../lib/phases/monitoring-checks.ts';

t.test('monitoring judgements', async (t) => {
  t.equal(
    seriesQuery({ metric: 'redis_up' }, 'redis-shared-metrics'),
    'count by (pod) (redis_up{service="redis-shared-metrics"})',
  );
  t.equal(
    seriesQuery({ metric: 'redis_commands_processed_total', rate: true }, 's'),
    'count by (pod) (rate(redis_commands_processed_total{service="s"}[1m]))',
  );
  t.ok(REQUIRED_SERIES.some((s) => s.what === 'ops/s' && s.rate));
  t.same(missingPods([{ metric: { pod: 'a' } }], ['a', 'b']), ['b']);
  const targets = [
    { labels: { service: 'm', pod: 'a' }, health: 'up', scrapeInterval: '15s' },
    { labels: { service: 'm', pod: 'b' }, health: 'down', lastError: 'refused' },
    { labels: { service: 'other', pod: 'c' }, health: 'up' },
  ];
  t.ok(judgeTargets(targets.slice(0, 1), 'm', ['a']).ok);
  const down = judgeTargets(targets, 'm', ['a', 'b', 'x']);
  t.notOk(down.ok);
  t.match(down.detail, /b: down refused; x: no target/);
  t.ok(judgeScrapeInterval({ spec: { endpoints: [{ interval: '15s' }] } }, 'sm').ok);
  t.notOk(judgeScrapeInterval({ spec: { endpoints: [{ interval: '30s' }] } }, 'sm').ok);
  t.notOk(
    judgeScrapeInterval({ spec: { endpoints: [{}] } }, 'sm').ok,
    'unset uses the 30s default',
  );
  t.notOk(judgeScrapeInterval({ spec: { endpoints: [] } }, 'sm').ok);
  t.notOk(judgeScrapeInterval(undefined, 'sm').ok);
  const rule = { spec: { groups: [{ rules: [{ alert: 'A' }, { record: 'r' }, { alert: 'B' }] }] } };
  t.same(declaredAlerts(rule), ['A', 'B']);
  t.ok(judgeRulesLoaded(['A', 'B'], ['B', 'A', 'C']).ok);
  t.match(judgeRulesLoaded(['A', 'B'], ['A']).detail, /not loaded: B/);
  t.notOk(judgeRulesLoaded([], []).ok);
});

t.test('SC-005 is measured: each target scraped within the last 15 s', async (t) => {
  const { judgeFreshness } = await import('../../lib/phases/monitoring-checks.ts');
  const now = Date.parse('2026-12-01T10:00:00Z');
  const target = (pod: string, lastScrape: string) => ({
    labels: { service: 'redis-shared-metrics', pod },
    lastScrape,
  });
  const pods = ['redis-shared-master-0', 'redis-shared-replicas-0'];
  const fresh = judgeFreshness(
    [target(pods[0]!, '2026-12-01T09:59:55Z'), target(pods[1]!, '2026-12-01T09:59:46Z')],
    'redis-shared-metrics',
    pods,
    now,
  );
  t.ok(fresh.ok);
  t.match(fresh.detail, /redis-shared-master-0 5\.0 s ago, redis-shared-replicas-0 14\.0 s ago/);
  const stale = judgeFreshness(
    [target(pods[0]!, '2026-12-01T09:59:55Z'), target(pods[1]!, '2026-12-01T09:59:30Z')],
    'redis-shared-metrics',
    pods,
    now,
  );
  t.notOk(stale.ok, 'a configured interval does not make 30 s old metrics fresh');
  t.notOk(judgeFreshness([], 'redis-shared-metrics', pods, now).ok, 'never scraped');
});
