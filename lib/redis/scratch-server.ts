// A throw-away local redis-server that loads one RDB snapshot, to check a backup: its own temp
// directory holding a copy of the file, a free loopback port, no persistence once loaded (it
// never writes the copy back), and always stopped and removed by stop() — also when it failed
// to start. It reads no password: it listens on 127.0.0.1 only and lives for seconds.
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { copyFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { freePort } from '../free-port.ts';
import { openRedis } from './redis-probe.ts';

const HOST = '127.0.0.1';
const SNAPSHOT_NAME = 'snapshot.rdb';

export interface ScratchServer {
  readonly port: number;
  /** a connection to it, open until stop() */
  readonly client: Redis;
  stop(): Promise<void>;
}

export interface ScratchServerOptions {
  /** the redis-server binary (a name on PATH or a path) */
  bin?: string;
  /** how long loading may take before the start counts as failed */
  readyTimeoutMs?: number;
  signal?: AbortSignal;
}

async function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
  try {
    await exited;
  } finally {
    clearTimeout(timer);
  }
}

/** Starts a redis-server on a copy of `snapshot`; resolves when it has loaded it and answers. */
export async function startScratchServer(
  snapshot: string,
  options: ScratchServerOptions = {},
): Promise<ScratchServer> {
  const dir = await mkdtemp(join(tmpdir(), 'redis-shared-verify-'));
  let child: ChildProcess | undefined;
  let client: Redis | undefined;
  const stop = async () => {
    client?.disconnect();
    if (child) await stopProcess(child);
    await rm(dir, { recursive: true, force: true });
  };
  try {
    await copyFile(snapshot, join(dir, SNAPSHOT_NAME));
    const port = await freePort();
    // `save ""` and `appendonly no`: the copy is read at start and never written again.
    child = spawn(
      options.bin ?? 'redis-server',
      [
        '--bind',
        HOST,
        '--port',
        String(port),
        '--dir',
        dir,
        '--dbfilename',
        SNAPSHOT_NAME,
        '--save',
        '',
        '--appendonly',
        'no',
        '--protected-mode',
        'yes',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let output = '';
    child.stdout?.on('data', (d: Buffer) => {
      output = (output + d.toString()).slice(-4000);
    });
    child.stderr?.on('data', (d: Buffer) => {
      output = (output + d.toString()).slice(-4000);
    });
    let spawnFailure: Error | undefined;
    child.once('error', (err) => {
      spawnFailure = new Error(
        `redis-server could not be started (${err.message}): install it (apt-get install redis-server) or put it on PATH`,
      );
    });
    const deadline = Date.now() + (options.readyTimeoutMs ?? 60_000);
    for (;;) {
      if (options.signal?.aborted) throw new Error('interrupted while the snapshot was loading');
      if (spawnFailure) throw spawnFailure;
      if (child.exitCode !== null) {
        throw new Error(
          `the scratch redis-server exited with ${child.exitCode} while loading the snapshot, so the file is not a snapshot it can read:\n${output.trim()}`,
        );
      }
      try {
        // The ready check waits while the server is still loading the file.
        client = await openRedis({ host: HOST, port, name: 'backup-verify' });
        break;
      } catch (err) {
        if (Date.now() > deadline) {
          throw new Error(
            `the scratch redis-server on ${HOST}:${port} did not answer within ${Math.round((options.readyTimeoutMs ?? 60_000) / 1000)} s (${(err as Error).message}):\n${output.trim()}`,
          );
        }
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
    return { port, client, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
