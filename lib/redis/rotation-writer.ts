// A small writer that runs while redis-shared's password changes: one INCR of one counter key
// after another through the LoadBalancer, on a connection that reconnects for ever and, before
// every reconnect, takes the newest password it can read (from the Secret). It counts writes,
// errors and the longest wait for an answer; at the end it reads the counter back, so a write
// acknowledged and then lost shows as a difference.
import type { Redis } from 'ioredis';
import { maskError, registerSecret } from '../mask.ts';
import type { WriterTally } from '../phases/rotation.ts';

export interface RotationWriterOptions {
  host: string;
  port: number;
  /** the newest password: the Secret's value, read again every `refreshMs` */
  password: () => Promise<string | undefined>;
  /** the counter key; it expires an hour after the writer stops */
  key: string;
  /** pause between two writes */
  intervalMs?: number;
  refreshMs?: number;
  /** a write unanswered this long counts as an error */
  writeTimeoutMs?: number;
}

export interface RotationWriter {
  /** the tally so far */
  tally(): Omit<WriterTally, 'counterAtEnd' | 'stoppedAt'>;
  /** stops writing, reads the counter back with the newest password and disconnects */
  stop(): Promise<WriterTally>;
}

export async function startRotationWriter(options: RotationWriterOptions): Promise<RotationWriter> {
  const { Redis } = await import('ioredis');
  const first = await options.password();
  if (!first) throw new Error('the writer has no password to start with');
  registerSecret(first);
  const client: Redis = new Redis({
    host: options.host,
    port: options.port,
    password: first,
    connectionName: 'runbook-rotation-writer',
    protocol: 2,
    lazyConnect: true,
    // Commands wait in the queue through a restart of the master instead of failing: the
    // writer stands for a client that retries, and counts only what never got an answer.
    maxRetriesPerRequest: null,
    retryStrategy: (times) => Math.min(times * 100, 1000),
  });
  const started = new Date().toISOString();
  let writes = 0;
  let errors = 0;
  let acknowledged = 0;
  let longestWaitMs = 0;
  let firstError: string | undefined;
  let stopping = false;
  client.on('error', () => {
    // Reconnects are the point; errors that reach a write are counted there.
  });
  const refresh = async () => {
    const newest = await options.password().catch(() => undefined);
    if (newest && newest !== client.options.password) {
      registerSecret(newest);
      // ioredis reads options.password again at every (re)connect.
      client.options.password = newest;
    }
  };
  const refresher = setInterval(() => void refresh(), options.refreshMs ?? 500);
  await client.connect();

  const timeoutMs = options.writeTimeoutMs ?? 60_000;
  const writeOnce = async () => {
    writes++;
    const sent = performance.now();
    let timer: NodeJS.Timeout | undefined;
    try {
      const value = await Promise.race([
        client.incr(options.key),
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () => reject(new Error(`no answer within ${timeoutMs} ms`)),
            timeoutMs,
          );
        }),
      ]);
      acknowledged = Math.max(acknowledged, value);
    } catch (err) {
      errors++;
      firstError ??= maskError(err).message;
    } finally {
      clearTimeout(timer);
      longestWaitMs = Math.max(longestWaitMs, performance.now() - sent);
    }
  };
  const loop = (async () => {
    while (!stopping) {
      await writeOnce();
      await new Promise((r) => setTimeout(r, options.intervalMs ?? 50));
    }
  })();

  const tally = () => ({
    writes,
    errors,
    acknowledged,
    longestWaitMs: Math.round(longestWaitMs),
    ...(firstError ? { firstError } : {}),
    startedAt: started,
  });
  return {
    tally,
    async stop() {
      stopping = true;
      await loop;
      clearInterval(refresher);
      await refresh();
      try {
        const counterAtEnd = Number((await client.get(options.key)) ?? 0);
        await client.expire(options.key, 3600);
        return { ...tally(), counterAtEnd, stoppedAt: new Date().toISOString() };
      } finally {
        client.disconnect();
      }
    },
  };
}
