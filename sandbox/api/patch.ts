// The patch flavours kubectl and client-node send. Strategic merge and server-side apply are
// approximated the same way: maps merge recursively, lists of named items merge by name
// (containers, env, ports, volumes), other lists are replaced, null removes a field.
import { badRequest, invalid } from './status.ts';

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

const isObject = (v: unknown): v is JsonObject =>
  v !== null && typeof v === 'object' && !Array.isArray(v);

export function mergePatch(target: unknown, patch: unknown): Json {
  if (!isObject(patch)) return patch as Json;
  const out: JsonObject = isObject(target) ? { ...target } : {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete out[key];
    else out[key] = mergePatch(out[key], value);
  }
  return out;
}

const MERGE_KEYS = ['name', 'containerPort', 'port', 'mountPath', 'ip', 'type'];

function mergeKeyOf(items: Json[]): string | undefined {
  if (items.length === 0 || !items.every(isObject)) return undefined;
  return MERGE_KEYS.find((k) => items.every((i) => (i as JsonObject)[k] !== undefined));
}

export function mergeByKey(target: unknown, patch: unknown): Json {
  if (Array.isArray(patch)) {
    // An empty list merges nothing into a keyed list (server-side apply then removes what its
    // manager no longer owns: managed-fields.ts).
    if (patch.length === 0 && Array.isArray(target) && mergeKeyOf(target)) return target as Json;
    const key = mergeKeyOf(patch);
    if (!key || !Array.isArray(target) || !target.every(isObject)) {
      return patch.filter((p) => !(isObject(p) && p.$patch === 'delete'));
    }
    const out = [...target] as JsonObject[];
    for (const item of patch as JsonObject[]) {
      const at = out.findIndex((t) => t[key] === item[key]);
      if (item.$patch === 'delete') {
        if (at >= 0) out.splice(at, 1);
      } else if (at >= 0) out[at] = mergeByKey(out[at], item) as JsonObject;
      else out.push(item);
    }
    return out;
  }
  if (!isObject(patch)) return patch as Json;
  if (patch.$patch === 'replace') {
    const { $patch: _ignored, ...rest } = patch;
    return rest;
  }
  const out: JsonObject = isObject(target) ? { ...target } : {};
  for (const [key, value] of Object.entries(patch)) {
    if (key.startsWith('$')) continue;
    if (value === null) delete out[key];
    else out[key] = mergeByKey(out[key], value);
  }
  return out;
}

interface JsonPatchOp {
  op: 'add' | 'remove' | 'replace' | 'move' | 'copy' | 'test';
  path: string;
  value?: Json;
  from?: string;
}

function pointer(path: string): string[] {
  if (path === '') return [];
  if (!path.startsWith('/')) throw badRequest(`invalid JSON pointer "${path}"`);
  return path
    .slice(1)
    .split('/')
    .map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
}

function parentOf(doc: Json, parts: string[], path: string): Json {
  let cur: Json = doc;
  for (const part of parts.slice(0, -1)) {
    if (Array.isArray(cur)) cur = cur[Number(part)] as Json;
    else if (isObject(cur)) cur = cur[part] as Json;
    else cur = undefined as unknown as Json;
    if (cur === undefined) {
      throw invalid('', '', '', `jsonpatch: path "${path}" does not exist`);
    }
  }
  return cur;
}

function getAt(doc: Json, path: string): Json {
  const parts = pointer(path);
  if (parts.length === 0) return doc;
  const parent = parentOf(doc, parts, path);
  const last = parts[parts.length - 1]!;
  const value = Array.isArray(parent)
    ? parent[Number(last)]
    : isObject(parent)
      ? parent[last]
      : undefined;
  if (value === undefined) throw invalid('', '', '', `jsonpatch: path "${path}" does not exist`);
  return value;
}

function setAt(doc: Json, path: string, value: Json, mode: 'add' | 'replace' | 'remove'): Json {
  const parts = pointer(path);
  if (parts.length === 0) return mode === 'remove' ? null : value;
  const parent = parentOf(doc, parts, path);
  const last = parts[parts.length - 1]!;
  if (Array.isArray(parent)) {
    const index = last === '-' ? parent.length : Number(last);
    if (mode === 'add') parent.splice(index, 0, value);
    else if (mode === 'replace') parent[index] = value;
    else parent.splice(index, 1);
  } else if (isObject(parent)) {
    if (mode !== 'add' && !(last in parent)) {
      throw invalid(
        '',
        '',
        '',
        `jsonpatch ${mode} operation does not apply: doc is missing path: "${path}"`,
      );
    }
    if (mode === 'remove') delete parent[last];
    else parent[last] = value;
  } else {
    throw invalid('', '', '', `jsonpatch: path "${path}" does not exist`);
  }
  return doc;
}

export function jsonPatch(target: unknown, ops: unknown): Json {
  if (!Array.isArray(ops)) throw badRequest('a JSON patch must be a list of operations');
  let doc = structuredClone(target) as Json;
  for (const op of ops as JsonPatchOp[]) {
    switch (op.op) {
      case 'add':
      case 'replace':
        doc = setAt(doc, op.path, structuredClone(op.value ?? null), op.op);
        break;
      case 'remove':
        doc = setAt(doc, op.path, null, 'remove');
        break;
      case 'copy':
        doc = setAt(doc, op.path, structuredClone(getAt(doc, op.from ?? '')), 'add');
        break;
      case 'move': {
        const value = getAt(doc, op.from ?? '');
        doc = setAt(doc, op.from ?? '', null, 'remove');
        doc = setAt(doc, op.path, value, 'add');
        break;
      }
      case 'test':
        if (JSON.stringify(getAt(doc, op.path)) !== JSON.stringify(op.value)) {
          throw invalid('', '', '', `jsonpatch test operation does not apply: ${op.path}`);
        }
        break;
      default:
        throw badRequest(`unknown JSON patch operation "${(op as { op: string }).op}"`);
    }
  }
  return doc;
}

export type PatchType = 'merge' | 'strategic' | 'json' | 'apply';

export function patchTypeOf(contentType: string | undefined): PatchType | undefined {
  const ct = (contentType ?? '').split(';')[0]!.trim();
  return (
    {
      'application/merge-patch+json': 'merge',
      'application/strategic-merge-patch+json': 'strategic',
      'application/json-patch+json': 'json',
      'application/apply-patch+yaml': 'apply',
      'application/apply-patch+json': 'apply',
    } as const
  )[ct];
}

export function applyPatch(type: PatchType, target: unknown, patch: unknown): Json {
  switch (type) {
    case 'merge':
      return mergePatch(target, patch);
    case 'json':
      return jsonPatch(target, patch);
    case 'strategic':
    case 'apply':
      return mergeByKey(target, patch);
  }
}
