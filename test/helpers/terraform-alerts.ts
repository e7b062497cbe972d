// alerts.yaml as the module applies it: rendered with the module's alerts_template_vars at
// their defaults, then parsed into the PrometheusRule spec that promtool and Prometheus read.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { renderTemplate, type TemplateVars } from '../../sandbox/tofu/template.ts';
import { loadModule, REDIS_SHARED_DIR, REPO_ROOT, resolveValue } from './terraform-hcl.ts';

export const ALERTS_PATH = join(REDIS_SHARED_DIR, 'alerts.yaml');
export const DASHBOARD_PATH = join(REDIS_SHARED_DIR, 'dashboards', 'redis-shared.json');
export const CHECKLIST_PATH = join(REPO_ROOT, 'checklists', 'alerts.md');

export interface AlertRule {
  alert: string;
  expr: string;
  for?: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
}

export interface RuleGroup {
  name: string;
  rules: AlertRule[];
}

export interface RenderedAlerts {
  vars: TemplateVars;
  template: string;
  text: string;
  groups: RuleGroup[];
  rules: AlertRule[];
}

export async function loadAlerts(): Promise<RenderedAlerts> {
  const mod = await loadModule(REDIS_SHARED_DIR);
  const vars = resolveValue(mod, mod.locals.alerts_template_vars) as TemplateVars;
  const template = await readFile(ALERTS_PATH, 'utf8');
  const text = renderTemplate(template, vars);
  const { groups } = parseYaml(text) as { groups: RuleGroup[] };
  return { vars, template, text, groups, rules: groups.flatMap((g) => g.rules) };
}

/** GitHub's heading anchors: lower case, punctuation dropped, spaces to '-', repeats numbered. */
export function markdownAnchors(markdown: string): Set<string> {
  const anchors = new Set<string>();
  const seen = new Map<string, number>();
  let inFence = false;
  for (const line of markdown.split('\n')) {
    if (/^\s*```/.test(line)) inFence = !inFence;
    const heading = inFence ? null : /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (!heading) continue;
    const base = (heading[1] as string)
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\s_-]/gu, '')
      .replace(/\s/g, '-');
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    anchors.add(n === 0 ? base : `${base}-${n}`);
  }
  return anchors;
}

/** The level-2 sections of a markdown file with the level-3 headings inside each. */
export function markdownSections(markdown: string): Map<string, string[]> {
  const sections = new Map<string, string[]>();
  let current: string[] | undefined;
  for (const line of markdown.split('\n')) {
    const h2 = /^##\s+(.+)$/.exec(line);
    const h3 = /^###\s+(.+)$/.exec(line);
    if (h2) {
      current = [];
      sections.set((h2[1] as string).trim(), current);
    } else if (h3 && current) current.push((h3[1] as string).trim());
  }
  return sections;
}

// Keywords and aggregation operators (which may be followed by `by (…)` rather than `(`).
const PROMQL_WORDS = new Set([
  'sum',
  'min',
  'max',
  'avg',
  'count',
  'group',
  'stddev',
  'stdvar',
  'topk',
  'bottomk',
  'quantile',
  'count_values',
  'and',
  'or',
  'unless',
  'by',
  'without',
  'on',
  'ignoring',
  'group_left',
  'group_right',
  'offset',
  'bool',
]);

/** Metric names a PromQL expression reads (function names and label names excluded). */
export function metricNames(expr: string): string[] {
  const withoutStrings = expr.replace(/"[^"]*"/g, '""').replace(/\{[^}]*\}/g, '{}');
  const withoutRanges = withoutStrings.replace(/\[[^\]]*\]/g, '');
  const names = new Set<string>();
  for (const m of withoutRanges.matchAll(/[a-zA-Z_:][a-zA-Z0-9_:]*/g)) {
    const word = m[0];
    const next = withoutRanges.slice((m.index ?? 0) + word.length).trimStart();
    if (next.startsWith('(')) continue;
    if (PROMQL_WORDS.has(word)) continue;
    const before = withoutRanges.slice(0, m.index).trimEnd();
    // Label lists of by/on/without/group_left are inside parentheses after those words.
    if (/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*$/.test(before)) continue;
    if (/^[0-9]/.test(word) || /^(e|Inf|NaN)$/.test(word)) continue;
    names.add(word);
  }
  return [...names].sort();
}
