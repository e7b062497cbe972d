// Readiness probes as the chart and the apps define them: Redis answers PING (after AUTH), an
// HTTP endpoint answers 200.
import { connect } from 'node:net';

const PROBE_TIMEOUT_MS = 1000;

/** True when the Redis at host:port answers PONG, authenticating first when a password is set. */
export function redisPing(host: string, port: number, password?: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    let reply = '';
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(PROBE_TIMEOUT_MS, () => done(false));
    socket.on('error', () => done(false));
    socket.on('connect', () => {
      const commands = password ? [resp(['AUTH', password]), resp(['PING'])] : [resp(['PING'])];
      socket.write(commands.join(''));
    });
    socket.on('data', (chunk) => {
      reply += chunk.toString('utf8');
      if (reply.includes('+PONG')) done(true);
      else if (reply.includes('-')) done(false);
    });
  });
}

export async function httpOk(url: string): Promise<boolean> {
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(PROBE_TIMEOUT_MS) });
    await response.arrayBuffer();
    return response.status === 200;
  } catch {
    return false;
  }
}

/** One command in the Redis protocol. */
export function resp(words: string[]): string {
  return `*${words.length}\r\n${words.map((w) => `$${Buffer.byteLength(w)}\r\n${w}\r\n`).join('')}`;
}
