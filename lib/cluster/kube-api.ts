// The connection to the cluster behind lib/cluster/kube.ts (reads) and the run's own bookkeeping in the
// cluster (the Lease lock, the phase records): client-node's kubeconfig handling and transport,
// pinned to KUBE_CONTEXT/KUBECONFIG as kubectl is, imported on the first request only (as one
// bundle: lib/cluster/client-node.ts).
import type { KubeConfig } from '@kubernetes/client-node';
import type { Config } from '../config.ts';
import { maskSecrets } from '../mask.ts';
import { type ClientNode, loadClientNode } from './client-node.ts';

/** An API answer other than success, or a cluster that could not be reached; masked. */
export class KubeError extends Error {
  override readonly name = 'KubeError';
  constructor(
    message: string,
    /** HTTP status; 0 when no answer came */
    readonly status: number,
    readonly reason: string | undefined,
  ) {
    super(maskSecrets(message));
  }
}

export interface Loaded {
  k8s: ClientNode;
  kc: KubeConfig;
  server: string;
}

export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

export interface RequestOptions {
  query?: Record<string, string | undefined>;
  body?: unknown;
  contentType?: string;
}

export interface KubeApi {
  load(): Promise<Loaded>;
  /** any status comes back; only an unreachable cluster throws */
  request(
    method: HttpMethod,
    path: string,
    options?: RequestOptions,
  ): Promise<{ status: number; body: string }>;
  /** the parsed answer; undefined on 404; a KubeError for any other failure */
  json<T>(method: HttpMethod, path: string, options?: RequestOptions): Promise<T | undefined>;
}

export function createKubeApi(cfg: Config, opts: { signal?: AbortSignal } = {}): KubeApi {
  let loading: Promise<Loaded> | undefined;
  const load = () => {
    loading ??= loadClient(cfg);
    return loading;
  };
  const api: KubeApi = {
    load,
    async request(method, path, options = {}) {
      const { k8s, kc, server } = await load();
      const url = new URL(server.replace(/\/$/, '') + path);
      for (const [key, value] of Object.entries(options.query ?? {})) {
        if (value !== undefined) url.searchParams.set(key, value);
      }
      for (let retry = 0; ; retry++) {
        const context = new k8s.RequestContext(url.toString(), method);
        context.setHeaderParam('Accept', 'application/json');
        if (options.body !== undefined) {
          context.setHeaderParam('Content-Type', options.contentType ?? 'application/json');
          context.setBody(JSON.stringify(options.body));
        }
        const signals = [AbortSignal.timeout(cfg.timeouts.commandMs)];
        if (opts.signal) signals.push(opts.signal);
        context.setSignal(AbortSignal.any(signals));
        let answer: { status: number; body: string; retryAfter: number | undefined };
        try {
          await kc.applySecurityAuthentication(context);
          const response = await new k8s.IsomorphicFetchHttpLibrary().send(context).toPromise();
          answer = {
            status: response.httpStatusCode,
            body: await response.body.text(),
            retryAfter: retryAfterSeconds(response.httpStatusCode, response.headers),
          };
        } catch (err) {
          throw new KubeError(
            `${method} ${url.pathname} on ${server} (context ${cfg.kubeContext}) failed: ${causeOf(err)}. Check that the cluster is reachable: kubectl --context ${cfg.kubeContext} get --raw /version`,
            0,
            undefined,
          );
        }
        if (answer.retryAfter === undefined || retry >= MAX_RETRIES || opts.signal?.aborted) {
          return { status: answer.status, body: answer.body };
        }
        await sleep(answer.retryAfter * 1000, opts.signal);
      }
    },
    async json<T>(method: HttpMethod, path: string, options: RequestOptions = {}) {
      const { status, body } = await api.request(method, path, options);
      if (status === 404) return undefined;
      if (status < 200 || status > 299) throw apiError(method, path, status, body);
      return JSON.parse(body) as T;
    },
  };
  return api;
}

async function loadClient(cfg: Config): Promise<Loaded> {
  const k8s = await loadClientNode();
  const kc = new k8s.KubeConfig();
  try {
    if (cfg.kubeconfig) kc.loadFromFile(cfg.kubeconfig);
    else kc.loadFromDefault();
  } catch (err) {
    throw new KubeError(
      `cannot read the kubeconfig ${cfg.kubeconfig ?? '(default: $KUBECONFIG or ~/.kube/config)'}: ${causeOf(err)}. Check KUBECONFIG in .env`,
      0,
      undefined,
    );
  }
  if (!kc.getContextObject(cfg.kubeContext)) {
    const known = kc.getContexts().map((c) => c.name);
    throw new KubeError(
      `the kubeconfig has no context "${cfg.kubeContext}" (it has: ${known.join(', ') || 'none'}); correct KUBE_CONTEXT or KUBECONFIG in .env`,
      0,
      undefined,
    );
  }
  kc.setCurrentContext(cfg.kubeContext);
  const server = kc.getCurrentCluster()?.server;
  if (!server) {
    throw new KubeError(
      `the context "${cfg.kubeContext}" names no cluster with a server address; fix the kubeconfig`,
      0,
      undefined,
    );
  }
  return { k8s, kc, server };
}

/**
 * What client-go's rest client does with an answer that says when to come back: a 429, or any
 * 5xx, with an integer Retry-After is sent again after that many seconds, up to 10 times
 * (k8s.io/client-go/rest/request.go: checkWait, retryAfterSeconds; maxRetries 10). kube-apiserver
 * sends it from its max-in-flight and priority-and-fairness filters.
 */
const MAX_RETRIES = 10;

function retryAfterSeconds(status: number, headers: Record<string, string>): number | undefined {
  if (status !== 429 && status < 500) return undefined;
  const value = headers['retry-after'];
  if (value === undefined || !/^\d+$/.test(value.trim())) return undefined;
  return Number(value.trim());
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener(
      'abort',
      () => {
        clearTimeout(timer);
        resolve();
      },
      { once: true },
    );
  });
}

function causeOf(err: unknown): string {
  const e = err as { message?: string; cause?: { message?: string; code?: string } };
  const cause = e?.cause?.code ?? e?.cause?.message;
  return `${e?.message ?? String(err)}${cause ? ` (${cause})` : ''}`;
}

export function apiError(method: string, path: string, status: number, body: string): KubeError {
  let reason: string | undefined;
  // Masked before it is cut, so a secret straddling the cut cannot leave its tail behind.
  let message = maskSecrets(body.trim()).slice(0, 500);
  try {
    const parsed = JSON.parse(body) as { reason?: string; message?: string };
    reason = parsed.reason;
    message = parsed.message !== undefined ? maskSecrets(parsed.message) : message;
  } catch {
    // not a Status object: keep the text
  }
  return new KubeError(
    `${method} ${path} answered ${status}${reason ? ` ${reason}` : ''}: ${message}`,
    status,
    reason,
  );
}
