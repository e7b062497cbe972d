// Watches: chunked JSON lines `{"type":…,"object":…}`, resumed from a list's resourceVersion out
// of the store's history, or answered with a 410 Expired ERROR event when that history is gone.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { KubeObject } from '../runtime.ts';
import type { ResourceType } from './resources.ts';
import type { Matcher } from './selectors.ts';
import { ApiError } from './status.ts';
import type { Store, StoreChange } from './store.ts';

export interface WatchRequest {
  type: ResourceType;
  namespace: string | undefined;
  matcher: Matcher;
  resourceVersion: string | null;
  timeoutSeconds: number | undefined;
  sendInitialEvents: boolean;
  render: (obj: KubeObject) => unknown;
}

const MAX_WATCH_SECONDS = 1800;

export function serveWatch(
  store: Store,
  req: IncomingMessage,
  res: ServerResponse,
  w: WatchRequest,
): void {
  res.writeHead(200, { 'Content-Type': 'application/json', 'Cache-Control': 'no-cache, private' });
  res.flushHeaders();
  const inScope = (obj: KubeObject) =>
    !w.type.namespaced || !w.namespace || obj.metadata.namespace === w.namespace;
  // Objects this watch has reported as matching, so one that stops matching is reported DELETED.
  const matching = new Set<string>();
  let closed = false;

  const send = (type: string, object: unknown) => {
    if (!closed) res.write(`${JSON.stringify({ type, object })}\n`);
  };
  const deliver = (change: StoreChange) => {
    if (change.resource !== w.type || !inScope(change.object)) return;
    const uid = change.object.metadata.uid!;
    const matches = w.matcher(change.object);
    if (change.type === 'DELETED') {
      if (matches || matching.has(uid)) send('DELETED', w.render(change.object));
      matching.delete(uid);
    } else if (matches) {
      matching.add(uid);
      send(change.type, w.render(change.object));
    } else if (matching.delete(uid)) {
      send('DELETED', w.render(change.object));
    }
  };

  const rv = w.resourceVersion;
  if (!rv || rv === '0' || w.sendInitialEvents) {
    for (const obj of store.list(w.type, w.namespace, w.matcher)) {
      matching.add(obj.metadata.uid!);
      send('ADDED', w.render(obj));
    }
    if (w.sendInitialEvents) {
      send('BOOKMARK', {
        kind: w.type.kind,
        apiVersion: w.type.group ? `${w.type.group}/${w.type.versions[0]}` : 'v1',
        metadata: {
          resourceVersion: String(store.resourceVersion),
          annotations: { 'k8s.io/initial-events-end': 'true' },
        },
      });
    }
  } else {
    const from = Number(rv);
    if (!Number.isFinite(from) || from < store.oldestResumable) {
      send(
        'ERROR',
        new ApiError(
          410,
          'Expired',
          `too old resource version: ${rv} (${store.oldestResumable + 1})`,
        ).toStatus(),
      );
      res.end();
      return;
    }
    for (const obj of store.list(w.type, w.namespace, w.matcher)) matching.add(obj.metadata.uid!);
    for (const change of store.changesSince(from)) deliver(change);
  }

  const unsubscribe = store.subscribe(deliver);
  const seconds = Math.min(w.timeoutSeconds ?? MAX_WATCH_SECONDS, MAX_WATCH_SECONDS);
  const timer = setTimeout(() => finish(), seconds * 1000);
  const finish = () => {
    if (closed) return;
    closed = true;
    clearTimeout(timer);
    unsubscribe();
    res.end();
  };
  res.on('close', finish);
  req.on('close', () => {
    if (!res.writableEnded && req.destroyed) finish();
  });
  watches.add(finish);
  res.on('close', () => watches.delete(finish));
}

// Open watches, so a stopping sandbox can end them instead of waiting for their timeouts.
const watches = new Set<() => void>();

/** Ends every open watch; how many there were. */
export function endAllWatches(): number {
  const open = [...watches];
  for (const finish of open) finish();
  return open.length;
}
