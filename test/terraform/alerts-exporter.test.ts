// The metric names the alerts and the dashboard read are the ones the real redis_exporter
// publishes, for a master and a replica configured like the chart's pods (our redis.conf
// hardening, FLUSHDB/FLUSHALL/SHUTDOWN renamed away, password required).
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { parse as parseYaml } from 'yaml';
import { renderTemplate } from '../../sandbox/tofu/template.ts';
import {
  freePort,
  type RedisServer,
  startRedisServer,
  waitForReplicaLink,
} from '../helpers/redis-server.ts';
import { DASHBOARD_PATH, loadAlerts, metricNames } from '../helpers/terraform-alerts.ts';
import { loadModule, REDIS_SHARED_DIR, resolveValue } from '../helpers/terraform-hcl.ts';

const EXPORTER = process.env.REDIS_EXPORTER ?? 'prometheus-redis-exporter';
const READY_TIMEOUT_MS = 15_000;

interface Exporter {
  url: string;
  scrape(): Promise<string>;
}

/** Starts redis_exporter for one server; the password reaches it through its environment. */
async function startExporter(t: Test, server: RedisServer, password: string): Promise<Exporter> {
  // freePort() then listen is racy: another process may take the port in between, so an
  // exporter that cannot bind is started again on a new port.
  for (let attempt = 0; attempt < 5; attempt++) {
    const exporter = await launchExporter(t, server, password, await freePort());
    if (exporter) return exporter;
  }
  throw new Error('redis_exporter found no free port in 5 attempts');
}

async function launchExporter(
  t: Test,
  server: RedisServer,
  password: string,
  port: number,
): Promise<Exporter | null> {
  const child: ChildProcess = spawn(
    EXPORTER,
    [
      '-redis.addr',
      `redis://${server.host}:${server.port}`,
      '-web.listen-address',
      `127.0.0.1:${port}`,
    ],
    { env: { ...process.env, REDIS_PASSWORD: password }, stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  child.stderr?.on('data', (d) => {
    stderr += d;
  });
  t.teardown(async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = once(child, 'exit');
    child.kill('SIGTERM');
    await exited;
  });
  const url = `http://127.0.0.1:${port}/metrics`;
  const scrape = async () => {
    const res = await fetch(url);
    return res.text();
  };
  const deadline = Date.now() + READY_TIMEOUT_MS;
  for (;;) {
    if (child.exitCode !== null) {
      if (/address already in use/i.test(stderr)) return null;
      throw new Error(`redis_exporter exited: ${stderr}`);
    }
    const body = await scrape().catch(() => '');
    if (/^redis_up 1$/m.test(body)) return { url, scrape };
    if (Date.now() > deadline) {
      throw new Error(`redis_exporter on ${port} never reported redis_up 1`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

function exportedNames(body: string): Set<string> {
  return new Set(
    body
      .split('\n')
      .filter((l) => l && !l.startsWith('#'))
      .map((l) => l.split(/[{ ]/)[0] as string),
  );
}

function sample(body: string, name: string, labelPattern = ''): number | undefined {
  const re = new RegExp(`^${name}(\\{[^}]*${labelPattern}[^}]*\\})? (\\S+)$`, 'm');
  const m = re.exec(body);
  return m ? Number(m[2]) : undefined;
}

const mod = await loadModule(REDIS_SHARED_DIR);
const values = parseYaml(
  renderTemplate(
    await readFile(join(REDIS_SHARED_DIR, 'values.yaml.tftpl'), 'utf8'),
    resolveValue(mod, mod.locals.values_template_vars) as Record<string, unknown>,
  ),
) as { commonConfiguration: string; master: { disableCommands: string[] } };
const podConfig = [
  ...values.commonConfiguration.split('\n').filter((l) => l.trim() && !l.startsWith('#')),
  // What the chart does with disableCommands: rename each to the empty string.
  ...values.master.disableCommands.map((c) => `rename-command ${c} ""`),
];

const password = randomBytes(24).toString('hex');
const master = await startRedisServer(t, { password, config: podConfig });
const replica = await startRedisServer(t, {
  password,
  config: podConfig,
  replicaOf: { host: master.host, port: master.port, password },
});
await waitForReplicaLink(replica);
const masterExporter = await startExporter(t, master, password);
const replicaExporter = await startExporter(t, replica, password);
const masterBody = await masterExporter.scrape();
const replicaBody = await replicaExporter.scrape();
const exported = new Set([...exportedNames(masterBody), ...exportedNames(replicaBody)]);

t.test(
  'every metric an alert reads is exported by redis_exporter (or is Prometheus up)',
  async (t) => {
    const alerts = await loadAlerts();
    for (const rule of alerts.rules) {
      for (const name of metricNames(rule.expr)) {
        t.ok(name === 'up' || exported.has(name), `${rule.alert}: ${name}`);
      }
    }
  },
);

t.test('every metric a dashboard panel reads is exported by redis_exporter', async (t) => {
  const dashboard = JSON.parse(await readFile(DASHBOARD_PATH, 'utf8')) as {
    panels: { title: string; targets: { expr: string }[] }[];
  };
  for (const panel of dashboard.panels) {
    for (const target of panel.targets) {
      for (const name of metricNames(target.expr)) {
        t.ok(exported.has(name), `${panel.title}: ${name}`);
      }
    }
  }
});

t.test('the metric-name extraction sees through functions, labels and ranges', async (t) => {
  t.same(
    metricNames(
      'sum by (instance) (rate(redis_keyspace_hits_total{instance=~"$instance"}[5m])) / on (instance) redis_up > 0.8 and absent(up{job="x"}) == 1',
    ),
    ['redis_keyspace_hits_total', 'redis_up', 'up'],
  );
  t.notOk(exported.has('redis_not_a_metric'), 'an unknown name would fail the checks above');
});

t.test(
  'CONFIG stays usable with the commands renamed: maxclients and maxmemory exported',
  async (t) => {
    t.equal(sample(masterBody, 'redis_config_maxclients'), 10000);
    t.equal(sample(masterBody, 'redis_memory_max_bytes'), 1024 ** 3);
    t.equal(sample(masterBody, 'redis_instance_info', 'role="master"'), 1);
    t.equal(sample(masterBody, 'redis_connected_slaves'), 1);
    t.ok(sample(masterBody, 'redis_connected_slave_lag_seconds') !== undefined, 'replica lag');
    t.equal(sample(replicaBody, 'redis_instance_info', 'role="slave"'), 1);
    t.equal(sample(replicaBody, 'redis_master_link_up'), 1);
    t.match(masterBody, /maxmemory_policy="allkeys-lru"/);
  },
);

t.test(
  'RedisDown and RedisReplicationBroken inputs: redis_up and the link drop to 0',
  async (t) => {
    await master.stop();
    const deadline = Date.now() + READY_TIMEOUT_MS;
    let masterUp: number | undefined;
    let link: number | undefined;
    while (Date.now() < deadline) {
      masterUp = sample(await masterExporter.scrape(), 'redis_up');
      link = sample(await replicaExporter.scrape(), 'redis_master_link_up');
      if (masterUp === 0 && link === 0) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    t.equal(masterUp, 0, 'redis_up 0 for the stopped master');
    t.equal(link, 0, 'redis_master_link_up 0 on its replica');
  },
);
