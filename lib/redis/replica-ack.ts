// WAIT on a master: how many replicas acknowledged every write it took so far.
import { openRedis, type RedisTarget } from './redis-probe.ts';

/** The connection waits this much longer than the WAIT itself, so that the server answers first. */
const ANSWER_MARGIN_MS = 5_000;

/**
 * `WAIT 1 <timeoutMs>` on `target`: the number of replicas that acknowledged, 0 when none did in
 * time. The connection's command timeout is the WAIT's plus a margin: with openRedis's default
 * (2 s) a replica slower than that ended the command with "Command timed out" instead of an
 * answer.
 */
export async function replicasAcknowledged(
  target: RedisTarget,
  timeoutMs: number,
): Promise<number> {
  const client = await openRedis(target, { commandTimeoutMs: timeoutMs + ANSWER_MARGIN_MS });
  try {
    return Number(await client.call('WAIT', '1', String(timeoutMs)));
  } finally {
    client.disconnect();
  }
}
