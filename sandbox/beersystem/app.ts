// The beersystem stand-in: what the sandbox runs for a beersystem pod. Like the real app it keeps
// sessions and a cache in the Redis its environment names (REDIS_HOST, REDIS_PORT,
// REDIS_PASSWORD), so a migration rehearsal can check login, session persistence and cache
// (T041) and see its connection in CLIENT LIST as `beersystem`.
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { Redis } from 'ioredis';

const SESSION_TTL_SECONDS = 3600;
const CACHE_TTL_SECONDS = 300;
const HEARTBEAT_MS = 1000;
const PING_TIMEOUT_MS = 500;

const redisHost = process.env.REDIS_HOST ?? 'localhost';
const redisPort = Number(process.env.REDIS_PORT ?? 6379);
const listenHost = process.env.LISTEN_HOST ?? '0.0.0.0';
const listenPort = Number(process.env.LISTEN_PORT ?? 8080);

let lastError = '';
const redis = new Redis({
  host: redisHost,
  port: redisPort,
  password: process.env.REDIS_PASSWORD || undefined,
  connectionName: 'beersystem',
  maxRetriesPerRequest: 1,
  retryStrategy: (times) => Math.min(times * 100, 1000),
});
redis.on('ready', () => {
  lastError = '';
  log(`connected to ${redisHost}:${redisPort}`);
});
redis.on('error', (err: Error) => {
  // One line per distinct error, not one per retry.
  if (err.message === lastError) return;
  lastError = err.message;
  log(`redis error (${redisHost}:${redisPort}): ${err.message}`);
});

const heartbeat = setInterval(() => {
  if (redis.status !== 'ready') return;
  const now = new Date().toISOString();
  redis
    .multi()
    .set('beersystem:cache:heartbeat', now, 'EX', CACHE_TTL_SECONDS)
    .set(
      'beersystem:session:app',
      JSON.stringify({ user: 'beersystem', at: now }),
      'EX',
      SESSION_TTL_SECONDS,
    )
    .exec()
    .catch(() => undefined);
}, HEARTBEAT_MS);

const server = createServer((req, res) => {
  handle(req, res).catch((err: Error) => send(res, 503, { error: err.message }));
});
server.listen(listenPort, listenHost, () => log(`listening on ${listenHost}:${listenPort}`));

async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://beersystem');
  const params = { ...Object.fromEntries(url.searchParams), ...(await jsonBody(req)) };
  // Reached directly or through the API's service proxy, whose path ends with the app's path.
  const route = url.pathname.split('/').filter(Boolean).pop() ?? '';
  switch (route) {
    case 'healthz': {
      const pong = await Promise.race([
        redis.ping().catch(() => ''),
        new Promise<string>((r) => setTimeout(() => r(''), PING_TIMEOUT_MS)),
      ]);
      if (pong === 'PONG') send(res, 200, { status: 'ok', redis: `${redisHost}:${redisPort}` });
      else
        send(res, 503, {
          status: 'redis unavailable',
          redis: `${redisHost}:${redisPort}`,
          error: lastError,
        });
      return;
    }
    case 'login': {
      const user = String(params.user ?? 'guest');
      const session = randomUUID();
      await redis.set(
        `beersystem:session:${session}`,
        JSON.stringify({ user, at: Date.now() }),
        'EX',
        SESSION_TTL_SECONDS,
      );
      send(res, 200, { session, user, ttl: SESSION_TTL_SECONDS });
      return;
    }
    case 'session': {
      const id = String(params.id ?? params.session ?? '');
      const data = id ? await redis.get(`beersystem:session:${id}`) : null;
      if (!data) send(res, 404, { error: 'no such session', session: id });
      else
        send(res, 200, {
          session: id,
          ...JSON.parse(data),
          ttl: await redis.ttl(`beersystem:session:${id}`),
        });
      return;
    }
    case 'cache': {
      const key = String(params.key ?? 'demo');
      if (params.value !== undefined) {
        await redis.set(`beersystem:cache:${key}`, String(params.value), 'EX', CACHE_TTL_SECONDS);
        send(res, 200, { key, stored: true, ttl: CACHE_TTL_SECONDS });
      } else {
        const value = await redis.get(`beersystem:cache:${key}`);
        send(res, 200, { key, hit: value !== null, value });
      }
      return;
    }
    default:
      send(res, 404, { error: 'not found', routes: ['/healthz', '/login', '/session', '/cache'] });
  }
}

async function jsonBody(req: IncomingMessage): Promise<Record<string, unknown>> {
  if (req.method !== 'POST' && req.method !== 'PUT') return {};
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  const text = Buffer.concat(chunks).toString('utf8').trim();
  if (!text) return {};
  try {
    const parsed = JSON.parse(text);
    return parsed && typeof parsed === 'object' ? parsed : {};
  } catch {
    return Object.fromEntries(new URLSearchParams(text));
  }
}

function send(res: ServerResponse, status: number, body: object): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

function log(line: string): void {
  process.stdout.write(`${new Date().toISOString()} ${line}\n`);
}

process.on('SIGTERM', () => {
  clearInterval(heartbeat);
  server.close();
  redis.disconnect();
  process.exit(0);
});
