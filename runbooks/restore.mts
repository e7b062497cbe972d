#!/bin/sh
//bin/true; exec node --import "$(dirname "$(dirname "$(realpath "$0")")")/lib/ts-loader/register.mjs" "$0" "$@"
// Day 2: restore a verified backup into redis-shared, and the drill that measures RPO and RTO.
// The restore goes through the Redis protocol only: the snapshot is loaded into a throw-away
// local redis-server, every key of redis-shared is deleted through the LoadBalancer (SCAN +
// UNLINK: the chart disables FLUSHALL and FLUSHDB), and every key of the snapshot is copied over
// with its TTL (DUMP + PTTL → RESTORE … REPLACE); the replica follows the master's replication
// stream by itself. Replacing dump.rdb on the master's volume would need exec or the PVC, and
// neither survives a lost volume; this path needs no exec and no PVC, so a master that came
// back empty on a new volume is restored exactly as one that still holds data. The password
// reaches ioredis in memory and redis-cli in REDISCLI_AUTH, never a command line.

import { readdir, readFile } from 'node:fs/promises';
import { basename, isAbsolute, join, resolve } from 'node:path';
import { formatDuration } from '../lib/duration.ts';
import { recordProof } from '../lib/engine/proof.ts';
import { defineRunbook, runMain, type StepContext } from '../lib/engine/runbook.ts';
import type { StepDefinition } from '../lib/engine/runbook-types.ts';
import { fileSha256 } from '../lib/file-sha256.ts';
import {
  BACKUP_NOTE,
  type BackupMetadata,
  keyspaceKeys,
  metadataFileName,
} from '../lib/phases/backup.ts';
import {
  beersystemHealth,
  expectedSharedRedis,
  functionalCheck,
  sharedRedisTarget,
  withSharedRedis,
} from '../lib/phases/beersystem.ts';
import {
  DRILL_MARKERS_NOTE,
  type DrillMarker,
  describeRto,
  EMPTIED_NOTE,
  judgeRpo,
  type MarkerPhase,
  type MarkerReadback,
  markerKey,
  newestVerifiedSnapshot,
  overwriteSentence,
  RESTORE_CHOICE_NOTE,
  RESTORE_DECIDED_NOTE,
  RESTORE_RPO_EVIDENCE,
  RESTORE_RTO_EVIDENCE,
  type RestoreChoice,
  refusalOf,
  rpoWindowMs,
  snapshotsNewestFirst,
} from '../lib/phases/restore.ts';
import { runbook as backupRunbook } from './backup.mts';

const MARKERS_PER_PHASE = 5;
// Long enough to outlive the drill, short enough that its markers leave by themselves.
const MARKER_TTL_MS = 3_600_000;
// The replica acknowledges the restored writes (WAIT) within this, or the step says it lags.
const REPLICA_ACK_TIMEOUT_MS = 10_000;

const redisName = (ctx: StepContext) => `${ctx.cfg.redis.namespace}/${ctx.cfg.redis.release}`;
/** This runbook from `step`, for real, with the answers a run without a terminal needs. */
const resumeLine = (ctx: StepContext, step: string) =>
  `${ctx.commandLine({ from: step, dryRun: false })} --yes --confirm ${redisName(ctx)}`;

/**
 * Deletes every key of redis-shared through the LoadBalancer: the chart disables FLUSHALL and
 * FLUSHDB, so keys are scanned and unlinked. Noted, so the audit log says what was deleted.
 */
async function emptySharedRedis(ctx: StepContext): Promise<void> {
  const { deleteEveryKey } = await import('../lib/redis/redis-empty.ts');
  const emptied = await deleteEveryKey(await sharedRedisTarget(ctx, 'runbook-restore-empty'));
  await ctx.note(EMPTIED_NOTE, emptied);
  if (emptied.left > 0) {
    throw new Error(
      `redis-shared still holds ${emptied.left} key(s) after ${emptied.passes} passes (something keeps writing): find what writes (redis-cli -h ${ctx.cfg.redis.lbIp} CLIENT LIST) and stop it, run ${resumeLine(ctx, ctx.step?.id ?? 'R02')}, then start it again`,
    );
  }
  ctx.log.info(
    `deleted ${emptied.deleted} key(s) of redis-shared through ${ctx.cfg.redis.lbIp}:${ctx.cfg.redis.port} (SCAN + UNLINK): it is empty`,
  );
}

async function readMetadata(file: string): Promise<BackupMetadata | undefined> {
  try {
    return JSON.parse(await readFile(metadataFileName(file), 'utf8')) as BackupMetadata;
  } catch {
    return undefined;
  }
}

async function filesIn(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
}

/** --backup (a path, or a name in BACKUP_DIR); in a drill, its own snapshot; else the newest verified. */
async function snapshotToRestore(ctx: StepContext): Promise<string> {
  const dir = ctx.cfg.backupsDir;
  const flag = ctx.flags.backup;
  if (typeof flag === 'string' && flag) return isAbsolute(flag) ? flag : resolve(dir, flag);
  if (ctx.mode === 'drill') {
    const taken = await ctx.recall<{ file: string }>(BACKUP_NOTE);
    if (!taken) {
      throw new Error(`the drill has taken no snapshot yet: run ${resumeLine(ctx, 'D01')}`);
    }
    return taken.file;
  }
  const names = snapshotsNewestFirst(await filesIn(dir));
  const onDisk = await Promise.all(
    names.map(async (name) => ({ name, metadata: await readMetadata(join(dir, name)) })),
  );
  const newest = newestVerifiedSnapshot(onDisk);
  if (!newest) {
    throw new Error(
      `no verified snapshot in ${dir} (${names.length} snapshot file(s), none with verification.ok): take one with ${ctx.commandLine({ runbook: 'backup', dryRun: false })} --yes, or name one with --backup <file>`,
    );
  }
  return join(dir, newest);
}

async function writeMarkers(ctx: StepContext, phase: MarkerPhase): Promise<void> {
  const keys = Array.from({ length: MARKERS_PER_PHASE }, (_, i) => markerKey(ctx.runId, phase, i));
  if (ctx.dryRun) {
    ctx.log.info(
      `would write ${keys.length} markers ${keys[0]}… with a TTL of ${formatDuration(MARKER_TTL_MS)} through ${ctx.cfg.redis.lbIp}`,
    );
    return;
  }
  const { randomUUID } = await import('node:crypto');
  const written: DrillMarker[] = await withSharedRedis(
    ctx,
    'runbook-restore-drill',
    async (client) => {
      const markers: DrillMarker[] = [];
      for (const key of keys) {
        const value = randomUUID();
        await client.set(key, value, 'PX', MARKER_TTL_MS);
        markers.push({ key, value, phase, writtenAt: new Date().toISOString() });
      }
      return markers;
    },
  );
  const earlier = (await ctx.recall<DrillMarker[]>(DRILL_MARKERS_NOTE)) ?? [];
  await ctx.note(DRILL_MARKERS_NOTE, [...earlier.filter((m) => m.phase !== phase), ...written]);
  ctx.log.info(`wrote ${written.length} markers ${phase} the backup: ${keys[0]}…`);
}

// The same tools and the same Redis as a backup: its preflight, snapshot and verification.
const [preflight, backupStep, verifyStep] = ['P01', 'B01', 'B02'].map((id) => {
  const step = backupRunbook.steps.find((s) => s.id === id);
  if (!step) throw new Error(`runbooks/backup.mts has no step ${id}`);
  return step;
}) as [StepDefinition, StepDefinition, StepDefinition];

const choose: StepDefinition = {
  id: 'R01',
  title: 'Choose the snapshot, check its metadata and sha256, count what it replaces',
  risk: 'read',
  run: async (ctx) => {
    if (ctx.dryRun && ctx.mode === 'drill' && typeof ctx.flags.backup !== 'string') {
      ctx.log.info('would restore the snapshot B01 takes, once B02 has verified it');
      return;
    }
    const file = await snapshotToRestore(ctx);
    const metadata = await readMetadata(file);
    let sha256Now: string;
    try {
      sha256Now = await fileSha256(file);
    } catch (err) {
      throw new Error(
        `cannot read ${file} (${(err as Error).message}): name an existing snapshot with --backup <file>; they are in ${ctx.cfg.backupsDir}`,
      );
    }
    const refusal = refusalOf(file, metadata, sha256Now);
    if (refusal) {
      throw new Error(
        `${refusal}. Name another snapshot of ${ctx.cfg.backupsDir} with --backup, or take a new one with ${ctx.commandLine({ runbook: 'backup', dryRun: false })} --yes`,
      );
    }
    const liveKeys = await withSharedRedis(ctx, 'runbook-restore', async (c) =>
      keyspaceKeys(await c.info('keyspace')),
    );
    const choice: RestoreChoice = { file, metadata: metadata!, liveKeys };
    ctx.state.choice = choice;
    await ctx.note(RESTORE_CHOICE_NOTE, choice);
    ctx.log.info(
      `${overwriteSentence(choice, ctx.cfg.redis.release)} (sha256 ${sha256Now} checked)`,
    );
  },
};

const replace: StepDefinition = {
  id: 'R02',
  title:
    'Replace every key of redis-shared with the snapshot (scratch server, delete every key, copy with TTLs)',
  risk: 'irreversible',
  impact: (ctx) => {
    const choice = ctx.state.choice as RestoreChoice | undefined;
    const what = choice
      ? overwriteSentence(choice, ctx.cfg.redis.release)
      : `every key of ${ctx.cfg.redis.release} is replaced by the keys of the snapshot R01 chose`;
    return `${what}; writes made since the snapshot are lost`;
  },
  confirmName: redisName,
  run: async (ctx) => {
    // The answer to this step's question is the decision to restore: the RTO starts here.
    const decidedAt = new Date().toISOString();
    // A dry run names only what this run chose: an earlier run's choice is not this one's.
    const choice = ctx.dryRun
      ? (ctx.state.choice as RestoreChoice | undefined)
      : await ctx.recall<RestoreChoice>(RESTORE_CHOICE_NOTE);
    const { lbIp, port } = ctx.cfg.redis;
    const target = await sharedRedisTarget(ctx, 'runbook-restore');
    if (ctx.dryRun) {
      ctx.log.info(
        `would load ${choice ? basename(choice.file) : 'the chosen snapshot'} into a scratch redis-server on a free loopback port, delete every key of redis-shared (SCAN + UNLINK through ${lbIp}:${port}), and copy the snapshot's keys with their TTLs`,
      );
      return;
    }
    if (!choice) throw new Error(`no snapshot was chosen yet: run ${resumeLine(ctx, 'R01')}`);
    await ctx.note(RESTORE_DECIDED_NOTE, decidedAt);
    ctx.state.decidedAt = decidedAt;
    const [{ startScratchServer }, { copyKeys }, { replicasAcknowledged }] = await Promise.all([
      import('../lib/redis/scratch-server.ts'),
      import('../lib/redis/redis-copy.ts'),
      import('../lib/redis/replica-ack.ts'),
    ]);
    const scratch = await startScratchServer(choice.file, { signal: ctx.signal });
    try {
      const inSnapshot = keyspaceKeys(await scratch.client.info('keyspace'));
      const inDb0 = await scratch.client.dbsize();
      // The copy reads database 0 only, the one the chart's clients use.
      if (inSnapshot !== inDb0) {
        throw new Error(
          `${basename(choice.file)} holds ${inSnapshot - inDb0} key(s) outside database 0, which this restore does not copy: nothing was changed on redis-shared. Restore it by hand (checklists/restore.md)`,
        );
      }
      await emptySharedRedis(ctx);
      const copy = await copyKeys(
        { host: '127.0.0.1', port: scratch.port, name: 'restore-source' },
        target,
        {
          replace: true,
        },
      );
      ctx.log.info(copy.evidence);
      if (copy.failed > 0 || copy.verification?.ok !== true) {
        throw new Error(
          `the restore is incomplete (${copy.failed} key(s) failed${copy.errors.length ? `: ${copy.errors.slice(0, 3).join('; ')}` : ''}). Run it again — it empties the master and copies every key anew: ${resumeLine(ctx, 'R02')}`,
        );
      }
      const acked = await replicasAcknowledged(target, REPLICA_ACK_TIMEOUT_MS);
      if (acked >= 1) ctx.log.info(`the replica acknowledged the restored data (WAIT: ${acked})`);
      else {
        ctx.log.warn(
          `no replica acknowledged the restored data within ${formatDuration(REPLICA_ACK_TIMEOUT_MS)}: check its resync with ${ctx.kubectlLine(['get', 'pods', '-n', ctx.cfg.redis.namespace])} and redis-cli -h ${lbIp} INFO replication`,
        );
      }
      ctx.state.restored = { keys: copy.copied, durationMs: copy.durationMs };
    } finally {
      await scratch.stop();
    }
  },
  // The keys it replaced are gone by design; what a failure leaves is a master partly restored,
  // and running the step again empties it and copies every key anew.
  undo: (ctx) =>
    `the keys it replaced are not kept (take a backup first if you need them); finish the restore with ${resumeLine(ctx, 'R02')}`,
};

const healthy: StepDefinition = {
  id: 'R03',
  title: 'beersystem answers healthy again; record the RTO',
  risk: 'read',
  run: async (ctx) => {
    if (ctx.dryRun) {
      ctx.log.info(
        'would wait until beersystem answers healthy (and, on redis-shared, logs in, keeps a session and caches), then record the RTO from the decision to restore',
      );
      return;
    }
    const decidedAt = await ctx.recall<string>(RESTORE_DECIDED_NOTE);
    const choice = await ctx.recall<RestoreChoice>(RESTORE_CHOICE_NOTE);
    if (!decidedAt || !choice) {
      throw new Error(`nothing was restored yet: run ${resumeLine(ctx, 'R01')}`);
    }
    const health = await ctx.waitFor(
      'beersystem healthy',
      async () => {
        const h = await beersystemHealth(ctx);
        return h.ok ? h : false;
      },
      { intervalMs: 250 },
    );
    if (!health)
      throw new Error(
        `beersystem did not answer healthy: check ${ctx.kubectlLine(['get', 'pods', '-n', ctx.cfg.beersystem.namespace])}, then ${ctx.commandLine({ from: 'R03' })}`,
      );
    const healthyAt = new Date().toISOString();
    const rtoMs = Date.parse(healthyAt) - Date.parse(decidedAt);
    const onShared = health.redis === expectedSharedRedis(ctx);
    let functional = 'beersystem does not use redis-shared, so only its health was checked';
    if (onShared) {
      const check = await functionalCheck(ctx, expectedSharedRedis(ctx).split(':')[0]!);
      if (!check.ok) {
        throw new Error(
          `beersystem answers but does not work on redis-shared after the restore: ${check.line}. Check its log, then ${ctx.commandLine({ from: 'R03' })}`,
        );
      }
      functional = check.line;
    }
    const restored = ctx.state.restored as { keys: number; durationMs: number } | undefined;
    const line = `${describeRto(rtoMs, decidedAt, healthyAt)} on ${health.redis}; ${basename(choice.file)} (${choice.metadata.keys} keys, taken at ${choice.metadata.finishedAt}) restored${restored ? ` in ${formatDuration(restored.durationMs)}` : ''}; writes after ${choice.metadata.finishedAt} (${formatDuration(rpoWindowMs(choice.metadata.finishedAt, decidedAt))} before the decision) are lost`;
    await recordProof(ctx, RESTORE_RTO_EVIDENCE, line, {
      met: true,
      rtoMs,
      decidedAt,
      healthyAt,
      snapshot: basename(choice.file),
      snapshotKeys: choice.metadata.keys,
      snapshotFinishedAt: choice.metadata.finishedAt,
      keysReplaced: choice.liveKeys,
      keysRestored: restored?.keys ?? null,
      restoreMs: restored?.durationMs ?? null,
      beersystemRedis: health.redis ?? null,
      functional,
    });
  },
};

const drillSteps: StepDefinition[] = [
  preflight,
  {
    id: 'D01',
    title: 'Write marker keys before the backup (they must come back)',
    risk: 'change',
    run: (ctx) => writeMarkers(ctx, 'before'),
    undo: 'nothing to undo: the markers expire by themselves within the hour',
  },
  backupStep,
  verifyStep,
  {
    id: 'D02',
    title: 'Write marker keys after the backup (the writes a restore loses)',
    risk: 'change',
    run: (ctx) => writeMarkers(ctx, 'after'),
    undo: 'nothing to undo: the markers expire by themselves within the hour',
  },
  {
    id: 'D03',
    title: "Lose the master's data: every key deleted through the LoadBalancer",
    risk: 'high',
    impact:
      'every key of redis-shared is deleted, as when the master comes back on a new, empty volume; beersystem loses its sessions and cache until R02 restores them',
    run: async (ctx) => {
      if (ctx.dryRun) {
        ctx.log.info(
          `would delete every key of redis-shared (SCAN + UNLINK through ${ctx.cfg.redis.lbIp}:${ctx.cfg.redis.port})`,
        );
        return;
      }
      await emptySharedRedis(ctx);
    },
    undo: (ctx) => `restore the drill's snapshot: ${resumeLine(ctx, 'R01')}`,
  },
  choose,
  replace,
  healthy,
  {
    id: 'D04',
    title: 'Read the markers back: the measured RPO',
    risk: 'read',
    run: async (ctx) => {
      if (ctx.dryRun) {
        ctx.log.info('would read every marker back and record which came back (RESTORE-RPO)');
        return;
      }
      const markers = (await ctx.recall<DrillMarker[]>(DRILL_MARKERS_NOTE)) ?? [];
      const readbacks: MarkerReadback[] = await withSharedRedis(
        ctx,
        'runbook-restore-drill',
        async (c) => {
          const out: MarkerReadback[] = [];
          for (const marker of markers) {
            const value = (await c.get(marker.key)) ?? undefined;
            out.push({ marker, value, ttlMs: await c.pttl(marker.key) });
          }
          return out;
        },
      );
      const verdict = judgeRpo(readbacks);
      const choice = await ctx.recall<RestoreChoice>(RESTORE_CHOICE_NOTE);
      await recordProof(ctx, RESTORE_RPO_EVIDENCE, verdict.line, {
        met: verdict.ok,
        beforeWritten: verdict.beforeWritten,
        beforeBack: verdict.beforeBack,
        afterWritten: verdict.afterWritten,
        afterBack: verdict.afterBack,
        lost: verdict.lost,
        snapshot: choice ? basename(choice.file) : null,
        snapshotFinishedAt: choice?.metadata.finishedAt ?? null,
        snapshotSizeBytes: choice?.metadata.sizeBytes ?? null,
        snapshotDurationMs: choice?.metadata.durationMs ?? null,
      });
      if (!verdict.ok) {
        throw new Error(
          `the drill's restore did not give back what the backup held: ${verdict.problems.join('; ')}. Run the drill again once the cause is found: ${resumeLine(ctx, 'D01')}`,
        );
      }
    },
  },
];

export const runbook = defineRunbook({
  id: 'restore',
  title: 'Restore a verified backup into redis-shared (protocol only; works on an empty master)',
  description:
    "Chooses a snapshot (--backup <file>, or the newest verified one in BACKUP_DIR), refuses one whose metadata says its verification failed or whose sha256 no longer matches, and after you type redis-shared's name replaces every key of redis-shared with it: the snapshot is loaded into a throw-away local redis-server, every key of redis-shared is deleted through the LoadBalancer (the chart disables FLUSHALL), and each key is copied with its TTL; the replica follows by itself. Then waits for beersystem to answer healthy and records the RTO from your answer. --drill measures the RPO for real: markers before a backup it takes, markers after it, the data lost (every key deleted), the restore, and which markers came back. Needs redis-cli and redis-server on this machine.",
  requires: ['02-deploy'],
  flags: {
    backup: {
      type: 'string',
      description: 'the snapshot to restore: a path, or a file name in BACKUP_DIR',
    },
  },
  modes: {
    drill: {
      title: 'Disaster-recovery drill: markers, backup, data lost, restore, RPO and RTO measured',
      description:
        "Writes marker keys, takes and verifies a backup (backup.mts B01, B02), writes more markers, deletes every key through the LoadBalancer (the master as it comes back on an empty volume), restores the drill's snapshot, waits for beersystem and reports which markers came back.",
      steps: drillSteps,
    },
  },
  standing: async (ctx) => {
    let now: string;
    try {
      const keys = await withSharedRedis(ctx, 'runbook-restore', async (c) =>
        keyspaceKeys(await c.info('keyspace')),
      );
      now = `it holds ${keys} keys`;
    } catch (err) {
      now = `it does not answer through the LoadBalancer (${(err as Error).message})`;
    }
    const decidedAt = ctx.state.decidedAt as string | undefined;
    const choice = ctx.state.choice as RestoreChoice | undefined;
    if (decidedAt && !ctx.state.restored) {
      return `redis-shared is partly restored: R02 began replacing its keys with ${choice ? basename(choice.file) : 'the chosen snapshot'} at ${decidedAt} and did not finish; ${now}. Run R02 again to finish: ${resumeLine(ctx, 'R02')}`;
    }
    return `redis-shared: ${now}${ctx.state.restored ? ', restored from the snapshot' : '; this run replaced none of its keys'}`;
  },
  next: (ctx) =>
    ctx.mode === 'drill'
      ? `the drill's figures are recorded as ${RESTORE_RPO_EVIDENCE} and ${RESTORE_RTO_EVIDENCE}; its snapshot stays in ${ctx.cfg.backupsDir}`
      : `redis-shared holds the snapshot's keys again; take a fresh backup with ${ctx.commandLine({ runbook: 'backup', dryRun: false })} --yes`,
  steps: [preflight, choose, replace, healthy],
});

await runMain(runbook, import.meta.url);
