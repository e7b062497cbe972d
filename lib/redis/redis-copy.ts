// Optional data copy for the migration (old beersystem Redis → redis-shared): SCAN the source,
// copy each key with its TTL by DUMP + PTTL → RESTORE, in pipelined batches, then compare key
// counts and a sample of values and TTLs. DUMP/RESTORE goes through this client, so it works
// from wherever the operator can reach both servers; MIGRATE would need the source server itself
// to reach the target. Keys are handled as Buffers so binary key names survive.
import { performance } from 'node:perf_hooks';
import type { Redis } from 'ioredis';
import { maskError, maskSecrets } from '../mask.ts';
import { openRedis, type ProbeOptions, type RedisTarget } from './redis-probe.ts';

export interface CopyProgress {
  scanned: number;
  copied: number;
  /** Keys left alone: gone before they could be read, or already on the target without `replace`. */
  skipped: number;
  failed: number;
}

export interface CopyOptions extends ProbeOptions {
  /** SCAN MATCH pattern. Default `*`. */
  match?: string;
  /** Keys per SCAN COUNT and per pipelined batch. Default 500. */
  batchSize?: number;
  /** RESTORE … REPLACE: overwrite keys that already exist on the target. Default true. */
  replace?: boolean;
  /** Count what would be copied (and what would be overwritten); write nothing. */
  dryRun?: boolean;
  /** How many keys to compare value by value afterwards. Default 100. */
  sampleSize?: number;
  /** Allowed difference between source and target TTLs. Default 5000 ms. */
  ttlToleranceMs?: number;
  onProgress?: (progress: CopyProgress) => void;
}

export interface KeyMismatch {
  key: string;
  reason: string;
}

export interface CopyVerification {
  ok: boolean;
  /** Keys matching the pattern on each side after the copy. */
  sourceKeys: number;
  targetKeys: number;
  sampled: number;
  mismatches: KeyMismatch[];
  evidence: string;
}

export interface CopyResult extends CopyProgress {
  dryRun: boolean;
  /** Dry run only: keys that already exist on the target and would be replaced (or skipped). */
  existingOnTarget: number;
  /** The first errors, masked. */
  errors: string[];
  /** Absent on a dry run. */
  verification?: CopyVerification;
  durationMs: number;
  evidence: string;
}

const MAX_ERRORS_KEPT = 20;

function keyText(key: Buffer): string {
  return key.toString('utf8');
}

async function scanAll(
  client: Redis,
  match: string,
  count: number,
  onBatch: (keys: Buffer[]) => Promise<void>,
): Promise<void> {
  let cursor = '0';
  do {
    const [next, keys] = await client.scanBuffer(cursor, 'MATCH', match, 'COUNT', count);
    cursor = String(next);
    if (keys.length) await onBatch(keys);
  } while (cursor !== '0');
}

async function countMatching(client: Redis, match: string, count: number): Promise<number> {
  if (match === '*') return client.dbsize();
  let n = 0;
  await scanAll(client, match, count, async (keys) => {
    n += keys.length;
  });
  return n;
}

/** Reservoir sample, so the verified keys are spread over the whole keyspace, not its first page. */
class Reservoir {
  readonly items: Buffer[] = [];
  private seen = 0;
  constructor(private readonly size: number) {}
  add(item: Buffer): void {
    this.seen++;
    if (this.items.length < this.size) this.items.push(item);
    else {
      const j = Math.floor(Math.random() * this.seen);
      if (j < this.size) this.items[j] = item;
    }
  }
}

type Results = [Error | null, unknown][];

function pipelineResults(results: Results | null): [Error | null, unknown][] {
  return results ?? [];
}

/** A type-aware, order-insensitive-where-Redis-is view of one key's value. */
async function readValue(client: Redis, key: Buffer): Promise<{ type: string; value: string }> {
  const type = await client.type(key);
  let value: unknown;
  switch (type) {
    case 'string':
      value = (await client.getBuffer(key))?.toString('base64');
      break;
    case 'hash': {
      const h = await client.hgetallBuffer(key);
      value = Object.entries(h)
        .map(([f, v]) => [f, v.toString('base64')])
        .sort(([a], [b]) => String(a).localeCompare(String(b)));
      break;
    }
    case 'list':
      value = (await client.lrangeBuffer(key, 0, -1)).map((v) => v.toString('base64'));
      break;
    case 'set':
      value = (await client.smembersBuffer(key)).map((v) => v.toString('base64')).sort();
      break;
    case 'zset':
      value = ((await client.zrangeBuffer(key, 0, '-1', 'WITHSCORES')) as unknown as Buffer[]).map(
        (v) => v.toString('base64'),
      );
      break;
    case 'none':
      value = null;
      break;
    default:
      // Streams and module types: compare what XRANGE/DUMP can show without knowing the type.
      value =
        type === 'stream'
          ? await client.xrange(key, '-', '+')
          : (await client.dumpBuffer(key))?.toString('base64');
  }
  return { type, value: JSON.stringify(value) };
}

async function compareKey(
  source: Redis,
  target: Redis,
  key: Buffer,
  ttlToleranceMs: number,
): Promise<string | undefined> {
  const [src, dst] = await Promise.all([readValue(source, key), readValue(target, key)]);
  if (src.type === 'none') return undefined; // expired on the source since it was sampled
  if (dst.type === 'none') return 'missing on the target';
  if (src.type !== dst.type) return `type ${src.type} on the source, ${dst.type} on the target`;
  if (src.value !== dst.value) return `${src.type} value differs`;
  const [srcTtl, dstTtl] = await Promise.all([source.pttl(key), target.pttl(key)]);
  if (srcTtl < 0 !== dstTtl < 0) {
    return `TTL ${srcTtl < 0 ? 'none' : `${srcTtl} ms`} on the source, ${dstTtl < 0 ? 'none' : `${dstTtl} ms`} on the target`;
  }
  if (srcTtl >= 0 && Math.abs(srcTtl - dstTtl) > ttlToleranceMs) {
    return `TTL ${srcTtl} ms on the source, ${dstTtl} ms on the target`;
  }
  return undefined;
}

async function verifyWith(
  source: Redis,
  target: Redis,
  sample: Buffer[],
  opts: CopyOptions,
): Promise<CopyVerification> {
  const match = opts.match ?? '*';
  const batch = opts.batchSize ?? 500;
  const tolerance = opts.ttlToleranceMs ?? 5000;
  const [sourceKeys, targetKeys] = await Promise.all([
    countMatching(source, match, batch),
    countMatching(target, match, batch),
  ]);
  const mismatches: KeyMismatch[] = [];
  for (const key of sample) {
    const reason = await compareKey(source, target, key, tolerance);
    if (reason) mismatches.push({ key: maskSecrets(keyText(key)), reason });
  }
  // The target may hold more (other applications' keys); fewer means something was not copied.
  const ok = targetKeys >= sourceKeys && mismatches.length === 0;
  const lines = [
    `keys matching ${match}: source ${sourceKeys}, target ${targetKeys}`,
    `${sample.length} sampled keys compared (value and TTL): ${mismatches.length} mismatch(es)`,
    ...mismatches.slice(0, 10).map((m) => `mismatch ${m.key}: ${m.reason}`),
  ];
  return {
    ok,
    sourceKeys,
    targetKeys,
    sampled: sample.length,
    mismatches,
    evidence: lines.join('\n'),
  };
}

/** Compare source and target after a copy (or at any time): counts and a sample of keys. */
export async function verifyCopy(
  source: RedisTarget,
  target: RedisTarget,
  opts: CopyOptions = {},
): Promise<CopyVerification> {
  const src = await openRedis(source, opts);
  try {
    const dst = await openRedis(target, opts);
    try {
      const reservoir = new Reservoir(opts.sampleSize ?? 100);
      await scanAll(src, opts.match ?? '*', opts.batchSize ?? 500, async (keys) => {
        for (const k of keys) reservoir.add(k);
      });
      return await verifyWith(src, dst, reservoir.items, opts);
    } finally {
      dst.disconnect();
    }
  } finally {
    src.disconnect();
  }
}

/**
 * Copies every key matching `match` from source to target with its TTL. Throws (masked) only when
 * a server cannot be reached or a command fails outright; per-key failures are counted and listed.
 */
export async function copyKeys(
  source: RedisTarget,
  target: RedisTarget,
  opts: CopyOptions = {},
): Promise<CopyResult> {
  const start = performance.now();
  const match = opts.match ?? '*';
  const batch = opts.batchSize ?? 500;
  const replace = opts.replace ?? true;
  const dryRun = opts.dryRun ?? false;
  const progress: CopyProgress = { scanned: 0, copied: 0, skipped: 0, failed: 0 };
  const errors: string[] = [];
  let existingOnTarget = 0;
  const reservoir = new Reservoir(opts.sampleSize ?? 100);

  const src = await openRedis(source, opts);
  let dst: Redis | undefined;
  try {
    dst = await openRedis(target, opts);
    const to = dst;
    const copyBatch = async (keys: Buffer[]): Promise<void> => {
      progress.scanned += keys.length;
      if (dryRun) {
        const exists = await to.pipeline(keys.map((k) => ['exists', k])).exec();
        existingOnTarget += pipelineResults(exists).filter(([, n]) => n === 1).length;
        opts.onProgress?.({ ...progress });
        return;
      }
      const read = src.pipeline();
      for (const key of keys) read.pttl(key).dumpBuffer(key);
      const dumped = pipelineResults(await read.exec());
      const write = to.pipeline();
      const written: Buffer[] = [];
      keys.forEach((key, i) => {
        const [ttlErr, ttl] = dumped[2 * i] ?? [null, -2];
        const [dumpErr, payload] = dumped[2 * i + 1] ?? [null, null];
        const err = ttlErr ?? dumpErr;
        if (err) {
          progress.failed++;
          if (errors.length < MAX_ERRORS_KEPT)
            errors.push(`${keyText(key)}: ${maskSecrets(err.message)}`);
          return;
        }
        // -2 or a null payload: the key expired or was deleted between SCAN and DUMP.
        if (ttl === -2 || payload === null) {
          progress.skipped++;
          return;
        }
        // PTTL -1 (no expiry) becomes RESTORE ttl 0, which means "no expiry".
        const ttlMs = Math.max(0, Number(ttl));
        if (replace) write.restore(key, ttlMs, payload as Buffer, 'REPLACE');
        else write.restore(key, ttlMs, payload as Buffer);
        written.push(key);
      });
      const restored = written.length ? pipelineResults(await write.exec()) : [];
      restored.forEach(([err], i) => {
        const key = written[i]!;
        if (!err) {
          progress.copied++;
          reservoir.add(key);
        } else if (/BUSYKEY/.test(err.message)) {
          progress.skipped++;
        } else {
          progress.failed++;
          if (errors.length < MAX_ERRORS_KEPT)
            errors.push(`${keyText(key)}: ${maskSecrets(err.message)}`);
        }
      });
      opts.onProgress?.({ ...progress });
    };
    await scanAll(src, match, batch, copyBatch);
    const verification = dryRun ? undefined : await verifyWith(src, to, reservoir.items, opts);
    const durationMs = Math.round(performance.now() - start);
    const head = dryRun
      ? `dry run: would copy ${progress.scanned} key(s) matching ${match}; ${existingOnTarget} already exist on the target and would be ${replace ? 'replaced' : 'kept'}`
      : `copied ${progress.copied} of ${progress.scanned} key(s) matching ${match} in ${durationMs} ms; skipped ${progress.skipped}, failed ${progress.failed}`;
    const result: CopyResult = {
      ...progress,
      dryRun,
      existingOnTarget,
      errors,
      durationMs,
      evidence: maskSecrets(
        [head, ...errors.slice(0, 5).map((e) => `error ${e}`), verification?.evidence]
          .filter(Boolean)
          .join('\n'),
      ),
    };
    if (verification) result.verification = verification;
    return result;
  } catch (err) {
    throw maskError(new Error(`data copy failed: ${(err as Error).message}`));
  } finally {
    src.disconnect();
    dst?.disconnect();
  }
}
