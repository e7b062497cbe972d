// Real redis-server processes for integration tests: free port, own temp dir, password only in a
// 0600 config file (never argv, so `ps` never shows it), ready when PING answers, and always
// stopped through t.teardown — even when the test fails. A server that died by itself before it
// was stopped is a crash the test must hear of: stop() (and so the teardown) fails with it.
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createConnection, createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort } from '../../lib/free-port.ts';
import type { RedisTarget } from '../../lib/redis/redis-probe.ts';

export { freePort };

export type Persistence = 'aof' | 'rdb' | 'none';

export interface RedisServerOptions {
  password?: string;
  persistence?: Persistence;
  replicaOf?: { host: string; port: number; password?: string };
  /** Extra redis.conf lines, e.g. `maxmemory 10mb`. */
  config?: string[];
}

export interface RedisServer {
  readonly host: string;
  readonly port: number;
  readonly dir: string;
  /** The connection target a probe takes, password included when the server has one. */
  readonly target: RedisTarget;
  /**
   * Graceful SHUTDOWN via SIGTERM: what a pod restart does (AOF/RDB are flushed). Rejects when
   * the server had already exited on its own, with its exit status and output.
   */
  stop(): Promise<void>;
  /** Starts again on the same port and data dir, after stop(). */
  start(): Promise<void>;
  /** Stops and starts again; data survives only as far as persistence allows. */
  restart(): Promise<void>;
  readonly running: boolean;
}

interface Teardown {
  teardown(fn: () => unknown): void;
}

const HOST = '127.0.0.1';
const READY_TIMEOUT_MS = 10_000;

/**
 * A TCP server that accepts connections and never answers (a hung Redis, a black-holing proxy);
 * `reply`, when given, is written back byte by byte for every chunk received instead.
 */
export async function fakeServer(t: Teardown, reply?: string): Promise<number> {
  const sockets = new Set<Socket>();
  const server = createServer((s) => {
    sockets.add(s);
    s.on('error', () => {});
    if (reply === undefined) return;
    s.on('data', async () => {
      for (const byte of Buffer.from(reply)) {
        if (s.destroyed) return;
        s.write(Buffer.from([byte]));
        await new Promise((resolve) => setImmediate(resolve));
      }
    });
  });
  server.listen(0, HOST);
  await once(server, 'listening');
  t.teardown(() => {
    for (const s of sockets) s.destroy();
    server.close();
  });
  return (server.address() as { port: number }).port;
}

function configText(port: number, dir: string, opts: RedisServerOptions): string {
  const persistence = opts.persistence ?? 'none';
  const lines = [
    `port ${port}`,
    `bind ${HOST}`,
    `dir ${dir}`,
    'daemonize no',
    'loglevel warning',
    'logfile ""',
    'protected-mode no',
    // The primary otherwise waits 5 s for more replicas before a full sync.
    'repl-diskless-sync-delay 0',
    `appendonly ${persistence === 'aof' ? 'yes' : 'no'}`,
    persistence === 'rdb' ? 'save 3600 1' : 'save ""',
  ];
  if (opts.password) lines.push(`requirepass "${opts.password}"`);
  if (opts.replicaOf) {
    lines.push(`replicaof ${opts.replicaOf.host} ${opts.replicaOf.port}`);
    if (opts.replicaOf.password) lines.push(`masterauth "${opts.replicaOf.password}"`);
  }
  lines.push(...(opts.config ?? []));
  return `${lines.join('\n')}\n`;
}

/** Resolves once the port answers PING with anything Redis would say (PONG, NOAUTH…). */
async function waitForPing(port: number, child: ChildProcess, output: () => string): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`redis-server exited (${child.exitCode ?? child.signalCode}): ${output()}`);
    }
    const reply = await new Promise<string>((resolve) => {
      const socket = createConnection({ host: HOST, port });
      socket.setTimeout(500);
      let data = '';
      socket.on('connect', () => socket.write('PING\r\n'));
      socket.on('data', (chunk) => {
        data += chunk.toString();
        if (data.includes('\r\n')) socket.destroy();
      });
      socket.on('timeout', () => socket.destroy());
      socket.on('error', () => {});
      socket.on('close', () => resolve(data));
    });
    if (/^(\+PONG|-NOAUTH)/.test(reply)) return;
    // A refused port or -LOADING: still coming up, so poll the condition again.
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error(`redis-server on port ${port} did not answer PING within ${READY_TIMEOUT_MS} ms`);
}

/** redis-cli with the password in REDISCLI_AUTH (never `-a`), for test set-up and assertions. */
export async function redisCli(
  server: Pick<RedisServer, 'port' | 'target'>,
  args: string[],
): Promise<string> {
  const env = { ...process.env };
  if (server.target.password) env.REDISCLI_AUTH = server.target.password;
  const { stdout } = await promisify(execFile)(
    'redis-cli',
    ['-h', HOST, '-p', String(server.port), ...args],
    { env },
  );
  return stdout;
}

/** Waits until a replica reports `master_link_status:up` (the initial sync is done). */
export async function waitForReplicaLink(server: RedisServer, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const info = await redisCli(server, ['INFO', 'replication']).catch(() => '');
    if (/master_link_status:up/.test(info)) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(
    `replica on port ${server.port} did not link to its primary within ${timeoutMs} ms`,
  );
}

export async function startRedisServer(
  t: Teardown,
  opts: RedisServerOptions = {},
): Promise<RedisServer> {
  const dir = await mkdtemp(join(tmpdir(), 'redis-test-'));
  const confPath = join(dir, 'redis.conf');
  let child: ChildProcess | undefined;
  let port = 0;
  let output = '';

  const launch = async (): Promise<boolean> => {
    const proc = spawn('redis-server', [confPath], { stdio: ['ignore', 'pipe', 'pipe'] });
    child = proc;
    output = '';
    proc.stdout?.on('data', (d) => {
      output += d;
    });
    proc.stderr?.on('data', (d) => {
      output += d;
    });
    try {
      await waitForPing(port, proc, () => output);
      return true;
    } catch (err) {
      // It never came up: nothing for stop() to report, the caller hears of it here.
      child = undefined;
      if (/Address already in use/i.test(output)) return false;
      proc.kill('SIGKILL');
      throw err;
    }
  };

  const stop = async (): Promise<void> => {
    const proc = child;
    child = undefined;
    if (!proc) return;
    if (proc.exitCode !== null || proc.signalCode !== null) {
      throw new Error(
        `redis-server on port ${port} exited by itself (${proc.exitCode ?? proc.signalCode}) before the test stopped it; its output: ${output.trim() || '(none)'}`,
      );
    }
    const exited = once(proc, 'exit');
    proc.kill('SIGTERM');
    const timer = setTimeout(() => proc.kill('SIGKILL'), 5_000);
    await exited;
    clearTimeout(timer);
  };

  t.teardown(async () => {
    try {
      await stop();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  // redis-server cannot listen on port 0: take a free port, and pick another on a collision.
  for (let attempt = 0; ; attempt++) {
    port = await freePort();
    await writeFile(confPath, configText(port, dir, opts), { mode: 0o600 });
    await chmod(confPath, 0o600);
    if (await launch()) break;
    if (attempt >= 5) throw new Error('no free port for redis-server after 6 attempts');
  }

  const target: RedisTarget = { host: HOST, port, tls: false };
  if (opts.password) target.password = opts.password;
  const start = async (): Promise<void> => {
    if (child) return;
    if (!(await launch())) throw new Error(`port ${port} was taken while the server was down`);
  };
  return {
    host: HOST,
    port,
    dir,
    target,
    stop,
    start,
    async restart() {
      await stop();
      await start();
    },
    get running() {
      return child !== undefined && child.exitCode === null && child.signalCode === null;
    },
  };
}
