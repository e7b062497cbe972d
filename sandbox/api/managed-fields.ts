// metadata.managedFields as the API server keeps them (structured-merge-diff, FieldsV1): who set
// which field, by `Update` (create, replace, merge/JSON/strategic patch) or by `Apply`
// (server-side apply). Enough of its rules for the runbooks to ask who owns a container's env:
// - an Update makes its manager the owner of every field it changed and takes them from others;
// - an Apply owns exactly the fields of the applied configuration: a field another manager owns
//   with a different value is a conflict (409) unless forced, which takes it over; a field the
//   manager applied before and no longer applies is removed when no other manager owns it.
// List items are keyed by `name` (containers, env, ports, volumes), else by `containerPort` or
// `port`; other lists are owned whole. Status and server-set metadata are never owned.
import type { KubeObject } from '../runtime.ts';
import { ApiError } from './status.ts';

// biome-ignore lint/suspicious/noExplicitAny: JSON values
type Json = any;

/** A field path: segments `f:<key>` and `k:<key json>`, joined by a NUL. */
type Path = string;
const SEP = '\u0000';
const SKIP_METADATA = new Set([
  'uid',
  'resourceVersion',
  'generation',
  'creationTimestamp',
  'managedFields',
  'name',
  'namespace',
  'deletionTimestamp',
  'deletionGracePeriodSeconds',
]);

export interface ManagedFieldsEntry {
  manager: string;
  operation: 'Apply' | 'Update';
  apiVersion: string;
  time: string;
  fieldsType: 'FieldsV1';
  fieldsV1: Json;
  subresource?: string;
}

function itemKey(item: Json): string | undefined {
  if (!item || typeof item !== 'object' || Array.isArray(item)) return undefined;
  for (const k of ['name', 'containerPort', 'port']) {
    if (item[k] !== undefined) return JSON.stringify({ [k]: item[k] });
  }
  return undefined;
}

/** Every leaf (and keyed list item, as `<item>.`) that `value` sets, as paths. */
function leaves(value: Json, prefix: string[], out: Map<Path, Json>): void {
  if (Array.isArray(value)) {
    const keyed = value.length > 0 && value.every((v) => itemKey(v) !== undefined);
    if (!keyed) {
      out.set(prefix.join(SEP), value);
      return;
    }
    for (const item of value) {
      const itemPath = [...prefix, `k:${itemKey(item)}`];
      out.set([...itemPath, '.'].join(SEP), true);
      leaves(item, itemPath, out);
    }
    return;
  }
  if (value && typeof value === 'object') {
    const entries = Object.entries(value);
    if (entries.length === 0) {
      out.set(prefix.join(SEP), value);
      return;
    }
    for (const [k, v] of entries) leaves(v, [...prefix, `f:${k}`], out);
    return;
  }
  out.set(prefix.join(SEP), value);
}

/** The owned paths of an object (its status and server-set metadata left out) and their values. */
export function fieldsOf(obj: KubeObject): Map<Path, Json> {
  const out = new Map<Path, Json>();
  for (const [k, v] of Object.entries(obj)) {
    if (k === 'status' || k === 'apiVersion' || k === 'kind') continue;
    if (k === 'metadata') {
      for (const [mk, mv] of Object.entries(v as Json)) {
        if (!SKIP_METADATA.has(mk)) leaves(mv, ['f:metadata', `f:${mk}`], out);
      }
      continue;
    }
    leaves(v, [`f:${k}`], out);
  }
  return out;
}

/** FieldsV1 JSON of a set of paths. */
function toFieldsV1(paths: Iterable<Path>): Json {
  const root: Json = {};
  for (const path of paths) {
    let node = root;
    for (const segment of path.split(SEP)) {
      node[segment] ??= {};
      node = node[segment];
    }
  }
  return root;
}

function fromFieldsV1(fields: Json, prefix: string[] = [], out = new Set<Path>()): Set<Path> {
  for (const [segment, child] of Object.entries(fields ?? {})) {
    const path = [...prefix, segment];
    if (segment === '.' || Object.keys(child as object).length === 0) out.add(path.join(SEP));
    else fromFieldsV1(child, path, out);
  }
  return out;
}

const now = () => new Date().toISOString().replace(/\.\d+Z$/, 'Z');

function entry(
  manager: string,
  operation: 'Apply' | 'Update',
  apiVersion: string,
  paths: Iterable<Path>,
  subresource?: string,
): ManagedFieldsEntry {
  return {
    manager,
    operation,
    apiVersion,
    time: now(),
    fieldsType: 'FieldsV1',
    fieldsV1: toFieldsV1(paths),
    ...(subresource ? { subresource } : {}),
  };
}

/** A path and the paths below it (an owned list item owns its fields' removal too). */
const within = (path: Path, prefix: Path) => path === prefix || path.startsWith(prefix + SEP);

/**
 * The managedFields after a create/replace/patch (Update) by `manager`: it owns what it changed;
 * fields that are gone are owned by no one.
 */
export function recordUpdate(
  before: KubeObject | undefined,
  after: KubeObject,
  manager: string,
  subresource?: string,
): ManagedFieldsEntry[] {
  const old = before ? fieldsOf(before) : new Map<Path, Json>();
  const now_ = fieldsOf(after);
  const changed = [...now_].filter(
    ([p, v]) => !old.has(p) || JSON.stringify(old.get(p)) !== JSON.stringify(v),
  );
  const changedPaths = new Set(changed.map(([p]) => p));
  const removed = [...old.keys()].some((p) => !now_.has(p));
  // A write that changes nothing leaves managedFields (and so the resourceVersion) alone.
  if (before && changedPaths.size === 0 && !removed) {
    return (before.metadata.managedFields ?? []) as ManagedFieldsEntry[];
  }
  const entries: ManagedFieldsEntry[] = [];
  let mine: Set<Path> = new Set();
  for (const e of (before?.metadata.managedFields ?? []) as ManagedFieldsEntry[]) {
    const kept = [...fromFieldsV1(e.fieldsV1)].filter((p) => now_.has(p) && !changedPaths.has(p));
    if (e.manager === manager && e.operation === 'Update' && e.subresource === subresource) {
      mine = new Set(kept);
      continue;
    }
    if (kept.length > 0) entries.push({ ...e, fieldsV1: toFieldsV1(kept) });
  }
  for (const p of changedPaths) mine.add(p);
  if (mine.size > 0) entries.push(entry(manager, 'Update', after.apiVersion, mine, subresource));
  return entries;
}

/** Removes the value at a path (a list item by its key) from an object, in place. */
function removePath(obj: Json, path: Path): void {
  const segments = path.split(SEP);
  if (segments[segments.length - 1] === '.') segments.pop();
  let node = obj;
  for (let i = 0; i < segments.length; i++) {
    const segment = segments[i] as string;
    const last = i === segments.length - 1;
    if (segment.startsWith('f:')) {
      const key = segment.slice(2);
      if (!node || typeof node !== 'object' || !(key in node)) return;
      if (last) delete node[key];
      else node = node[key];
    } else {
      const key = segment.slice(2);
      if (!Array.isArray(node)) return;
      const at = node.findIndex((item) => itemKey(item) === key);
      if (at < 0) return;
      if (last) node.splice(at, 1);
      else node = node[at];
    }
  }
}

/**
 * Server-side apply by `manager`: `merged` is the object with the applied configuration merged
 * in (patch.ts), `applied` the configuration itself. Returns the object to store, with its
 * managedFields, or throws the API server's 409 on a conflict that is not forced.
 */
export function recordApply(
  current: KubeObject | undefined,
  merged: KubeObject,
  applied: KubeObject,
  manager: string,
  force: boolean,
): KubeObject {
  const appliedFields = fieldsOf({ ...applied, metadata: { ...(applied.metadata ?? {}) } });
  const currentFields = current ? fieldsOf(current) : new Map<Path, Json>();
  const previous = (current?.metadata.managedFields ?? []) as ManagedFieldsEntry[];
  const conflicts: Array<{ manager: string; apiVersion: string; path: string }> = [];
  const others: Array<{ e: ManagedFieldsEntry; paths: Set<Path> }> = [];
  let mineBefore = new Set<Path>();
  for (const e of previous) {
    const paths = fromFieldsV1(e.fieldsV1);
    if (e.manager === manager && e.operation === 'Apply') {
      mineBefore = paths;
      continue;
    }
    for (const p of paths) {
      if (!appliedFields.has(p) || p.endsWith(`${SEP}.`)) continue;
      if (JSON.stringify(currentFields.get(p)) !== JSON.stringify(appliedFields.get(p))) {
        conflicts.push({ manager: e.manager, apiVersion: e.apiVersion, path: shownPath(p) });
        if (force) paths.delete(p);
      }
    }
    others.push({ e, paths });
  }
  if (conflicts.length > 0 && !force) throw conflictError(conflicts);
  const result = structuredClone(merged);
  const ownedByOthers = (p: Path) =>
    others.some(({ paths }) => [...paths].some((o) => within(o, p)));
  for (const p of mineBefore) {
    if (appliedFields.has(p) || ownedByOthers(p)) continue;
    removePath(result, p);
  }
  const sameObject =
    current &&
    JSON.stringify([...fieldsOf(result)]) === JSON.stringify([...currentFields]) &&
    JSON.stringify([...appliedFields.keys()].sort()) === JSON.stringify([...mineBefore].sort());
  if (sameObject) {
    // An apply that changes nothing leaves managedFields (and so the resourceVersion) alone.
    result.metadata.managedFields = previous;
    return result;
  }
  const entries: ManagedFieldsEntry[] = others
    .filter(({ paths }) => paths.size > 0)
    .map(({ e, paths }) => ({ ...e, fieldsV1: toFieldsV1(paths) }));
  entries.push(entry(manager, 'Apply', merged.apiVersion, appliedFields.keys()));
  result.metadata.managedFields = entries;
  return result;
}

/** `.spec.template.spec.containers[name="x"].env[name="Y"].value`, as conflicts print a path. */
function shownPath(path: Path): string {
  return path
    .split(SEP)
    .map((segment) => {
      if (segment.startsWith('f:')) return `.${segment.slice(2)}`;
      const key = JSON.parse(segment.slice(2)) as Record<string, unknown>;
      return `[${Object.entries(key)
        .map(([k, v]) => `${k}=${JSON.stringify(v)}`)
        .join(',')}]`;
    })
    .join('');
}

/** The 409 structured-merge-diff's Conflicts error gives (merge/conflict.go). */
function conflictError(
  conflicts: Array<{ manager: string; apiVersion: string; path: string }>,
): ApiError {
  const byManager = new Map<string, string[]>();
  for (const c of conflicts) {
    const key = `"${c.manager}" using ${c.apiVersion}`;
    byManager.set(key, [...(byManager.get(key) ?? []), c.path]);
  }
  const n = conflicts.length;
  const parts = [...byManager].map(([who, paths]) =>
    paths.length === 1
      ? `conflict with ${who}: ${paths[0]}`
      : `conflicts with ${who}:\n${paths.map((p) => `- ${p}`).join('\n')}`,
  );
  return new ApiError(
    409,
    'Conflict',
    `Apply failed with ${n} conflict${n === 1 ? '' : 's'}: ${parts.join('\n')}`,
    {
      causes: conflicts.map((c) => ({
        reason: 'FieldManagerConflict',
        message: `conflict with "${c.manager}" using ${c.apiVersion}`,
        field: c.path,
      })),
    },
  );
}
