// Every failure leaves the emulator as a metav1.Status: kubectl prints `Error from server
// (<reason>): <message>` from it and prints nonsense from anything else.

export type StatusReason =
  | 'BadRequest'
  | 'NotFound'
  | 'AlreadyExists'
  | 'Conflict'
  | 'Invalid'
  | 'Forbidden'
  | 'MethodNotAllowed'
  | 'Expired'
  | 'Gone'
  | 'InternalError'
  | 'ServiceUnavailable'
  | 'TooManyRequests'
  | 'Unauthorized'
  | 'Timeout'
  | 'UnsupportedMediaType'
  | 'NotAcceptable';

export interface StatusDetails {
  name?: string;
  group?: string;
  kind?: string;
  /** What kubectl prints after `The <kind> "<name>" is invalid:` (field.Error per cause). */
  causes?: Array<{ reason: string; message: string; field: string }>;
  /** with 429 TooManyRequests: when to try again (the Retry-After header says the same) */
  retryAfterSeconds?: number;
}

export interface StatusObject {
  kind: 'Status';
  apiVersion: 'v1';
  metadata: Record<string, never>;
  status: 'Failure' | 'Success';
  message: string;
  reason?: StatusReason;
  details?: StatusDetails;
  code: number;
}

export class ApiError extends Error {
  constructor(
    readonly code: number,
    readonly reason: StatusReason,
    message: string,
    readonly details?: StatusDetails,
  ) {
    super(message);
    this.name = 'ApiError';
  }

  toStatus(): StatusObject {
    return {
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message: this.message,
      reason: this.reason,
      ...(this.details ? { details: this.details } : {}),
      code: this.code,
    };
  }
}

const REASON_BY_CODE: Record<number, StatusReason> = {
  400: 'BadRequest',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'NotFound',
  405: 'MethodNotAllowed',
  406: 'NotAcceptable',
  409: 'Conflict',
  410: 'Gone',
  415: 'UnsupportedMediaType',
  422: 'Invalid',
  429: 'TooManyRequests',
  500: 'InternalError',
  503: 'ServiceUnavailable',
  504: 'Timeout',
};

export function reasonForCode(code: number): StatusReason {
  return REASON_BY_CODE[code] ?? 'InternalError';
}

/** `pods "x"` or `deployments.apps "x"`: the way the API server names a resource in messages. */
export function qualifiedName(plural: string, group: string, name: string): string {
  return `${group ? `${plural}.${group}` : plural} "${name}"`;
}

export const notFound = (plural: string, group: string, name: string) =>
  new ApiError(404, 'NotFound', `${qualifiedName(plural, group, name)} not found`, {
    name,
    group,
    kind: plural,
  });

export const alreadyExists = (plural: string, group: string, name: string) =>
  new ApiError(409, 'AlreadyExists', `${qualifiedName(plural, group, name)} already exists`, {
    name,
    group,
    kind: plural,
  });

export const conflict = (plural: string, group: string, name: string) =>
  new ApiError(
    409,
    'Conflict',
    `Operation cannot be fulfilled on ${qualifiedName(plural, group, name)}: the object has been modified; please apply your changes to the latest version and try again`,
    { name, group, kind: plural },
  );

export const badRequest = (message: string) => new ApiError(400, 'BadRequest', message);

/** A 422 for one field error, `message` being `<field>: <what is wrong>`. */
export const invalid = (kind: string, group: string, name: string, message: string) => {
  const at = message.indexOf(': ');
  const field = at > 0 ? message.slice(0, at) : '';
  const body = at > 0 ? message.slice(at + 2) : message;
  return new ApiError(
    422,
    'Invalid',
    `${kind}${group ? `.${group}` : ''} "${name}" is invalid: ${message}`,
    {
      name,
      group,
      kind,
      causes: [
        {
          reason: body.startsWith('Required value') ? 'FieldValueRequired' : 'FieldValueInvalid',
          message: body,
          field,
        },
      ],
    },
  );
};
