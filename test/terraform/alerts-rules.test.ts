// The PrometheusRule's alerts: checked and unit-tested by the real promtool on the rendered
// alerts.yaml, and every runbook_url answered by a section of checklists/alerts.md.
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { parse as parseYaml, stringify } from 'yaml';
import { renderTemplate, templateVariableNames } from '../../sandbox/tofu/template.ts';
import {
  ALERTS_PATH,
  CHECKLIST_PATH,
  loadAlerts,
  markdownAnchors,
  markdownSections,
} from '../helpers/terraform-alerts.ts';
import { findTerraformBinary, needsBinary, renderWithCli } from '../helpers/terraform-cli.ts';
import { REPO_ROOT } from '../helpers/terraform-hcl.ts';

const FIXTURES = join(REPO_ROOT, 'test', 'fixtures', 'alerts');
const PROMTOOL = process.env.PROMTOOL ?? 'promtool';

interface FiringCase {
  name: string;
  series: Record<string, string | null>;
  checks: { eval_time: string; alertname: string; exp_alerts: unknown[] }[];
}

const alerts = await loadAlerts();
const bin = await findTerraformBinary();
const checklist = await readFile(CHECKLIST_PATH, 'utf8');
const healthy = parseYaml(await readFile(join(FIXTURES, 'healthy-series.yaml'), 'utf8')) as Record<
  string,
  string
>;
const cases = parseYaml(
  renderTemplate(await readFile(join(FIXTURES, 'firing-cases.yaml'), 'utf8'), alerts.vars),
) as FiringCase[];

const workDir = await mkdtemp(join(tmpdir(), 'alerts-test-'));
t.teardown(() => rm(workDir, { recursive: true, force: true }));
const rulesFile = join(workDir, 'redis-shared.rules.yaml');
// A PrometheusRule spec is a Prometheus rule file (the same `groups:` document), so promtool
// reads the rendered alerts.yaml byte for byte as monitoring.tf applies it.
await writeFile(rulesFile, alerts.text);

function promtool(args: string[]): Promise<{ code: number; output: string }> {
  return new Promise((resolve, reject) => {
    execFile(PROMTOOL, args, { cwd: workDir, timeout: 60_000 }, (err, stdout, stderr) => {
      if (err && typeof err.code !== 'number') return reject(err);
      resolve({ code: err ? Number(err.code) : 0, output: `${stdout}${stderr}` });
    });
  });
}

async function promtoolTest(name: string, tests: unknown[]) {
  const file = join(workDir, `${name}.test.yaml`);
  await writeFile(
    file,
    stringify({ rule_files: [rulesFile], evaluation_interval: '1m', tests }, { lineWidth: 0 }),
  );
  return promtool(['test', 'rules', file]);
}

function seriesFor(overrides: Record<string, string | null>) {
  const merged: Record<string, string | null> = { ...healthy, ...overrides };
  return Object.entries(merged)
    .filter((entry): entry is [string, string] => entry[1] !== null)
    .map(([series, values]) => ({ series, values }));
}

t.test('alerts.yaml interpolates only runbook_base_url and release_name', async (t) => {
  t.same(templateVariableNames(alerts.template), ['release_name', 'runbook_base_url']);
  t.notMatch(alerts.text, /\$\{|%\{/, 'nothing left to interpolate');
});

t.test(
  'the test renderer renders alerts.yaml as templatefile() does',
  needsBinary(bin),
  async (t) => {
    t.comment(`cross-checked with ${bin!.name} console templatefile()`);
    t.equal(await renderWithCli(bin!, ALERTS_PATH, alerts.vars), alerts.text);
  },
);

t.test(
  'US3 AS-2: at least 10 alerts with unique names, one per failure the module watches',
  async (t) => {
    const names = alerts.rules.map((r) => r.alert);
    t.ok(names.length >= 10, `${names.length} alerts`);
    t.equal(new Set(names).size, names.length, 'no duplicate alert names');
    // The module README's list: down, missing master, replication, memory, connections, rejected,
    // persistence, evictions, hit rate, exporter scrape, then the early warnings and TN-99's
    // slow-query and lag alerts.
    for (const name of [
      'RedisDown',
      'RedisMissingMaster',
      'RedisReplicationBroken',
      'RedisNoReplicaConnected',
      'RedisOutOfMemory',
      'RedisTooManyConnections',
      'RedisRejectedConnections',
      'RedisPersistenceFailure',
      'RedisEvictingKeys',
      'RedisLowHitRate',
      'RedisExporterScrapeFailing',
      'RedisHighMemoryUsage',
      'RedisHighConnectionUsage',
      'RedisSlowQueries',
      'RedisReplicationLag',
    ]) {
      t.ok(names.includes(name), name);
    }
  },
);

t.test('every alert has severity, summary, description and a runbook_url', async (t) => {
  const anchors = markdownAnchors(checklist);
  const base = String(alerts.vars.runbook_base_url);
  for (const rule of alerts.rules) {
    t.match(rule.labels.severity, /^(critical|warning)$/, `${rule.alert} severity`);
    t.ok(rule.annotations.summary?.trim(), `${rule.alert} summary`);
    t.ok(rule.annotations.description?.trim(), `${rule.alert} description`);
    const url = rule.annotations.runbook_url ?? '';
    t.ok(url.startsWith(`${base}#`), `${rule.alert} runbook_url starts with runbook_base_url#`);
    const anchor = url.slice(base.length + 1);
    t.ok(anchors.has(anchor), `${rule.alert}: #${anchor} exists in checklists/alerts.md`);
    t.equal(anchor, rule.alert.toLowerCase(), `${rule.alert} links to its own section`);
  }
});

t.test('checklists/alerts.md: one section per alert, each in the runbooks shape', async (t) => {
  const sections = markdownSections(checklist);
  const alertNames = alerts.rules.map((r) => r.alert).sort();
  const alertSections = [...sections.keys()].filter((s) => /^Redis/.test(s)).sort();
  t.same(alertSections, alertNames, 'the same names, no orphan section');
  for (const name of alertNames) {
    t.same(
      sections.get(name),
      ['Symptoms', 'Pre-checks', 'Resolution', 'Post-checks', 'Rollback'],
      `${name}: symptoms, pre-checks, resolution, post-checks, rollback`,
    );
  }
});

t.test('the anchor check fails for a heading that does not exist', async (t) => {
  const anchors = markdownAnchors(
    '# Title\n## RedisDown\n### Symptoms\n## RedisDown\n```\n## no\n```\n',
  );
  t.ok(anchors.has('redisdown'));
  t.ok(anchors.has('redisdown-1'), 'repeated headings are numbered like GitHub does');
  t.notOk(anchors.has('no'), 'headings inside code fences are not anchors');
  t.notOk(anchors.has('redismissingmaster'));
});

t.test('promtool check rules accepts the rendered PrometheusRule spec', async (t) => {
  const { code, output } = await promtool(['check', 'rules', rulesFile]);
  t.equal(code, 0, output);
  t.match(output, new RegExp(`SUCCESS: ${alerts.rules.length} rules found`));
});

t.test('promtool check rules rejects a broken expression (the check can fail)', async (t) => {
  const broken = join(workDir, 'broken.rules.yaml');
  await writeFile(
    broken,
    stringify({ groups: [{ name: 'x', rules: [{ alert: 'X', expr: 'redis_up ==' }] }] }),
  );
  const { code } = await promtool(['check', 'rules', broken]);
  t.not(code, 0);
});

t.test('promtool test rules: every alert stays quiet on two healthy instances', async (t) => {
  const tests = [
    {
      interval: '1m',
      input_series: seriesFor({}),
      alert_rule_test: ['10m', '20m', '39m'].flatMap((evalTime) =>
        alerts.rules.map((r) => ({ eval_time: evalTime, alertname: r.alert, exp_alerts: [] })),
      ),
    },
  ];
  const { code, output } = await promtoolTest('healthy', tests);
  t.equal(code, 0, output);
});

for (const [index, c] of cases.entries()) {
  t.test(`promtool test rules: ${c.name}`, async (t) => {
    const tests = [
      { interval: '1m', input_series: seriesFor(c.series), alert_rule_test: c.checks },
    ];
    const { code, output } = await promtoolTest(`case-${index}`, tests);
    t.equal(code, 0, output);
  });
}

t.test(
  'promtool test rules fails when an expected alert does not fire (the test can fail)',
  async (t) => {
    const tests = [
      {
        interval: '1m',
        input_series: seriesFor({}),
        alert_rule_test: [
          {
            eval_time: '10m',
            alertname: 'RedisDown',
            exp_alerts: [{ exp_labels: { severity: 'critical' } }],
          },
        ],
      },
    ];
    const { code } = await promtoolTest('negative', tests);
    t.not(code, 0);
  },
);
