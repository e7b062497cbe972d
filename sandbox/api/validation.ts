// The API server's validation for the fields the runbooks and modules touch, with its field
// paths, messages and Status (422 Invalid, details.causes), from kubernetes/kubernetes
// pkg/apis/core/validation/validation.go (validateEnvVarValueFrom, validateSecretKeySelector,
// validateServicePort, ValidateNonnegativeField), pkg/apis/apps/validation and
// staging/src/k8s.io/apimachinery/pkg/util/validation/validation.go (IsDNS1123Label/Subdomain,
// IsDNS1035Label, IsValidPortNum). kubectl prints the causes: `The Deployment "x" is invalid:
// spec.template.spec.containers[0].env[2].valueFrom: Invalid value: "": may not be specified
// when `value` is not empty`.
import type { KubeObject } from '../runtime.ts';
import type { ResourceType } from './resources.ts';
import { ApiError } from './status.ts';

export interface FieldError {
  field: string;
  reason: 'FieldValueInvalid' | 'FieldValueRequired' | 'FieldValueForbidden';
  /** What follows `<field>: ` in the message, as field.Error.ErrorBody() prints it. */
  body: string;
}

/** Go's %v of the bad value as field.Invalid prints it: strings quoted, numbers bare. */
function shown(value: unknown): string {
  return typeof value === 'string' ? JSON.stringify(value) : String(value);
}

const invalidField = (field: string, value: unknown, detail: string): FieldError => ({
  field,
  reason: 'FieldValueInvalid',
  body: `Invalid value: ${shown(value)}: ${detail}`,
});

const requiredField = (field: string): FieldError => ({
  field,
  reason: 'FieldValueRequired',
  body: 'Required value',
});

const DNS1123_LABEL = '[a-z0-9]([-a-z0-9]*[a-z0-9])?';
const DNS1123_SUBDOMAIN = `${DNS1123_LABEL}(\\.${DNS1123_LABEL})*`;
const DNS1035_LABEL = '[a-z]([-a-z0-9]*[a-z0-9])?';

/** validation.RegexError, spacing included: "(e.g. 'my-name',  or '123-abc', regex used …)". */
function regexError(message: string, format: string, examples: string[]): string {
  const shownExamples = examples.map((e, i) => `${i > 0 ? ' or ' : ''}'${e}', `).join('');
  return `${message} (e.g. ${shownExamples}regex used for validation is '${format}')`;
}

export function dns1123Subdomain(value: string): string[] {
  const errs: string[] = [];
  if (value.length > 253) errs.push('must be no more than 253 characters');
  if (!new RegExp(`^${DNS1123_SUBDOMAIN}$`).test(value)) {
    errs.push(
      regexError(
        "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character",
        DNS1123_SUBDOMAIN,
        ['example.com'],
      ),
    );
  }
  return errs;
}

export function dns1123Label(value: string): string[] {
  const errs: string[] = [];
  if (value.length > 63) errs.push('must be no more than 63 characters');
  if (!new RegExp(`^${DNS1123_LABEL}$`).test(value)) {
    errs.push(
      new RegExp(`^${DNS1123_SUBDOMAIN}$`).test(value)
        ? 'must not contain dots'
        : regexError(
            "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character",
            DNS1123_LABEL,
            ['my-name', '123-abc'],
          ),
    );
  }
  return errs;
}

export function dns1035Label(value: string): string[] {
  const errs: string[] = [];
  if (value.length > 63) errs.push('must be no more than 63 characters');
  if (!new RegExp(`^${DNS1035_LABEL}$`).test(value)) {
    errs.push(
      regexError(
        "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character",
        DNS1035_LABEL,
        ['my-name', 'abc-123'],
      ),
    );
  }
  return errs;
}

/** How each built-in kind's name is validated (ValidateObjectMeta with the kind's name func). */
const NAME_RULES: Record<string, (name: string) => string[]> = {
  '/Namespace': dns1123Label,
  '/Service': dns1035Label,
  '/Pod': dns1123Subdomain,
  '/Secret': dns1123Subdomain,
  '/ConfigMap': dns1123Subdomain,
  '/PersistentVolumeClaim': dns1123Subdomain,
  '/ServiceAccount': dns1123Subdomain,
  'apps/Deployment': dns1123Subdomain,
  'apps/StatefulSet': dns1123Subdomain,
  'apps/ReplicaSet': dns1123Subdomain,
  'batch/Job': dns1123Subdomain,
  'networking.k8s.io/NetworkPolicy': dns1123Subdomain,
  'policy/PodDisruptionBudget': dns1123Subdomain,
};

function validPort(value: unknown): boolean {
  return typeof value === 'number' && Number.isInteger(value) && value >= 1 && value <= 65535;
}

// biome-ignore lint/suspicious/noExplicitAny: pod specs as the API stores them
function podSpecErrors(spec: any, path: string): FieldError[] {
  const errs: FieldError[] = [];
  for (const list of ['initContainers', 'containers'] as const) {
    (spec?.[list] ?? []).forEach(
      // biome-ignore lint/suspicious/noExplicitAny: containers as the API stores them
      (container: any, i: number) => {
        (container?.env ?? []).forEach(
          // biome-ignore lint/suspicious/noExplicitAny: env entries
          (env: any, j: number) => {
            errs.push(...envErrors(env, `${path}.${list}[${i}].env[${j}]`));
          },
        );
      },
    );
  }
  return errs;
}

// biome-ignore lint/suspicious/noExplicitAny: env entries
function envErrors(env: any, path: string): FieldError[] {
  const errs: FieldError[] = [];
  if (!env?.name) errs.push(requiredField(`${path}.name`));
  const from = env?.valueFrom;
  if (!from) return errs;
  const fromPath = `${path}.valueFrom`;
  const sources = ['fieldRef', 'resourceFieldRef', 'configMapKeyRef', 'secretKeyRef'].filter(
    (k) => from[k] !== undefined && from[k] !== null,
  );
  for (const kind of ['configMapKeyRef', 'secretKeyRef']) {
    const ref = from[kind];
    if (!ref) continue;
    const name = String(ref.name ?? '');
    for (const msg of dns1123Subdomain(name)) {
      errs.push(invalidField(`${fromPath}.${kind}.name`, name, msg));
    }
    if (!ref.key) errs.push(requiredField(`${fromPath}.${kind}.key`));
  }
  if (sources.length === 0) {
    errs.push(
      invalidField(
        fromPath,
        '',
        'must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`',
      ),
    );
  } else if (String(env.value ?? '').length !== 0) {
    errs.push(invalidField(fromPath, '', 'may not be specified when `value` is not empty'));
  } else if (sources.length > 1) {
    errs.push(invalidField(fromPath, '', 'may not have more than one field specified at a time'));
  }
  return errs;
}

function replicasErrors(spec: KubeObject['spec']): FieldError[] {
  const replicas = spec?.replicas;
  if (typeof replicas === 'number' && replicas < 0) {
    return [invalidField('spec.replicas', replicas, 'must be greater than or equal to 0')];
  }
  return [];
}

/** The validation errors of an object about to be stored (after defaulting). */
export function validationErrors(type: ResourceType, obj: KubeObject): FieldError[] {
  const key = `${type.group}/${type.kind}`;
  const errs: FieldError[] = [];
  const nameRule = NAME_RULES[key];
  if (nameRule) {
    for (const msg of nameRule(obj.metadata.name)) {
      errs.push(invalidField('metadata.name', obj.metadata.name, msg));
    }
  }
  const spec = obj.spec;
  switch (key) {
    case '/Pod':
      errs.push(...podSpecErrors(spec, 'spec'));
      break;
    case 'apps/Deployment':
    case 'apps/StatefulSet':
    case 'apps/ReplicaSet':
      errs.push(...replicasErrors(spec));
      errs.push(...podSpecErrors(spec?.template?.spec, 'spec.template.spec'));
      break;
    case 'batch/Job':
      errs.push(...podSpecErrors(spec?.template?.spec, 'spec.template.spec'));
      break;
    case '/Service':
      (spec?.ports ?? []).forEach(
        // biome-ignore lint/suspicious/noExplicitAny: service ports
        (port: any, i: number) => {
          if (!validPort(port?.port)) {
            errs.push(
              invalidField(
                `spec.ports[${i}].port`,
                port?.port ?? 0,
                'must be between 1 and 65535, inclusive',
              ),
            );
          }
          // The API defaults targetPort to port, so a port of 0 is a targetPort of 0 too.
          const target = port?.targetPort ?? port?.port ?? 0;
          if (typeof target === 'number' && !validPort(target)) {
            errs.push(
              invalidField(
                `spec.ports[${i}].targetPort`,
                target,
                'must be between 1 and 65535, inclusive',
              ),
            );
          }
        },
      );
      break;
  }
  return errs;
}

/**
 * What may change in a StatefulSet's spec, from kubernetes v1.32 pkg/apis/apps/validation/
 * validation.go ValidateStatefulSetUpdate: the spec with these fields put back to the old values
 * must be unchanged, else `spec: Forbidden` (so a module's `storage_size` change, which changes
 * volumeClaimTemplates, fails as on the cluster; revisionHistoryLimit became mutable in 1.33).
 */
const STATEFUL_SET_MUTABLE = [
  'replicas',
  'ordinals',
  'template',
  'updateStrategy',
  'persistentVolumeClaimRetentionPolicy',
  'minReadySeconds',
];

/** The errors of an update of `existing` to `obj` (both defaulted). */
export function updateErrors(
  type: ResourceType,
  obj: KubeObject,
  existing: KubeObject,
): FieldError[] {
  if (`${type.group}/${type.kind}` !== 'apps/StatefulSet') return [];
  const fixed = (spec: KubeObject['spec']) => {
    const rest = { ...(spec ?? {}) };
    for (const field of STATEFUL_SET_MUTABLE) delete rest[field];
    return canonical(rest);
  };
  if (fixed(obj.spec) === fixed(existing.spec)) return [];
  return [
    {
      field: 'spec',
      reason: 'FieldValueForbidden',
      body: "Forbidden: updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden",
    },
  ];
}

/** JSON with object keys sorted and undefined members dropped, for a semantic comparison. */
function canonical(value: unknown): string {
  return JSON.stringify(value, (_key, v) =>
    v && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => a.localeCompare(b)))
      : v,
  );
}

/** A 422 Invalid Status as the API server builds it from a field.ErrorList. */
export function invalidObject(type: ResourceType, name: string, errs: FieldError[]): ApiError {
  const lines = errs.map((e) => `${e.field}: ${e.body}`);
  const aggregate = lines.length === 1 ? lines[0] : `[${lines.join(', ')}]`;
  return new ApiError(
    422,
    'Invalid',
    `${type.kind}${type.group ? `.${type.group}` : ''} "${name}" is invalid: ${aggregate}`,
    {
      name,
      group: type.group,
      kind: type.kind,
      causes: errs.map((e) => ({ reason: e.reason, message: e.body, field: e.field })),
    },
  );
}
