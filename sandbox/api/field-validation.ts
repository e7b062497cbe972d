// Unknown fields in built-in objects, as the API server's decoder treats them (server-side field
// validation, GA and always on since Kubernetes 1.27; `fieldValidation` in
// k8s.io/apimachinery/pkg/apis/meta/v1/types.go and the create/update/patch handlers of
// k8s.io/apiserver/pkg/endpoints/handlers):
//   Strict  (kubectl sends it for create, replace, apply and patch) the request is refused with
//           400 BadRequest naming every unknown field: `Job in version "v1" cannot be handled
//           as a Job: strict decoding error: unknown field "spec.foo"`;
//   Warn    (the default, e.g. client libraries) the fields are dropped, never stored, and a
//           `Warning: 299 - "unknown field \"spec.foo\""` header names each one;
//   Ignore  the fields are dropped silently.
// The schemas are @kubernetes/client-node's generated models (the OpenAPI of a newer release
// than K3s 1.32, so a superset: what is refused here is refused by the real server; a field only
// newer releases know is kept). A custom resource is checked against its CRD's structural schema
// (openAPIV3Schema of the version asked for), as apiextensions-apiserver prunes and, under Strict,
// refuses (k8s.io/apiextensions-apiserver/pkg/apiserver/schema/pruning): `properties` name the
// known fields, `additionalProperties` a map's values, `x-kubernetes-preserve-unknown-fields`
// keeps what is not declared; metadata is checked as ObjectMeta.
import type { KubeObject } from '../runtime.ts';
import type { ResourceType } from './resources.ts';
import { badRequest, invalid } from './status.ts';

type AttributeMap = ReadonlyArray<{ baseName: string; type: string }>;
type Models = Record<string, { getAttributeTypeMap?: () => AttributeMap } | undefined>;

let models: Models | undefined;

async function loadModels(): Promise<Models> {
  models ??= (await import('@kubernetes/client-node/dist/gen/models/all.js')) as unknown as Models;
  return models;
}

const LEAVES = new Set(['string', 'number', 'boolean', 'Date', 'any', 'object', 'IntOrString']);

/** The model of apiVersion + kind: `apps/v1` Deployment → V1Deployment. */
function modelName(apiVersion: string, kind: string): string {
  const version = apiVersion.split('/').at(-1) ?? '';
  return `${version.charAt(0).toUpperCase()}${version.slice(1)}${kind}`;
}

function walk(all: Models, type: string, value: unknown, path: string, out: string[]): void {
  if (value === null || value === undefined || LEAVES.has(type)) return;
  const array = /^Array<(.+)>$/.exec(type);
  if (array) {
    if (Array.isArray(value)) {
      for (const [i, item] of value.entries()) {
        walk(all, array[1] as string, item, `${path}[${i}]`, out);
      }
    }
    return;
  }
  const map = /^\{ \[key: string\]: (.+); \}$/.exec(type);
  if (map) {
    if (typeof value === 'object') {
      for (const [key, item] of Object.entries(value as Record<string, unknown>)) {
        walk(all, map[1] as string, item, `${path}.${key}`, out);
      }
    }
    return;
  }
  const attributes = all[type]?.getAttributeTypeMap?.();
  if (!attributes || typeof value !== 'object' || Array.isArray(value)) return;
  const known = new Map(attributes.map((a) => [a.baseName, a.type]));
  for (const [key, item] of Object.entries(value as Record<string, unknown>)) {
    const child = path ? `${path}.${key}` : key;
    const fieldType = known.get(key);
    if (fieldType === undefined) out.push(child);
    else walk(all, fieldType, item, child, out);
  }
}

/** A structural schema, as a CRD's openAPIV3Schema holds it (only what pruning reads). */
export interface StructuralSchema {
  type?: string;
  properties?: Record<string, StructuralSchema>;
  additionalProperties?: StructuralSchema | boolean;
  items?: StructuralSchema;
  'x-kubernetes-preserve-unknown-fields'?: boolean;
  'x-kubernetes-embedded-resource'?: boolean;
}

const ROOT_FIELDS = new Set(['apiVersion', 'kind', 'metadata']);

function walkSchema(
  all: Models,
  schema: StructuralSchema | undefined,
  value: unknown,
  path: string,
  out: string[],
  root = false,
): void {
  if (!schema || value === null || value === undefined || typeof value !== 'object') return;
  if (Array.isArray(value)) {
    for (const [i, item] of value.entries())
      walkSchema(all, schema.items, item, `${path}[${i}]`, out);
    return;
  }
  const preserve = schema['x-kubernetes-preserve-unknown-fields'] === true;
  const embedded = root || schema['x-kubernetes-embedded-resource'] === true;
  for (const [key, item] of Object.entries(value as Record<string, unknown>)) {
    const child = path ? `${path}.${key}` : key;
    if (embedded && ROOT_FIELDS.has(key)) {
      if (key === 'metadata') walk(all, 'V1ObjectMeta', item, child, out);
      continue;
    }
    const known = schema.properties?.[key];
    if (known) walkSchema(all, known, item, child, out);
    else if (typeof schema.additionalProperties === 'object')
      walkSchema(all, schema.additionalProperties, item, child, out);
    else if (!preserve && schema.additionalProperties !== true) out.push(child);
  }
}

/** The openAPIV3Schema a CRD gives the object's version; undefined for built-in kinds. */
function crdSchema(type: ResourceType | undefined, obj: KubeObject): StructuralSchema | undefined {
  const version =
    String(obj.apiVersion ?? '')
      .split('/')
      .at(-1) ?? '';
  return type?.schemas?.[version] as StructuralSchema | undefined;
}

/** Every field of `obj` its kind's schema does not declare; undefined when there is no schema. */
export async function unknownFields(
  obj: KubeObject,
  type?: ResourceType,
): Promise<string[] | undefined> {
  const all = await loadModels();
  const schema = crdSchema(type, obj);
  if (schema) {
    const out: string[] = [];
    walkSchema(all, schema, obj, '', out, true);
    return out;
  }
  if (type?.crd) return undefined;
  const name = modelName(String(obj.apiVersion ?? ''), String(obj.kind ?? ''));
  if (!all[name]?.getAttributeTypeMap) return undefined;
  const out: string[] = [];
  walk(all, name, obj, '', out);
  return out;
}

function dropField(obj: unknown, path: string): void {
  const parts = path.match(/[^.[\]]+|\[\d+\]/g) ?? [];
  let node: unknown = obj;
  for (const part of parts.slice(0, -1)) {
    if (node === null || typeof node !== 'object') return;
    const key = part.startsWith('[') ? Number(part.slice(1, -1)) : part;
    node = (node as Record<string | number, unknown>)[key];
  }
  const last = parts.at(-1);
  if (node && typeof node === 'object' && last !== undefined) {
    delete (node as Record<string, unknown>)[last];
  }
}

export type FieldValidation = 'Strict' | 'Warn' | 'Ignore';

/**
 * The request's directive; an empty one is Warn. Any other value is refused as the options
 * validation does (apimachinery/pkg/apis/meta/v1/validation: ValidateFieldValidation, a
 * NotSupported error on CreateOptions, UpdateOptions or PatchOptions).
 */
export function fieldValidationOf(query: URLSearchParams, options: string): FieldValidation {
  const value = query.get('fieldValidation');
  if (value === null || value === '') return 'Warn';
  if (value === 'Strict' || value === 'Warn' || value === 'Ignore') return value;
  throw invalid(
    options,
    'meta.k8s.io',
    '',
    `fieldValidation: Unsupported value: ${JSON.stringify(value)}: supported values: "", "Ignore", "Strict", "Warn"`,
  );
}

/**
 * Applies the request's field validation to `obj` (changed in place): Strict throws the API's
 * BadRequest, Warn and Ignore drop the fields. Resolves to the warnings to send (Warn only).
 */
export async function checkFields(
  obj: KubeObject,
  mode: FieldValidation,
  how: 'decode' | 'apply',
  type?: ResourceType,
): Promise<string[]> {
  const unknown = await unknownFields(obj, type);
  if (!unknown?.length) return [];
  if (mode === 'Strict') {
    if (how === 'apply') {
      // Server-side apply builds a typed object from the configuration first.
      throw badRequest(
        `failed to create typed patch object (${obj.metadata?.namespace ?? ''}/${obj.metadata?.name ?? ''}; ${obj.apiVersion}, Kind=${obj.kind}): ${unknown.map((f) => `.${f}: field not declared in schema`).join(', ')}`,
      );
    }
    const version = String(obj.apiVersion).split('/').at(-1);
    throw badRequest(
      `${obj.kind} in version "${version}" cannot be handled as a ${obj.kind}: strict decoding error: ${unknown.map((f) => `unknown field "${f}"`).join(', ')}`,
    );
  }
  for (const field of unknown) dropField(obj, field);
  return mode === 'Warn' ? unknown.map((f) => `unknown field "${f}"`) : [];
}
