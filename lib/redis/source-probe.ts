// SC-004 from the operator's machine: a TCP connection to the LoadBalancer from a chosen local
// source address outside the private network must not reach Redis, while one from this machine's
// own (private) address does. kube-proxy drops the outside one (the client times out); a reset
// or refusal counts as blocked too; only a Redis reply counts as reached.
import { connect } from 'node:net';

export type SourceOutcome = 'reached' | 'refused' | 'reset' | 'timeout' | 'error';

export interface SourceProbeResult {
  outcome: SourceOutcome;
  /** what happened, for the evidence line */
  detail: string;
  durationMs: number;
  /** the local address the connection left from, once connected */
  source?: string;
}

/**
 * Connects from `source` (undefined: the address the system picks, this machine's own) and sends
 * an inline PING; Redis answers even without a password (-NOAUTH).
 */
export function probeFromSource(
  source: string | undefined,
  host: string,
  port: number,
  timeoutMs = 3000,
): Promise<SourceProbeResult> {
  const start = Date.now();
  return new Promise((resolve) => {
    let settled = false;
    let from: string | undefined = source;
    const socket = connect({ host, port, ...(source ? { localAddress: source } : {}) });
    const finish = (outcome: SourceOutcome, detail: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({
        outcome,
        detail,
        durationMs: Date.now() - start,
        ...(from ? { source: from } : {}),
      });
    };
    const timer = setTimeout(
      () => finish('timeout', `no answer within ${timeoutMs} ms`),
      timeoutMs,
    );
    socket.on('connect', () => {
      from = socket.localAddress?.replace(/^::ffff:/, '') ?? from;
      socket.write('PING\r\n');
    });
    socket.on('data', (data) =>
      finish('reached', `Redis answered ${JSON.stringify(data.toString().trim().slice(0, 40))}`),
    );
    socket.on('end', () => finish('reset', 'closed by the server before any reply'));
    socket.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ECONNREFUSED') finish('refused', 'connection refused');
      else if (err.code === 'ECONNRESET' || err.code === 'EPIPE')
        finish('reset', 'connection reset');
      else finish('error', `${err.code ?? ''} ${err.message}`.trim());
    });
  });
}

/** Blocked means no Redis reply came back; an error binding the source is not proof of anything. */
export function isBlocked(result: SourceProbeResult): boolean {
  return result.outcome === 'refused' || result.outcome === 'reset' || result.outcome === 'timeout';
}
