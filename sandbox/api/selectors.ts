// Label and field selectors as the API server parses them from `labelSelector=` and
// `fieldSelector=` (the string forms kubectl and client-node send).
import type { KubeObject } from '../runtime.ts';
import { badRequest } from './status.ts';

type Requirement =
  | { key: string; op: 'eq' | 'neq'; values: [string] }
  | { key: string; op: 'in' | 'notin'; values: string[] }
  | { key: string; op: 'exists' | 'absent'; values: [] };

export type Matcher = (obj: KubeObject) => boolean;

/** Splits on commas that are not inside `in (a,b)` parentheses. */
function splitTerms(selector: string): string[] {
  const terms: string[] = [];
  let depth = 0;
  let current = '';
  for (const ch of selector) {
    if (ch === '(') depth++;
    if (ch === ')') depth--;
    if (ch === ',' && depth === 0) {
      terms.push(current);
      current = '';
    } else current += ch;
  }
  terms.push(current);
  return terms.map((t) => t.trim()).filter(Boolean);
}

function parseLabelTerm(term: string): Requirement {
  const setMatch = /^([^\s!=]+)\s+(in|notin)\s*\(([^)]*)\)$/.exec(term);
  if (setMatch) {
    const values = setMatch[3]!.split(',').map((v) => v.trim());
    return { key: setMatch[1]!, op: setMatch[2] as 'in' | 'notin', values };
  }
  const neq = /^([^\s!=]+)\s*!=\s*(\S*)$/.exec(term);
  if (neq) return { key: neq[1]!, op: 'neq', values: [neq[2]!] };
  const eq = /^([^\s!=]+)\s*==?\s*(\S*)$/.exec(term);
  if (eq) return { key: eq[1]!, op: 'eq', values: [eq[2]!] };
  if (/^![^\s!=]+$/.test(term)) return { key: term.slice(1), op: 'absent', values: [] };
  if (/^[^\s!=(),]+$/.test(term)) return { key: term, op: 'exists', values: [] };
  throw badRequest(`unable to parse requirement: invalid label selector "${term}"`);
}

function matches(req: Requirement, value: string | undefined): boolean {
  switch (req.op) {
    case 'eq':
      return value === req.values[0];
    case 'neq':
      return value !== req.values[0];
    case 'in':
      return value !== undefined && req.values.includes(value);
    case 'notin':
      return value === undefined || !req.values.includes(value);
    case 'exists':
      return value !== undefined;
    case 'absent':
      return value === undefined;
  }
}

export function parseLabelSelector(selector: string | null | undefined): Matcher {
  if (!selector) return () => true;
  const reqs = splitTerms(selector).map(parseLabelTerm);
  return (obj) => reqs.every((r) => matches(r, obj.metadata.labels?.[r.key]));
}

/** A Deployment/Job style `{matchLabels, matchExpressions}` selector as a matcher. */
export function labelSelectorMatcher(selector: {
  matchLabels?: Record<string, string>;
  matchExpressions?: Array<{ key: string; operator: string; values?: string[] }>;
}): Matcher {
  const reqs: Requirement[] = Object.entries(selector.matchLabels ?? {}).map(([key, value]) => ({
    key,
    op: 'eq' as const,
    values: [value] as [string],
  }));
  for (const expr of selector.matchExpressions ?? []) {
    const op = { In: 'in', NotIn: 'notin', Exists: 'exists', DoesNotExist: 'absent' }[
      expr.operator
    ];
    if (!op) throw badRequest(`unknown selector operator ${expr.operator}`);
    reqs.push({ key: expr.key, op, values: expr.values ?? [] } as Requirement);
  }
  return (obj) => reqs.every((r) => matches(r, obj.metadata.labels?.[r.key]));
}

/** `{matchLabels}` rendered the way `status.selector` of a scale subresource carries it. */
export function selectorString(selector: { matchLabels?: Record<string, string> }): string {
  return Object.entries(selector.matchLabels ?? {})
    .map(([k, v]) => `${k}=${v}`)
    .join(',');
}

function fieldValue(obj: KubeObject, path: string): string | undefined {
  let cur: unknown = obj;
  for (const part of path.split('.')) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string, unknown>)[part];
  }
  if (cur === undefined || cur === null) return undefined;
  return String(cur);
}

export function parseFieldSelector(selector: string | null | undefined): Matcher {
  if (!selector) return () => true;
  const reqs = splitTerms(selector).map((term) => {
    const m = /^([^!=]+?)\s*(!=|==|=)\s*(.*)$/.exec(term);
    if (!m) throw badRequest(`invalid field selector: "${term}"`);
    return { path: m[1]!.trim(), negate: m[2] === '!=', value: m[3]!.trim() };
  });
  return (obj) =>
    reqs.every((r) => {
      // The API server treats a missing string field as empty for field selectors.
      const value = fieldValue(obj, r.path) ?? '';
      return r.negate ? value !== r.value : value === r.value;
    });
}
