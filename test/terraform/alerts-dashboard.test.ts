// US3 AS-1/AS-3: the Grafana dashboard the ConfigMap ships shows, per instance, what the spec
// names: uptime, memory, clients, commands per second, hit rate, replication lag and link,
// evictions.
import { readFile } from 'node:fs/promises';
import t from 'tap';
import { DASHBOARD_PATH } from '../helpers/terraform-alerts.ts';

interface Panel {
  id: number;
  title: string;
  type: string;
  targets: { expr: string; refId: string }[];
  gridPos: { x: number; y: number; w: number; h: number };
}

const dashboard = JSON.parse(await readFile(DASHBOARD_PATH, 'utf8')) as {
  uid: string;
  title: string;
  refresh: string;
  panels: Panel[];
  templating: { list: { name: string; type: string; query: unknown; multi?: boolean }[] };
};

const panelReading = (metric: RegExp) =>
  dashboard.panels.filter((p) => p.targets.some((target) => metric.test(target.expr)));

t.test('the dashboard has a fixed uid and refreshes every 15s (SC-005)', async (t) => {
  t.equal(dashboard.uid, 'redis-shared');
  t.equal(dashboard.refresh, '15s');
  t.equal(new Set(dashboard.panels.map((p) => p.id)).size, dashboard.panels.length, 'unique ids');
});

t.test('US3 AS-1/AS-3: a panel for each metric the spec names', async (t) => {
  const required: [string, RegExp][] = [
    ['uptime', /redis_uptime_in_seconds/],
    ['up', /redis_up\b/],
    ['memory', /redis_memory_used_bytes/],
    ['clients', /redis_connected_clients/],
    ['ops/s', /rate\(redis_commands_processed_total/],
    ['hit rate', /redis_keyspace_hits_total.*redis_keyspace_misses_total/],
    ['replication lag', /redis_connected_slave_lag_seconds/],
    ['replication link', /redis_master_link_up/],
    ['evictions', /redis_evicted_keys_total/],
  ];
  for (const [what, metric] of required) {
    t.ok(panelReading(metric).length > 0, `${what} panel`);
  }
});

t.test('every panel is per instance: filtered by $instance, legend by instance', async (t) => {
  const instance = dashboard.templating.list.find((v) => v.name === 'instance');
  t.ok(instance?.multi, 'multi-select instance variable');
  t.match(JSON.stringify(instance?.query), /label_values\(redis_up, instance\)/);
  t.ok(dashboard.templating.list.some((v) => v.name === 'datasource' && v.type === 'datasource'));
  for (const panel of dashboard.panels) {
    t.ok(panel.targets.length > 0, `${panel.title} has queries`);
    for (const target of panel.targets) {
      t.match(target.expr, /instance=~"\$instance"/, `${panel.title} ${target.refId}`);
    }
  }
});

t.test('panels do not overlap on the 24-column grid', async (t) => {
  const cells = new Map<string, string>();
  const clashes: string[] = [];
  for (const p of dashboard.panels) {
    if (p.gridPos.x + p.gridPos.w > 24) clashes.push(`${p.title} is wider than the grid`);
    for (let x = p.gridPos.x; x < p.gridPos.x + p.gridPos.w; x++) {
      for (let y = p.gridPos.y; y < p.gridPos.y + p.gridPos.h; y++) {
        const other = cells.get(`${x},${y}`);
        if (other) clashes.push(`${p.title} overlaps ${other} at ${x},${y}`);
        cells.set(`${x},${y}`, p.title);
      }
    }
  }
  t.same(clashes, []);
});
