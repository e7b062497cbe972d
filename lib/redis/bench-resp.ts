// The benchmark's hot path: a minimal RESP2 client over net.Socket. It writes pre-encoded command
// bytes and only finds reply boundaries (counting error replies), so per operation it costs a
// few byte comparisons instead of a command object, a promise and a reply transform as in a full
// client. docs/benchmark.md has the measurements behind this choice. Everything that is not the
// hot loop (probes, cleanup) uses ioredis.
import { once } from 'node:events';
import { createConnection, type Socket } from 'node:net';
import { maskSecrets, registerSecret } from '../mask.ts';

export interface RespTarget {
  host: string;
  port: number;
  password?: string;
  name?: string;
}

/** Called from the socket's data handler with the replies completed by one chunk. */
export type RepliesHandler = (replies: number, errors: number, firstError?: string) => void;

const CR = 13;
const READ_BUFFER_BYTES = 64 * 1024;
const LF = 10;

/** Index just past the CRLF that ends the line starting at `from`, or -1 if it is not complete. */
function lineEnd(buf: Buffer, from: number, len: number): number {
  const cr = buf.indexOf(CR, from);
  if (cr === -1 || cr + 1 >= len) return -1;
  return buf[cr + 1] === LF ? cr + 2 : -1;
}

function readInt(buf: Buffer, from: number, to: number): number {
  let n = 0;
  let sign = 1;
  let i = from;
  if (buf[i] === 45) {
    sign = -1;
    i++;
  }
  for (; i < to; i++) n = n * 10 + (buf[i]! - 48);
  return sign * n;
}

/** Index just past one complete reply starting at `from`, or -1 if more bytes are needed. */
export function replyEnd(buf: Buffer, from: number, len = buf.length): number {
  if (from >= len) return -1;
  const type = buf[from];
  const end = lineEnd(buf, from + 1, len);
  if (end === -1) return -1;
  switch (type) {
    case 43: // + simple string
    case 45: // - error
    case 58: // : integer
      return end;
    case 36: {
      // $ bulk string
      const size = readInt(buf, from + 1, end - 2);
      if (size < 0) return end;
      const stop = end + size + 2;
      return stop <= len ? stop : -1;
    }
    case 42: {
      // * array
      const count = readInt(buf, from + 1, end - 2);
      let at = end;
      for (let i = 0; i < count; i++) {
        at = replyEnd(buf, at, len);
        if (at === -1) return -1;
      }
      return at;
    }
    default:
      throw new Error(`unexpected RESP type byte ${type} from the server`);
  }
}

/** `*N\r\n$len\r\narg…` for one command. */
export function encodeCommand(args: readonly (string | Buffer)[]): Buffer {
  const parts: Buffer[] = [Buffer.from(`*${args.length}\r\n`)];
  for (const arg of args) {
    const b = typeof arg === 'string' ? Buffer.from(arg) : arg;
    parts.push(Buffer.from(`$${b.length}\r\n`), b, Buffer.from('\r\n'));
  }
  return Buffer.concat(parts);
}

export class RespConnection {
  private pending: Buffer | undefined;
  private handler: RepliesHandler = () => {};
  private closedError: Error | undefined;

  private constructor(private readonly socket: Socket) {
    socket.on('error', (err) => {
      this.closedError ??= err;
    });
  }

  /** Connects, authenticates and names the connection; rejects with a masked error. */
  static async open(target: RespTarget, timeoutMs = 2000): Promise<RespConnection> {
    registerSecret(target.password);
    let conn: RespConnection | undefined;
    // `onread` hands each read to us in one reused buffer, skipping the stream machinery
    // ('data' events, a new Buffer per read): the largest single cost per reply at -P 1.
    const socket = createConnection({
      host: target.host,
      port: target.port,
      onread: {
        buffer: Buffer.allocUnsafe(READ_BUFFER_BYTES),
        callback: (nread: number, buf: Uint8Array) => {
          conn?.onData(buf as Buffer, nread);
          return true;
        },
      },
    });
    socket.setNoDelay(true);
    socket.setTimeout(timeoutMs);
    const timedOut = once(socket, 'timeout').then(() => {
      throw new Error(`${target.host}:${target.port} did not answer within ${timeoutMs} ms`);
    });
    try {
      await Promise.race([once(socket, 'connect'), timedOut]);
      conn = new RespConnection(socket);
      const connection = conn;
      const setup: Buffer[] = [];
      if (target.password) setup.push(encodeCommand(['AUTH', target.password]));
      if (target.name) setup.push(encodeCommand(['CLIENT', 'SETNAME', target.name]));
      if (setup.length) {
        const answered = new Promise<string | undefined>((resolve, reject) => {
          let left = setup.length;
          let error: string | undefined;
          connection.handler = (n, _e, first) => {
            error ??= first;
            left -= n;
            if (left <= 0) resolve(error);
          };
          // A server that refuses a client (maxclients) sends its reason, then closes.
          socket.once('close', () =>
            error !== undefined
              ? resolve(error)
              : reject(connection.closedError ?? new Error('connection closed')),
          );
        });
        socket.write(Buffer.concat(setup));
        const error = await Promise.race([answered, timedOut]);
        if (error)
          throw new Error(
            `${target.host}:${target.port} refused the benchmark connection: ${error}`,
          );
      }
      socket.setTimeout(0);
      timedOut.catch(() => {});
      return connection;
    } catch (err) {
      timedOut.catch(() => {});
      socket.destroy();
      throw new Error(maskSecrets((err as Error).message));
    }
  }

  onReplies(handler: RepliesHandler): void {
    this.handler = handler;
  }

  onClose(fn: (err: Error | undefined) => void): void {
    this.socket.once('close', () => fn(this.closedError));
  }

  write(bytes: Buffer): void {
    this.socket.write(bytes);
  }

  close(): void {
    this.socket.destroy();
  }

  private onData(readBuffer: Buffer, nread: number): void {
    let buf = readBuffer;
    let len = nread;
    if (this.pending) {
      buf = Buffer.concat([this.pending, readBuffer.subarray(0, nread)]);
      len = buf.length;
      this.pending = undefined;
    }
    let at = 0;
    let replies = 0;
    let errors = 0;
    let firstError: string | undefined;
    while (at < len) {
      // The two replies a SET/GET benchmark sees most, checked before the general parser.
      if (
        buf[at] === 43 &&
        at + 4 < len &&
        buf[at + 1] === 79 &&
        buf[at + 2] === 75 &&
        buf[at + 3] === CR
      ) {
        at += 5; // +OK\r\n
        replies++;
        continue;
      }
      const end = replyEnd(buf, at, len);
      if (end === -1) break;
      if (buf[at] === 45) {
        errors++;
        firstError ??= buf.toString('utf8', at + 1, end - 2);
      }
      at = end;
      replies++;
    }
    // The read buffer is reused by the next read: keep a copy of an incomplete reply.
    if (at < len) this.pending = Buffer.from(buf.subarray(at, len));
    if (replies) this.handler(replies, errors, firstError);
  }
}
