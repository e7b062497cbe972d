// kubectl's typed clients (`kubectl create namespace|secret|configmap|serviceaccount`) send
// protobuf bodies, whatever the server prefers. This reads the `k8s\0` envelope and the few
// simple kinds those commands create (and `kubectl auth can-i`'s review, `kubectl drain`'s
// DeleteOptions); anything else is refused with a clear 415.
import type { KubeObject } from '../runtime.ts';
import { ApiError } from './status.ts';

const MAGIC = Buffer.from([0x6b, 0x38, 0x73, 0x00]);

type Field = { no: number; wire: number; value: bigint | Buffer };

function readVarint(buf: Buffer, pos: number): [bigint, number] {
  let result = 0n;
  let shift = 0n;
  for (;;) {
    if (pos >= buf.length) throw new Error('truncated varint');
    const byte = buf[pos++]!;
    result |= BigInt(byte & 0x7f) << shift;
    if ((byte & 0x80) === 0) return [result, pos];
    shift += 7n;
  }
}

function fields(buf: Buffer): Field[] {
  const out: Field[] = [];
  let pos = 0;
  while (pos < buf.length) {
    const [key, next] = readVarint(buf, pos);
    pos = next;
    const no = Number(key >> 3n);
    const wire = Number(key & 7n);
    if (wire === 0) {
      const [value, after] = readVarint(buf, pos);
      out.push({ no, wire, value });
      pos = after;
    } else if (wire === 2) {
      const [len, after] = readVarint(buf, pos);
      const end = after + Number(len);
      out.push({ no, wire, value: buf.subarray(after, end) });
      pos = end;
    } else if (wire === 1) {
      out.push({ no, wire, value: buf.subarray(pos, pos + 8) });
      pos += 8;
    } else if (wire === 5) {
      out.push({ no, wire, value: buf.subarray(pos, pos + 4) });
      pos += 4;
    } else {
      throw new Error(`unsupported wire type ${wire}`);
    }
  }
  return out;
}

const str = (f: Field) => (f.value as Buffer).toString('utf8');
const bytes = (f: Field) => f.value as Buffer;

function map(entries: Field[], asBase64 = false): Record<string, string> | undefined {
  if (entries.length === 0) return undefined;
  const out: Record<string, string> = {};
  for (const entry of entries) {
    const parts = fields(bytes(entry));
    const key = parts.find((p) => p.no === 1);
    const value = parts.find((p) => p.no === 2);
    if (!key) continue;
    out[str(key)] = value ? (asBase64 ? bytes(value).toString('base64') : str(value)) : '';
  }
  return out;
}

function objectMeta(buf: Buffer): KubeObject['metadata'] {
  const f = fields(buf);
  const one = (no: number) => f.find((x) => x.no === no);
  const meta: Record<string, unknown> = {};
  if (one(1)) meta.name = str(one(1)!);
  if (one(2)) meta.generateName = str(one(2)!);
  if (one(3)) meta.namespace = str(one(3)!);
  const labels = map(f.filter((x) => x.no === 11));
  const annotations = map(f.filter((x) => x.no === 12));
  if (labels) meta.labels = labels;
  if (annotations) meta.annotations = annotations;
  const finalizers = f.filter((x) => x.no === 14).map(str);
  if (finalizers.length) meta.finalizers = finalizers;
  return meta as KubeObject['metadata'];
}

/** DeleteOptions: what `kubectl drain` (and other typed deletes) send with a DELETE. */
function deleteOptions(f: Field[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const grace = f.find((x) => x.no === 1 && x.wire === 0);
  const propagation = f.find((x) => x.no === 4);
  const dryRun = f.filter((x) => x.no === 5).map(str);
  if (grace) out.gracePeriodSeconds = Number(grace.value as bigint);
  if (propagation) out.propagationPolicy = str(propagation);
  if (dryRun.length) out.dryRun = dryRun;
  return out;
}

function decodeObject(apiVersion: string, kind: string, raw: Buffer): KubeObject {
  const f = fields(raw);
  if (kind === 'DeleteOptions') {
    return { apiVersion, kind, ...deleteOptions(f) } as unknown as KubeObject;
  }
  const metaField = f.find((x) => x.no === 1);
  const obj: KubeObject = {
    apiVersion,
    kind,
    metadata: metaField ? objectMeta(bytes(metaField)) : ({} as KubeObject['metadata']),
  };
  switch (`${apiVersion}/${kind}`) {
    case 'v1/Namespace':
      return obj;
    case 'v1/ServiceAccount':
      return obj;
    case 'v1/ConfigMap': {
      const data = map(f.filter((x) => x.no === 2));
      const binaryData = map(
        f.filter((x) => x.no === 3),
        true,
      );
      if (data) obj.data = data;
      if (binaryData) obj.binaryData = binaryData;
      return obj;
    }
    case 'v1/Secret': {
      const data = map(
        f.filter((x) => x.no === 2),
        true,
      );
      const type = f.find((x) => x.no === 3);
      const stringData = map(f.filter((x) => x.no === 4));
      if (data) obj.data = data;
      if (type) obj.type = str(type);
      if (stringData) obj.stringData = stringData;
      return obj;
    }
    case 'authorization.k8s.io/v1/SelfSubjectAccessReview': {
      const spec = f.find((x) => x.no === 2);
      const parts = spec ? fields(bytes(spec)) : [];
      const names = ['namespace', 'verb', 'group', 'version', 'resource', 'subresource', 'name'];
      const resource = parts.find((x) => x.no === 1);
      const nonResource = parts.find((x) => x.no === 2);
      const attributes = (field: Field | undefined, keys: string[]) =>
        Object.fromEntries(
          fields(bytes(field!))
            .filter((x) => x.wire === 2 && keys[x.no - 1])
            .map((x) => [keys[x.no - 1]!, str(x)]),
        );
      obj.spec = {
        ...(resource ? { resourceAttributes: attributes(resource, names) } : {}),
        ...(nonResource
          ? { nonResourceAttributes: attributes(nonResource, ['path', 'verb']) }
          : {}),
      };
      return obj;
    }
    default:
      throw new ApiError(
        415,
        'UnsupportedMediaType',
        `the sandbox reads protobuf bodies of Namespaces, ConfigMaps, Secrets and ServiceAccounts only, not ${kind}; send JSON or YAML (e.g. kubectl apply --server-side -f)`,
      );
  }
}

export function decodeProtobuf(body: Buffer): KubeObject {
  if (!body.subarray(0, 4).equals(MAGIC)) {
    throw new ApiError(400, 'BadRequest', 'a protobuf body must start with the k8s envelope');
  }
  try {
    const unknown = fields(body.subarray(4));
    const typeMeta = unknown.find((x) => x.no === 1);
    const raw = unknown.find((x) => x.no === 2);
    const tm = typeMeta ? fields(bytes(typeMeta)) : [];
    const apiVersion = tm.find((x) => x.no === 1);
    const kind = tm.find((x) => x.no === 2);
    if (!apiVersion || !kind || !raw) throw new Error('the envelope has no type or object');
    return decodeObject(str(apiVersion), str(kind), bytes(raw));
  } catch (err) {
    if (err instanceof ApiError) throw err;
    throw new ApiError(
      400,
      'BadRequest',
      `the protobuf body could not be decoded: ${(err as Error).message}`,
    );
  }
}
