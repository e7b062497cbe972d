// lib/cluster/prometheus.ts: a real prometheus process behind the sandbox's
// monitoring/kube-prometheus-stack-prometheus Service, reached through the API's service proxy.
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import t from 'tap';
import { createKube } from '../../lib/cluster/kube.ts';
import {
  prometheusAlerts,
  prometheusQuery,
  prometheusRules,
  prometheusTargets,
} from '../../lib/cluster/prometheus.ts';
import { sandboxConfig } from '../helpers/kube-config.ts';
import { startTestSandbox } from '../helpers/sandbox.ts';

t.setTimeout(120_000);

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const { port } = server.address() as { port: number };
  await new Promise((r) => server.close(r));
  return port;
}

/** Checks `probe` until it returns a value; a condition wait with a deadline, not a sleep. */
async function until<T>(what: string, probe: () => Promise<T | undefined>, ms = 30_000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await delay(100);
  }
}

t.test('query, targets, rules and alerts through the service proxy', async (t) => {
  const fx = await startTestSandbox(t);
  const dir = mkdtempSync(join(tmpdir(), 'prometheus-test-'));
  let prometheus: ChildProcess | undefined;
  t.teardown(async () => {
    if (prometheus && prometheus.exitCode === null) {
      prometheus.kill('SIGTERM');
      await once(prometheus, 'exit');
    }
    rmSync(dir, { recursive: true, force: true });
  });
  const port = await freePort();
  writeFileSync(
    join(dir, 'rules.yml'),
    [
      'groups:',
      '- name: test',
      '  interval: 1s',
      '  rules:',
      '  - alert: AlwaysFiring',
      '    expr: vector(1)',
      '    labels: {severity: info}',
      '    annotations: {summary: fires at once}',
      '',
    ].join('\n'),
  );
  writeFileSync(
    join(dir, 'prometheus.yml'),
    [
      'global: {scrape_interval: 1s, evaluation_interval: 1s}',
      `rule_files: [${join(dir, 'rules.yml')}]`,
      'scrape_configs:',
      '- job_name: self',
      `  static_configs: [{targets: ["127.0.0.1:${port}"]}]`,
      '',
    ].join('\n'),
  );
  prometheus = spawn(
    'prometheus',
    [
      `--config.file=${join(dir, 'prometheus.yml')}`,
      `--storage.tsdb.path=${join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
    ],
    { stdio: 'ignore' },
  );
  const cfg = sandboxConfig(fx);
  const ctx = { cfg, kube: createKube(cfg) };

  await t.rejects(prometheusQuery(ctx, 'up'), {
    message: /answered 503 to query: .*kubectl get pods -n monitoring/,
  });
  fx.sandbox.cluster.setServiceProxyTarget(
    'monitoring',
    'kube-prometheus-stack-prometheus',
    9090,
    `http://127.0.0.1:${port}`,
  );

  const up = await until('the self scrape', async () => {
    const samples = await prometheusQuery(ctx, 'up{job="self"}');
    return samples[0]?.value[1] === '1' ? samples : undefined;
  });
  t.match(up[0]?.metric, { job: 'self', instance: `127.0.0.1:${port}` });
  t.match(await prometheusQuery(ctx, 'scalar(vector(42))'), [
    { metric: {}, value: [Number, '42'] },
  ]);
  await t.rejects(prometheusQuery(ctx, 'up{'), { message: /refused query: bad_data/ });
  await t.rejects(prometheusQuery(ctx, 'up[1m]'), { message: /gives a matrix/ });

  const targets = await prometheusTargets(ctx);
  t.match(targets, [{ scrapePool: 'self', health: 'up' }]);
  const groups = await prometheusRules(ctx);
  t.match(groups, [{ name: 'test', rules: [{ name: 'AlwaysFiring', type: 'alerting' }] }]);
  const alerts = await until('the alert to fire', async () => {
    const list = await prometheusAlerts(ctx);
    return list.some((a) => a.state === 'firing') ? list : undefined;
  });
  t.match(alerts, [{ labels: { alertname: 'AlwaysFiring', severity: 'info' }, state: 'firing' }]);
  t.same(await fx.journal(), [], 'reads only');
});
