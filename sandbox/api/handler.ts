// The HTTP face of the emulator: routes discovery, CRUD, patch, watch and the subresources
// (status, scale, log, service proxy) the way kube-apiserver lays out its URLs.
import { request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import type { KubeObject } from '../runtime.ts';
import * as discovery from './discovery.ts';
import type { ApiFaults } from './faults.ts';
import { checkFields, fieldValidationOf } from './field-validation.ts';
import type { Journal } from './journal.ts';
import { type LogSource, servePodLog } from './logs.ts';
import { recordApply } from './managed-fields.ts';
import { applyPatch, patchTypeOf } from './patch.ts';
import { decodeProtobuf } from './protobuf.ts';
import type { ProxyTargets } from './proxy-targets.ts';
import { apiVersionOf, type ResourceType } from './resources.ts';
import { parseFieldSelector, parseLabelSelector, selectorString } from './selectors.ts';
import { ApiError, badRequest, invalid, notFound } from './status.ts';
import type { DeletePropagation, Store } from './store.ts';
import { type IncludeObject, toTable, wantsTable } from './tables.ts';
import { serveWatch } from './watch.ts';

/** Requests under /sandbox/ (the CLI's admin calls) are answered by the sandbox itself. */
export type AdminHandler = (
  path: string,
  body: unknown,
) => Promise<{ status: number; body: unknown }>;

export interface ApiHandlerOptions {
  store: Store;
  logs: LogSource;
  proxyTargets: ProxyTargets;
  journal: Journal;
  faults: ApiFaults;
  admin: AdminHandler;
}

interface ResourceRequest {
  type: ResourceType;
  version: string;
  namespace: string | undefined;
  name: string | undefined;
  subresource: string | undefined;
  subpath: string;
  query: URLSearchParams;
}

const MUTATING = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/** Warnings for the client (kubectl prints each as `Warning: …`). */
function warn(res: ServerResponse, warnings: readonly string[]): void {
  if (warnings.length > 0)
    res.setHeader(
      'Warning',
      warnings.map((w) => `299 - ${JSON.stringify(w)}`),
    );
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'Content-Type': 'application/json',
    'Content-Length': Buffer.byteLength(text),
  });
  res.end(text);
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

async function parseBody(body: Buffer, contentType: string | undefined): Promise<unknown> {
  if (/protobuf/.test(contentType ?? '')) return body.length ? decodeProtobuf(body) : undefined;
  const text = body.toString('utf8');
  if (!text.trim()) return undefined;
  try {
    // Loaded on first use: only server-side apply sends YAML, and start-up time counts.
    if (/yaml/.test(contentType ?? '')) return (await import('yaml')).parse(text);
    return JSON.parse(text);
  } catch (err) {
    throw badRequest(`the request body could not be decoded: ${(err as Error).message}`);
  }
}

const dryRun = (r: ResourceRequest) => r.query.get('dryRun') === 'All';
/** The API server's field manager: `fieldManager`, else the User-Agent's product name. */
const managerOf = (r: ResourceRequest, req: IncomingMessage) =>
  r.query.get('fieldManager') || (req.headers['user-agent'] ?? '').split('/')[0] || 'unknown';
// SANDBOX_DEBUG=1 prints every request: the quickest way to see what a client asks for.
const debug = process.env.SANDBOX_DEBUG === '1';

export function createApiHandler(opts: ApiHandlerOptions) {
  const { store } = opts;
  const registry = store.registry;

  return async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://sandbox');
    const method = req.method ?? 'GET';
    if (debug)
      console.error(
        `${method} ${req.url} [${req.headers['content-type'] ?? ''}] accept=${req.headers.accept ?? ''}`,
      );
    const isApi = url.pathname.startsWith('/api/') || url.pathname.startsWith('/apis/');
    if (isApi && MUTATING.has(method)) {
      // Recorded when the status line is written, so the entry exists before the client has its answer.
      const writeHead = res.writeHead.bind(res) as (...args: unknown[]) => ServerResponse;
      let journaled = false;
      (res as { writeHead: unknown }).writeHead = (status: number, ...rest: unknown[]) => {
        if (!journaled) {
          journaled = true;
          opts.journal.append({
            time: new Date().toISOString(),
            method,
            path: url.pathname + url.search,
            contentType: String(req.headers['content-type'] ?? ''),
            status,
            dryRun: url.searchParams.get('dryRun') === 'All',
          });
        }
        return writeHead(status, ...rest);
      };
    }
    try {
      if (isApi) {
        const throttled = opts.faults.takeThrottle();
        if (throttled) {
          res.setHeader('Retry-After', String(throttled.retryAfterSeconds));
          throw throttled.error;
        }
      }
      if (isApi && MUTATING.has(method)) {
        const fault = opts.faults.take();
        if (fault) throw fault;
      }
      if (isApi && method === 'GET' && url.searchParams.get('watch') !== 'true') {
        const fault = opts.faults.takeRead();
        if (fault) throw fault;
      }
      await route(req, res, url, method);
    } catch (err) {
      const apiError =
        err instanceof ApiError
          ? err
          : new ApiError(500, 'InternalError', `sandbox: ${(err as Error).message}`);
      if (!(err instanceof ApiError)) console.error((err as Error).stack);
      if (!res.headersSent) sendJson(res, apiError.code, apiError.toStatus());
      else res.end();
    }
  };

  async function route(
    req: IncomingMessage,
    res: ServerResponse,
    url: URL,
    method: string,
  ): Promise<void> {
    const path = url.pathname.replace(/\/+$/, '') || '/';
    if (path === '/version') {
      sendJson(res, 200, discovery.KUBERNETES_VERSION);
      return;
    }
    if (path === '/healthz' || path === '/livez' || path === '/readyz') {
      res.writeHead(200, { 'Content-Type': 'text/plain' });
      res.end('ok');
      return;
    }
    if (path.startsWith('/sandbox/')) {
      const body =
        method === 'GET' ? undefined : await parseBody(await readBody(req), 'application/json');
      const answer = await opts.admin(path, body);
      return sendJson(res, answer.status, answer.body);
    }
    if (path === '/api') {
      sendJson(res, 200, discovery.coreVersions());
      return;
    }
    if (path === '/apis') {
      sendJson(res, 200, discovery.groupList(registry));
      return;
    }
    if (path === '/openapi/v3') {
      sendJson(res, 200, discovery.openApiIndex(registry));
      return;
    }
    if (path.startsWith('/openapi/v3/')) {
      const doc = discovery.openApiDocument(registry, path);
      if (!doc)
        throw new ApiError(404, 'NotFound', 'the server could not find the requested resource');
      return sendJson(res, 200, doc);
    }
    const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
    let group: string;
    let version: string | undefined;
    let rest: string[];
    if (parts[0] === 'api') {
      group = '';
      version = parts[1];
      rest = parts.slice(2);
    } else if (parts[0] === 'apis' && parts[1]) {
      group = parts[1];
      if (parts.length === 2) {
        const doc = discovery.group(registry, group);
        if (!doc)
          throw new ApiError(404, 'NotFound', 'the server could not find the requested resource');
        return sendJson(res, 200, doc);
      }
      version = parts[2];
      rest = parts.slice(3);
    } else {
      throw new ApiError(404, 'NotFound', 'the server could not find the requested resource');
    }
    if (!version)
      throw new ApiError(404, 'NotFound', 'the server could not find the requested resource');
    if (rest.length === 0) {
      const list = discovery.resourceList(registry, group, version);
      if (!list)
        throw new ApiError(404, 'NotFound', 'the server could not find the requested resource');
      return sendJson(res, 200, list);
    }
    let namespace: string | undefined;
    if (
      rest[0] === 'namespaces' &&
      rest.length >= 3 &&
      rest[2] !== 'status' &&
      rest[2] !== 'finalize'
    ) {
      namespace = rest[1];
      rest = rest.slice(2);
    }
    const type = registry.byResource(group, version, rest[0]!);
    if (!type) {
      throw new ApiError(
        404,
        'NotFound',
        `the server could not find the requested resource (${rest[0]})`,
      );
    }
    const r: ResourceRequest = {
      type,
      version,
      namespace: type.namespaced ? namespace : undefined,
      name: rest[1],
      subresource: rest[2],
      subpath: rest.slice(3).join('/'),
      query: url.searchParams,
    };
    if (r.subresource === 'proxy' && type.kind === 'Service') return proxyService(req, res, r, url);
    if (r.subresource && !type.subresources.includes(r.subresource)) {
      throw new ApiError(
        404,
        'NotFound',
        `the server could not find the requested resource (${type.plural}/${r.subresource})`,
      );
    }
    if (r.subresource === 'exec' || r.subresource === 'attach' || r.subresource === 'portforward') {
      throw badRequest(`${r.subresource} is not supported by the sandbox (see sandbox/README.md)`);
    }
    switch (method) {
      case 'GET':
        return r.name ? getOne(req, res, r) : list(req, res, r);
      case 'POST':
        return create(req, res, r);
      case 'PUT':
        return replace(req, res, r);
      case 'PATCH':
        return patch(req, res, r);
      case 'DELETE':
        return r.name ? remove(req, res, r) : removeCollection(req, res, r);
      default:
        throw new ApiError(405, 'MethodNotAllowed', `method ${method} is not allowed`);
    }
  }

  /** An object as the client asked for it: in the requested version of its group. */
  // A copy: watch events share their object with the store's history.
  function render(r: ResourceRequest, obj: KubeObject): KubeObject {
    return { ...obj, apiVersion: apiVersionOf(r.type.group, r.version) };
  }

  function listMeta(extra: Record<string, unknown> = {}) {
    return { resourceVersion: String(store.resourceVersion), ...extra };
  }

  function getOne(req: IncomingMessage, res: ServerResponse, r: ResourceRequest): void {
    const obj = store.mustGet(r.type, r.namespace, r.name!);
    if (r.subresource === 'log') {
      servePodLog(store, opts.logs, obj, r.query, res);
      return;
    }
    if (r.subresource === 'scale') {
      sendJson(res, 200, scaleOf(r.type, obj));
      return;
    }
    const body = wantsTable(req.headers.accept)
      ? toTable(r.type, [render(r, obj)], listMeta(), includeObject(r))
      : render(r, obj);
    sendJson(res, 200, body);
  }

  function includeObject(r: ResourceRequest): IncludeObject {
    return (r.query.get('includeObject') as IncludeObject | null) ?? 'Metadata';
  }

  function list(req: IncomingMessage, res: ServerResponse, r: ResourceRequest): void {
    const labels = parseLabelSelector(r.query.get('labelSelector'));
    const fields = parseFieldSelector(r.query.get('fieldSelector'));
    const matcher = (o: KubeObject) => labels(o) && fields(o);
    const table = wantsTable(req.headers.accept);
    if (r.query.get('watch') === 'true' || r.query.get('watch') === '1') {
      const timeout = r.query.get('timeoutSeconds');
      serveWatch(store, req, res, {
        type: r.type,
        namespace: r.namespace,
        matcher,
        resourceVersion: r.query.get('resourceVersion'),
        timeoutSeconds: timeout ? Number(timeout) : undefined,
        sendInitialEvents: r.query.get('sendInitialEvents') === 'true',
        render: (obj) =>
          table ? toTable(r.type, [render(r, obj)], listMeta(), includeObject(r)) : render(r, obj),
      });
      return;
    }
    let items = store.list(r.type, r.namespace, matcher).map((o) => render(r, o));
    const extra: Record<string, unknown> = {};
    const limit = Number(r.query.get('limit') ?? 0);
    const token = r.query.get('continue');
    let offset = 0;
    if (token) {
      try {
        offset = JSON.parse(Buffer.from(token, 'base64').toString('utf8')).offset;
      } catch {
        throw badRequest('continue key is not valid');
      }
    }
    if (offset || limit > 0) {
      const end = limit > 0 ? offset + limit : items.length;
      if (end < items.length) {
        extra.continue = Buffer.from(JSON.stringify({ offset: end })).toString('base64');
        extra.remainingItemCount = items.length - end;
      }
      items = items.slice(offset, end);
    }
    if (table) {
      sendJson(res, 200, toTable(r.type, items, listMeta(extra), includeObject(r)));
      return;
    }
    sendJson(res, 200, {
      kind: r.type.listKind,
      apiVersion: apiVersionOf(r.type.group, r.version),
      metadata: listMeta(extra),
      items,
    });
  }

  async function bodyOf(req: IncomingMessage): Promise<unknown> {
    return parseBody(await readBody(req), req.headers['content-type']);
  }

  function checkTarget(r: ResourceRequest, obj: KubeObject): void {
    if (!obj || typeof obj !== 'object' || !obj.metadata)
      throw badRequest('the object has no metadata');
    if (r.type.namespaced) {
      if (obj.metadata.namespace && r.namespace && obj.metadata.namespace !== r.namespace) {
        throw badRequest(
          'the namespace of the provided object does not match the namespace sent on the request',
        );
      }
      obj.metadata.namespace = r.namespace ?? obj.metadata.namespace;
    }
  }

  async function create(
    req: IncomingMessage,
    res: ServerResponse,
    r: ResourceRequest,
  ): Promise<void> {
    const body = (await bodyOf(req)) as KubeObject;
    if (r.name && r.subresource === 'eviction') {
      store.delete(r.type, r.namespace, r.name, { dryRun: dryRun(r) });
      return sendJson(res, 201, {
        kind: 'Status',
        apiVersion: 'v1',
        metadata: {},
        status: 'Success',
        code: 201,
      });
    }
    if (r.name)
      throw new ApiError(405, 'MethodNotAllowed', 'POST is not allowed on a named object');
    if (r.type.kind === 'SelfSubjectAccessReview') {
      sendJson(res, 201, { ...body, status: { allowed: true, reason: 'the sandbox has no RBAC' } });
      return;
    }
    checkTarget(r, body);
    warn(
      res,
      await checkFields(body, fieldValidationOf(r.query, 'CreateOptions'), 'decode', r.type),
    );
    const created = store.create(r.type, body, { dryRun: dryRun(r), manager: managerOf(r, req) });
    sendJson(res, 201, render(r, created));
  }

  async function replace(
    req: IncomingMessage,
    res: ServerResponse,
    r: ResourceRequest,
  ): Promise<void> {
    const body = (await bodyOf(req)) as KubeObject;
    if (!r.name) throw new ApiError(405, 'MethodNotAllowed', 'PUT needs an object name');
    if (r.subresource === 'scale') {
      const current = store.mustGet(r.type, r.namespace, r.name);
      return sendJson(
        res,
        200,
        setReplicas(r, current, (body as { spec?: { replicas?: number } }).spec?.replicas),
      );
    }
    checkTarget(r, body);
    if (r.subresource !== 'status') {
      warn(
        res,
        await checkFields(body, fieldValidationOf(r.query, 'UpdateOptions'), 'decode', r.type),
      );
    }
    if (body.metadata.name !== r.name) {
      throw badRequest(
        `the name of the object (${body.metadata.name}) does not match the name on the URL (${r.name})`,
      );
    }
    const updated = store.update(r.type, body, {
      dryRun: dryRun(r),
      ...(r.subresource === 'status'
        ? { subresource: 'status' as const }
        : { manager: managerOf(r, req) }),
    });
    sendJson(res, 200, render(r, updated));
  }

  async function patch(
    req: IncomingMessage,
    res: ServerResponse,
    r: ResourceRequest,
  ): Promise<void> {
    if (!r.name) throw new ApiError(405, 'MethodNotAllowed', 'PATCH needs an object name');
    const kind = patchTypeOf(req.headers['content-type']);
    if (!kind) {
      throw new ApiError(
        415,
        'UnsupportedMediaType',
        `the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml`,
      );
    }
    const body = await bodyOf(req);
    const current = store.get(r.type, r.namespace, r.name);
    if (!current) {
      if (kind !== 'apply') throw notFound(r.type.plural, r.type.group, r.name);
      const obj = body as KubeObject;
      checkTarget(r, obj);
      obj.metadata.name ??= r.name;
      warn(
        res,
        await checkFields(obj, fieldValidationOf(r.query, 'PatchOptions'), 'apply', r.type),
      );
      const owned = recordApply(undefined, obj, structuredClone(obj), managerOf(r, req), true);
      const created = store.create(r.type, owned, { dryRun: dryRun(r), managedFields: 'as-given' });
      return sendJson(res, 201, render(r, created));
    }
    if (r.subresource === 'scale') {
      const patched = applyPatch(kind, scaleOf(r.type, current), body) as {
        spec?: { replicas?: number };
      };
      return sendJson(res, 200, setReplicas(r, current, patched.spec?.replicas));
    }
    if (r.subresource !== 'status') {
      const mode = fieldValidationOf(r.query, 'PatchOptions');
      if (kind === 'apply') warn(res, await checkFields(body as KubeObject, mode, 'apply', r.type));
    }
    let patched = applyPatch(kind, current, body) as KubeObject;
    if (kind !== 'apply' && r.subresource !== 'status') {
      warn(
        res,
        await checkFields(patched, fieldValidationOf(r.query, 'PatchOptions'), 'decode', r.type),
      );
    }
    if (kind === 'apply' && r.subresource !== 'status') {
      patched = recordApply(
        current,
        patched,
        body as KubeObject,
        managerOf(r, req),
        r.query.get('force') === 'true',
      );
    }
    if (kind === 'apply' || kind === 'strategic' || kind === 'merge') {
      // A patch never carries the resourceVersion it was made from unless it means to.
      const wanted = (body as KubeObject)?.metadata?.resourceVersion;
      patched.metadata = {
        ...patched.metadata,
        resourceVersion: wanted ?? current.metadata.resourceVersion,
      };
    }
    patched.metadata.name = current.metadata.name;
    if (current.metadata.namespace) patched.metadata.namespace = current.metadata.namespace;
    const updated = store.update(r.type, patched, {
      dryRun: dryRun(r),
      ...(r.subresource === 'status'
        ? { subresource: 'status' as const }
        : kind === 'apply'
          ? { managedFields: 'as-given' as const }
          : { manager: managerOf(r, req) }),
    });
    sendJson(res, 200, render(r, updated));
  }

  function scaleOf(type: ResourceType, obj: KubeObject): object {
    if (!type.subresources.includes('scale'))
      throw notFound(type.plural, type.group, obj.metadata.name);
    return {
      kind: 'Scale',
      apiVersion: 'autoscaling/v1',
      metadata: {
        name: obj.metadata.name,
        namespace: obj.metadata.namespace,
        uid: obj.metadata.uid,
        resourceVersion: obj.metadata.resourceVersion,
        creationTimestamp: obj.metadata.creationTimestamp,
      },
      spec: { replicas: obj.spec?.replicas ?? 0 },
      status: {
        replicas: obj.status?.replicas ?? 0,
        selector: selectorString(obj.spec?.selector ?? {}),
      },
    };
  }

  function setReplicas(
    r: ResourceRequest,
    current: KubeObject,
    replicas: number | undefined,
  ): object {
    if (typeof replicas !== 'number' || replicas < 0 || !Number.isInteger(replicas)) {
      throw invalid(
        'Scale',
        'autoscaling',
        current.metadata.name,
        `spec.replicas: Invalid value: ${replicas}: must be greater than or equal to 0`,
      );
    }
    current.spec = { ...current.spec, replicas };
    const updated = store.update(r.type, current, { dryRun: dryRun(r) });
    return scaleOf(r.type, updated);
  }

  async function deleteOptions(req: IncomingMessage, r: ResourceRequest) {
    const body = ((await bodyOf(req)) ?? {}) as {
      propagationPolicy?: DeletePropagation;
      gracePeriodSeconds?: number;
      dryRun?: string[];
    };
    const grace = r.query.get('gracePeriodSeconds') ?? body.gracePeriodSeconds;
    return {
      propagationPolicy:
        (r.query.get('propagationPolicy') as DeletePropagation | null) ??
        body.propagationPolicy ??
        'Background',
      ...(grace !== undefined && grace !== null ? { gracePeriodSeconds: Number(grace) } : {}),
      dryRun: dryRun(r) || (body.dryRun ?? []).includes('All'),
    };
  }

  async function remove(
    req: IncomingMessage,
    res: ServerResponse,
    r: ResourceRequest,
  ): Promise<void> {
    const options = await deleteOptions(req, r);
    const result = store.delete(r.type, r.namespace, r.name!, options);
    // A terminating object is returned as it is; one already gone as a Success status, as the
    // API server does for kinds without graceful deletion.
    if (result.metadata.deletionTimestamp && store.get(r.type, r.namespace, r.name!)) {
      return sendJson(res, 200, render(r, result));
    }
    sendJson(res, 200, {
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Success',
      details: { name: r.name, group: r.type.group, kind: r.type.plural, uid: result.metadata.uid },
    });
  }

  async function removeCollection(
    req: IncomingMessage,
    res: ServerResponse,
    r: ResourceRequest,
  ): Promise<void> {
    const options = await deleteOptions(req, r);
    const labels = parseLabelSelector(r.query.get('labelSelector'));
    const fields = parseFieldSelector(r.query.get('fieldSelector'));
    const victims = store.list(r.type, r.namespace, (o) => labels(o) && fields(o));
    for (const obj of victims) {
      if (store.get(r.type, obj.metadata.namespace, obj.metadata.name)) {
        store.delete(r.type, obj.metadata.namespace, obj.metadata.name, options);
      }
    }
    sendJson(res, 200, {
      kind: r.type.listKind,
      apiVersion: apiVersionOf(r.type.group, r.version),
      metadata: listMeta(),
      items: victims,
    });
  }

  function proxyService(
    req: IncomingMessage,
    res: ServerResponse,
    r: ResourceRequest,
    url: URL,
  ): void {
    const spec = r.name ?? '';
    const pieces = spec.split(':');
    // `<name>`, `<name>:<port>` or `<scheme>:<name>:<port>`.
    const [svcName, portSpec] =
      pieces.length === 3 ? [pieces[1]!, pieces[2]] : [pieces[0]!, pieces[1]];
    const svc = store.mustGet(r.type, r.namespace, svcName);
    const ports: Array<{ name?: string; port: number }> = svc.spec?.ports ?? [];
    const port = portSpec
      ? ports.find((p) => p.name === portSpec || String(p.port) === portSpec)
      : ports[0];
    if (!port)
      throw new ApiError(503, 'ServiceUnavailable', `no endpoints available for service "${spec}"`);
    const target = opts.proxyTargets.get(r.namespace!, svcName, port.port);
    if (!target)
      throw new ApiError(503, 'ServiceUnavailable', `no endpoints available for service "${spec}"`);
    const headers = { ...req.headers };
    delete headers.host;
    delete headers.authorization;
    const upstream = httpRequest(
      `${target}/${r.subpath}${url.search}`,
      { method: req.method, headers },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    upstream.on('error', (err) => {
      if (!res.headersSent) {
        sendJson(
          res,
          503,
          new ApiError(
            503,
            'ServiceUnavailable',
            `error trying to reach service: ${err.message}`,
          ).toStatus(),
        );
      } else res.end();
    });
    req.pipe(upstream);
  }
}
