// pods/<name>/log: the pod's log file as the runtime writes it, with tailLines, limitBytes and
// follow (new lines stream until the pod stops running or the client goes away).
import { createReadStream, existsSync, readFileSync, statSync, watch } from 'node:fs';
import type { ServerResponse } from 'node:http';
import type { KubeObject } from '../runtime.ts';
import { badRequest } from './status.ts';
import type { Store } from './store.ts';

export interface LogSource {
  logFileOf(uid: string, container: string): string | undefined;
  isRunning(uid: string): boolean;
}

export function servePodLog(
  store: Store,
  source: LogSource,
  pod: KubeObject,
  query: URLSearchParams,
  res: ServerResponse,
): void {
  const container = query.get('container') ?? pod.spec?.containers?.[0]?.name ?? '';
  const names: string[] = (pod.spec?.containers ?? []).map((c: { name: string }) => c.name);
  if (!names.includes(container)) {
    throw badRequest(
      `container ${container} is not valid for pod ${pod.metadata.name}; its containers: ${names.join(', ')}`,
    );
  }
  const file = source.logFileOf(pod.metadata.uid!, container);
  if (!file || !existsSync(file)) {
    throw badRequest(
      `container "${container}" in pod "${pod.metadata.name}" is waiting to start: ContainerCreating`,
    );
  }
  let text = readFileSync(file, 'utf8');
  const tail = query.get('tailLines');
  if (tail !== null) {
    const lines = text.split('\n');
    const hasTrailingNewline = lines[lines.length - 1] === '';
    if (hasTrailingNewline) lines.pop();
    text =
      lines.slice(Math.max(0, lines.length - Number(tail))).join('\n') +
      (hasTrailingNewline ? '\n' : '');
  }
  const limit = query.get('limitBytes');
  if (limit !== null) text = text.slice(0, Number(limit));
  res.writeHead(200, { 'Content-Type': 'text/plain' });
  const follow = query.get('follow') === 'true' || query.get('follow') === '1';
  if (!follow || !source.isRunning(pod.metadata.uid!)) {
    res.end(text);
    return;
  }
  res.write(text);
  let offset = statSync(file).size;
  let reading = false;
  let done = false;
  const readMore = () => {
    if (reading || done) return;
    const size = statSync(file).size;
    if (size <= offset) return;
    reading = true;
    const stream = createReadStream(file, { start: offset, end: size - 1 });
    offset = size;
    stream.on('data', (chunk) => res.write(chunk));
    stream.on('end', () => {
      reading = false;
      readMore();
    });
  };
  const watcher = watch(file, () => readMore());
  const podType = store.registry.byKind({ group: '', kind: 'Pod' })!;
  const unsubscribe = store.subscribe((change) => {
    if (change.resource !== podType || change.object.metadata.uid !== pod.metadata.uid) return;
    if (!source.isRunning(pod.metadata.uid!)) setImmediate(stop);
  });
  const stop = () => {
    if (done) return;
    readMore();
    done = true;
    watcher.close();
    unsubscribe();
    res.end();
  };
  res.on('close', stop);
}
