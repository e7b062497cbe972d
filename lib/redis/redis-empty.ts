// Emptying a Redis server through the protocol when FLUSHALL and FLUSHDB are not there: the chart
// renames them away on both roles (terraform/modules/redis-shared, disabled_commands), so every
// database INFO keyspace lists is scanned and its keys unlinked in pipelined batches, pass after
// pass until none is left. UNLINK frees the memory in the background, as FLUSHALL ASYNC would;
// the replica receives the deletions on its replication stream.
import { maskError } from '../mask.ts';
import { openRedis, type RedisTarget } from './redis-probe.ts';

export interface EmptyResult {
  /** keys unlinked, over every database and pass */
  deleted: number;
  /** keys left when it gave up (written faster than they were deleted); 0 when empty */
  left: number;
  passes: number;
}

const BATCH = 500;
const MAX_PASSES = 5;

/** The databases INFO keyspace lists (`db0:keys=…`), by number. */
export function databasesWithKeys(info: string): number[] {
  return [...info.matchAll(/^db(\d+):keys=(\d+)/gm)]
    .filter((m) => Number(m[2]) > 0)
    .map((m) => Number(m[1]));
}

/** Deletes every key of every database; a pass repeats while writes keep adding keys. */
export async function deleteEveryKey(target: RedisTarget): Promise<EmptyResult> {
  const client = await openRedis(target);
  let deleted = 0;
  try {
    for (let pass = 1; pass <= MAX_PASSES; pass++) {
      const databases = databasesWithKeys(await client.info('keyspace'));
      if (databases.length === 0) return { deleted, left: 0, passes: pass - 1 };
      for (const db of databases) {
        await client.select(db);
        let cursor = '0';
        do {
          const [next, keys] = await client.scanBuffer(cursor, 'COUNT', BATCH);
          cursor = String(next);
          if (keys.length) deleted += await client.unlink(...keys);
        } while (cursor !== '0');
      }
      await client.select(0);
    }
    const info = await client.info('keyspace');
    const left = [...info.matchAll(/^db\d+:keys=(\d+)/gm)].reduce((n, m) => n + Number(m[1]), 0);
    return { deleted, left, passes: MAX_PASSES };
  } catch (err) {
    throw maskError(new Error(`emptying the server failed: ${(err as Error).message}`));
  } finally {
    client.disconnect();
  }
}
