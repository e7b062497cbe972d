// The alert drill's timeouts, from each rule's for, its group's evaluation and the scrape interval.
import t from 'tap';
import {
  alertingRules,
  alertState,
  firingTimeoutMs,
  prometheusDurationMs,
  resolveTimeoutMs,
  scrapeIntervalMs,
} from '../../lib/phases/alert-drill.ts';

t.test('alert drill timeouts come from for, evaluation and scrape intervals', async (t) => {
  t.equal(prometheusDurationMs('15s'), 15_000);
  t.equal(prometheusDurationMs('1m30s'), 90_000);
  t.equal(prometheusDurationMs(60), 60_000);
  t.equal(prometheusDurationMs('2.5'), 2500);
  t.equal(prometheusDurationMs(''), undefined);
  t.equal(prometheusDurationMs(undefined), undefined);
  t.equal(prometheusDurationMs(-1), undefined);
  // The homelab: for 2m, evaluated every 30s, scraped every 15s.
  const real = { forMs: 120_000, evaluationMs: 30_000, scrapeMs: 15_000 };
  t.equal(firingTimeoutMs(real), 2 * (30_000 + 60_000 + 120_000));
  t.equal(resolveTimeoutMs(real, 20_000), 2 * (20_000 + 30_000 + 60_000));
  // The sandbox: everything shortened; the floor keeps a slow machine from failing the drill.
  t.equal(firingTimeoutMs({ forMs: 2000, evaluationMs: 1000, scrapeMs: 1000 }), 30_000);
  const groups = [
    {
      name: 'redis-shared.critical',
      interval: 30,
      rules: [
        { type: 'alerting', name: 'RedisDown', duration: 60, query: 'redis_up == 0' },
        { type: 'recording', name: 'x' },
      ],
    },
    { name: 'g2', rules: [{ type: 'alerting', name: 'NoFor' }] },
  ];
  t.same(alertingRules(groups), [
    {
      name: 'RedisDown',
      group: 'redis-shared.critical',
      forMs: 60_000,
      evaluationMs: 30_000,
      query: 'redis_up == 0',
    },
    { name: 'NoFor', group: 'g2', forMs: 0, evaluationMs: 60_000, query: '' },
  ]);
  t.equal(scrapeIntervalMs([{ scrapeInterval: '15s' }, { scrapeInterval: '30s' }, {}]), 30_000);
  t.equal(scrapeIntervalMs([{}]), undefined);
  const alerts = [
    { labels: { alertname: 'RedisDown' }, state: 'pending' },
    { labels: { alertname: 'RedisDown' }, state: 'firing' },
    { labels: { alertname: 'Other' }, state: 'pending' },
  ];
  t.equal(alertState(alerts, 'RedisDown'), 'firing');
  t.equal(alertState(alerts, 'Other'), 'pending');
  t.equal(alertState(alerts, 'Missing'), 'inactive');
});
