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

/**
 * True when a replica's link to its master is up, as the chart's replica readiness probe
 * (which also pings the master) would have it.
 */
export async function replicaLinkUp(
  host: string,
  port: number,
  password?: string,
): Promise<boolean> {
  const info = await redisReply(host, port, password, ['INFO', 'replication']);
  return /master_link_status:up/.test(info);
}

/** The reply to one command (after AUTH when a password is set), as raw protocol text. */
function redisReply(
  host: string,
  port: number,
  password: string | undefined,
  words: string[],
): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    let reply = '';
    const done = (text: string) => {
      socket.destroy();
      resolve(text);
    };
    socket.setTimeout(PROBE_TIMEOUT_MS, () => done(''));
    socket.on('error', () => done(''));
    socket.on('connect', () =>
      socket.write(`${password ? resp(['AUTH', password]) : ''}${resp(words)}`),
    );
    socket.on('data', (chunk) => {
      reply += chunk.toString('utf8');
      const body = password ? reply.replace(/^\+OK\r\n/, '') : reply;
      if (body.startsWith('-')) done(body);
      const bulk = /^\$(\d+)\r\n/.exec(body);
      if (bulk && Buffer.byteLength(body) >= bulk[0].length + Number(bulk[1]) + 2) done(body);
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
