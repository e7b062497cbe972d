#!/bin/sh
//bin/true; exec node --import "$(dirname "$(dirname "$(realpath "$0")")")/lib/ts-loader/register.mjs" "$0" "$@"
// Day 2: a backup of redis-shared without exec into the pod. redis-cli takes an RDB snapshot over
// the Redis protocol (SYNC) through the private LoadBalancer address, with the password in
// REDISCLI_AUTH, never in argv; the snapshot is loaded into a throw-away local redis-server and
// compared with the live server; retention keeps the newest BACKUP_KEEP.

import { existsSync } from 'node:fs';
import { chmod, mkdir, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { recordProof } from '../lib/engine/proof.ts';
import { defineRunbook, runMain, type StepContext } from '../lib/engine/runbook.ts';
import { fileSha256 } from '../lib/file-sha256.ts';
import {
  BACKUP_EVIDENCE,
  BACKUP_NOTE,
  type BackupMetadata,
  backupFileName,
  compareSnapshot,
  describeBackup,
  filesOfSnapshots,
  keyspaceKeys,
  keysRemovedByServer,
  metadataFileName,
  type SampledKey,
  snapshotsToRemove,
} from '../lib/phases/backup.ts';
import { sharedRedisTarget, withSharedRedis } from '../lib/phases/beersystem.ts';

const SAMPLE_SIZE = 100;

/** What B01 leaves for B02 (a note, so `--from B02` in another process finds it). */
type TakenSnapshot = Pick<
  BackupMetadata,
  'file' | 'startedAt' | 'finishedAt' | 'durationMs' | 'sizeBytes' | 'sha256' | 'source'
> & {
  liveKeysBefore: number;
  liveRemovedBefore: number;
};

function liveCounts(ctx: StepContext, name: string) {
  return withSharedRedis(ctx, name, async (client) => ({
    keys: keyspaceKeys(await client.info('keyspace')),
    removed: keysRemovedByServer(await client.info('stats')),
  }));
}

async function snapshotNames(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
}

export const runbook = defineRunbook({
  id: 'backup',
  title: 'Back up redis-shared (RDB snapshot through the LoadBalancer, verified)',
  description:
    'Takes an RDB snapshot of redis-shared with redis-cli --rdb (the replication protocol, no exec into the pod) through the private LoadBalancer address, stores it mode 0600 in BACKUP_DIR with its time, size, key count and sha256 in a metadata JSON beside it, loads it into a throw-away local redis-server to compare its key count and a sample of keys with the live server, and keeps the newest BACKUP_KEEP snapshots. The password reaches redis-cli in REDISCLI_AUTH, never on its command line. Needs redis-cli and redis-server on this machine.',
  requires: ['02-deploy'],
  next: (ctx) =>
    `the snapshot and its metadata are in ${ctx.cfg.backupsDir}; take the next one with ${ctx.commandLine({ dryRun: false })} --yes`,
  steps: [
    {
      id: 'P01',
      title: 'Check redis-cli and redis-server here, and redis-shared through the LoadBalancer',
      risk: 'read',
      run: async (ctx) => {
        for (const tool of ['redis-cli', 'redis-server']) {
          try {
            const version = await ctx.run([tool, '--version'], { kind: 'read' });
            ctx.log.info(version.stdout.trim());
          } catch {
            throw new Error(
              `${tool} is not available on this machine: install it (apt-get install redis-tools redis-server), then run ${ctx.commandLine({ from: 'P01' })}`,
            );
          }
        }
        const counts = await liveCounts(ctx, 'runbook-backup');
        ctx.log.info(
          `redis-shared answers at ${ctx.cfg.redis.lbIp}:${ctx.cfg.redis.port} with ${counts.keys} keys`,
        );
      },
    },
    {
      id: 'B01',
      title: 'Take an RDB snapshot with redis-cli --rdb into BACKUP_DIR (mode 0600)',
      risk: 'change',
      run: async (ctx) => {
        const dir = ctx.cfg.backupsDir;
        const { lbIp, port } = ctx.cfg.redis;
        const target = await sharedRedisTarget(ctx, 'runbook-backup');
        const started = new Date();
        const file = join(dir, backupFileName(started));
        const partial = `${file}.partial`;
        if (existsSync(file)) {
          throw new Error(
            `${file} exists already (a snapshot taken this same second): nothing was written; run ${ctx.commandLine({ from: 'B01' })} --yes again`,
          );
        }
        if (ctx.dryRun) {
          ctx.log.info(`would create ${dir} (mode 0700) and write ${file} (mode 0600)`);
        } else {
          await mkdir(dir, { recursive: true, mode: 0o700 });
          await chmod(dir, 0o700);
          // redis-cli creates its file 0644 but keeps the mode of one that exists.
          await writeFile(partial, '', { mode: 0o600, flag: 'wx' });
        }
        const before = ctx.dryRun
          ? { keys: 0, removed: 0 }
          : await liveCounts(ctx, 'runbook-backup');
        try {
          await ctx.run(['redis-cli', '-h', lbIp, '-p', String(port), '--rdb', partial], {
            kind: 'mutation',
            env: { REDISCLI_AUTH: target.password },
          });
          if (ctx.dryRun) return;
          await rename(partial, file);
        } finally {
          if (!ctx.dryRun) await rm(partial, { force: true });
        }
        await chmod(file, 0o600);
        const finished = new Date();
        const taken: TakenSnapshot = {
          file,
          startedAt: started.toISOString(),
          finishedAt: finished.toISOString(),
          durationMs: finished.getTime() - started.getTime(),
          sizeBytes: (await stat(file)).size,
          sha256: await fileSha256(file),
          source: `${lbIp}:${port}`,
          liveKeysBefore: before.keys,
          liveRemovedBefore: before.removed,
        };
        await ctx.note(BACKUP_NOTE, taken);
        ctx.log.info(`written: ${file} (${taken.sizeBytes} bytes, sha256 ${taken.sha256})`);
      },
      // A snapshot that did not complete is removed with its .partial file; a complete one is
      // kept until B03's retention, so there is nothing to undo.
      undo: 'nothing to undo: an unfinished snapshot is removed as it fails',
    },
    {
      id: 'B02',
      title: 'Verify the snapshot in a throw-away local redis-server against the live server',
      risk: 'read',
      run: async (ctx) => {
        if (ctx.dryRun) {
          ctx.log.info(
            `would load the new snapshot into a scratch redis-server on a free loopback port, compare its key count and ${SAMPLE_SIZE} sampled keys with the live server, and write its metadata beside it`,
          );
          return;
        }
        const taken = await ctx.recall<TakenSnapshot>(BACKUP_NOTE);
        if (!taken) {
          throw new Error(
            `no snapshot was taken yet: run ${ctx.commandLine({ from: 'B01' })} --yes`,
          );
        }
        const [{ startScratchServer }, { openRedis }] = await Promise.all([
          import('../lib/redis/scratch-server.ts'),
          import('../lib/redis/redis-probe.ts'),
        ]);
        const scratch = await startScratchServer(taken.file, { signal: ctx.signal });
        const live = await openRedis(await sharedRedisTarget(ctx, 'runbook-backup-verify'));
        let verdict: ReturnType<typeof compareSnapshot>;
        let snapshotKeys: number;
        try {
          snapshotKeys = keyspaceKeys(await scratch.client.info('keyspace'));
          const [, keys] = await scratch.client.scan('0', 'COUNT', String(SAMPLE_SIZE * 2));
          const sample: SampledKey[] = [];
          for (const key of keys.slice(0, SAMPLE_SIZE)) {
            sample.push({
              key,
              snapshotType: await scratch.client.type(key),
              snapshotTtlMs: await scratch.client.pttl(key),
              liveType: await live.type(key),
            });
          }
          const after = {
            keys: keyspaceKeys(await live.info('keyspace')),
            removed: keysRemovedByServer(await live.info('stats')),
          };
          verdict = compareSnapshot({
            liveKeysBefore: taken.liveKeysBefore,
            liveKeysAfter: after.keys,
            liveKeysExpired: Math.max(0, after.removed - taken.liveRemovedBefore),
            snapshotKeys,
            sample,
          });
        } finally {
          live.disconnect();
          await scratch.stop();
        }
        const metadata: BackupMetadata = {
          file: basename(taken.file),
          startedAt: taken.startedAt,
          finishedAt: taken.finishedAt,
          durationMs: taken.durationMs,
          sizeBytes: taken.sizeBytes,
          sha256: taken.sha256,
          keys: snapshotKeys,
          source: taken.source,
          runId: ctx.runId,
          verification: verdict,
        };
        const metadataFile = metadataFileName(taken.file);
        await writeFile(metadataFile, `${JSON.stringify(metadata, null, 2)}\n`, { mode: 0o600 });
        await chmod(metadataFile, 0o600);
        await recordProof(ctx, BACKUP_EVIDENCE, `${describeBackup(metadata)}; ${verdict.line}`, {
          met: verdict.ok,
          file: taken.file,
          finishedAt: taken.finishedAt,
          durationMs: taken.durationMs,
          sizeBytes: taken.sizeBytes,
          keys: snapshotKeys,
          sha256: taken.sha256,
        });
        if (!verdict.ok) {
          throw new Error(
            `${verdict.line}. The snapshot stays in ${ctx.cfg.backupsDir} with verification.ok false in ${basename(metadataFile)}; retention did not run. Take another: ${ctx.commandLine({ from: 'B01' })} --yes`,
          );
        }
      },
    },
    {
      id: 'B03',
      title: 'Keep the newest BACKUP_KEEP snapshots, remove the older ones',
      risk: 'change',
      run: async (ctx) => {
        const dir = ctx.cfg.backupsDir;
        const names = await snapshotNames(dir);
        // A dry run wrote no snapshot: count the one a real run would have added.
        if (ctx.dryRun) names.push(backupFileName(new Date()));
        const old = snapshotsToRemove(names, ctx.cfg.backupKeep);
        if (old.length === 0) {
          ctx.log.info(`nothing to remove: at most ${ctx.cfg.backupKeep} snapshots in ${dir}`);
          return;
        }
        ctx.log.info(`keeping the newest ${ctx.cfg.backupKeep}; removing ${old.join(', ')}`);
        await ctx.run(['rm', '-f', ...filesOfSnapshots(old).map((f) => join(dir, f))], {
          kind: 'mutation',
        });
      },
    },
  ],
});

await runMain(runbook, import.meta.url);
