// What runbooks/backup.mts decides about a redis-shared snapshot, as pure functions: the names
// of its files, the metadata kept beside it, which older snapshots retention removes, and whether
// the snapshot loaded into a scratch server agrees with the live server.
import { basename } from 'node:path';

export const BACKUP_PREFIX = 'redis-shared-';
export const BACKUP_NOTE = 'backup.file';
/** the evidence id under which a verified backup's figures are recorded for the report */
export const BACKUP_EVIDENCE = 'BACKUP';

/** What is written beside a snapshot as `<name>.json`: never the password. */
export interface BackupMetadata {
  file: string;
  /** when the snapshot was asked for and when its transfer ended (ISO 8601) */
  startedAt: string;
  finishedAt: string;
  durationMs: number;
  sizeBytes: number;
  sha256: string;
  /** keys in the snapshot, counted by the scratch server that loaded it */
  keys: number;
  /** where it was taken from: the LoadBalancer address and port */
  source: string;
  runId: string;
  verification: SnapshotVerdict;
}

/** `redis-shared-20261206T105012Z.rdb`: the time sorts the names, so the name orders them. */
export function backupFileName(at: Date): string {
  const stamp = at
    .toISOString()
    .replace(/\.\d{3}Z$/, 'Z')
    .replaceAll(/[-:]/g, '');
  return `${BACKUP_PREFIX}${stamp}.rdb`;
}

export function metadataFileName(snapshot: string): string {
  return `${snapshot.replace(/\.rdb$/, '')}.json`;
}

const SNAPSHOT = new RegExp(`^${BACKUP_PREFIX}\\d{8}T\\d{6}Z\\.rdb$`);

/**
 * The snapshots retention removes, oldest first, given the names in the backup directory: all but
 * the newest `keep`. Files that are not snapshots (other runbooks' backups, partial transfers)
 * are never chosen.
 */
export function snapshotsToRemove(names: readonly string[], keep: number): string[] {
  if (!Number.isInteger(keep) || keep < 1) {
    throw new Error(`keep must be a whole number of at least 1, not ${keep}: set BACKUP_KEEP=7`);
  }
  const snapshots = names
    .map((n) => basename(n))
    .filter((n) => SNAPSHOT.test(n))
    .sort();
  return snapshots.slice(0, Math.max(0, snapshots.length - keep));
}

/** Every file retention removes for those snapshots: each snapshot and its metadata. */
export function filesOfSnapshots(snapshots: readonly string[]): string[] {
  return snapshots.flatMap((s) => [s, metadataFileName(s)]);
}

/** One sampled key: its type in the snapshot and on the live server ('none' when absent). */
export interface SampledKey {
  key: string;
  snapshotType: string;
  liveType: string;
  /** the key's time to live in the snapshot, in ms; -1 without one */
  snapshotTtlMs: number;
}

export interface SnapshotComparison {
  /** live keys (all databases) just before the snapshot was asked for */
  liveKeysBefore: number;
  /** live keys when the snapshot had been loaded */
  liveKeysAfter: number;
  /** keys the live server expired or evicted between the two counts */
  liveKeysExpired: number;
  /** keys the scratch server holds after loading the snapshot */
  snapshotKeys: number;
  sample: readonly SampledKey[];
}

export interface SnapshotVerdict {
  ok: boolean;
  /** how many keys differences may be explained by writes and expiries while it was taken */
  allowance: number;
  sampled: number;
  mismatches: string[];
  line: string;
}

/**
 * The snapshot agrees with the live server when its key count lies between the two live counts
 * (widened by the keys that expired meanwhile) and every sampled key has the same type on both,
 * except as many as the writes and expiries during the backup could explain. A key that had a
 * time to live in the snapshot may have expired since, so its absence is no mismatch.
 */
export function compareSnapshot(c: SnapshotComparison): SnapshotVerdict {
  const allowance = Math.abs(c.liveKeysAfter - c.liveKeysBefore) + c.liveKeysExpired;
  const low = Math.min(c.liveKeysBefore, c.liveKeysAfter) - c.liveKeysExpired;
  const high = Math.max(c.liveKeysBefore, c.liveKeysAfter) + c.liveKeysExpired;
  const mismatches: string[] = [];
  if (c.snapshotKeys < low || c.snapshotKeys > high) {
    mismatches.push(
      `the snapshot holds ${c.snapshotKeys} keys, the live server ${c.liveKeysBefore} before and ${c.liveKeysAfter} after (${c.liveKeysExpired} expired meanwhile)`,
    );
  }
  const differing = c.sample.filter(
    (s) => s.snapshotType !== s.liveType && !(s.liveType === 'none' && s.snapshotTtlMs >= 0),
  );
  if (differing.length > allowance) {
    for (const s of differing.slice(0, 10)) {
      mismatches.push(
        `key ${JSON.stringify(s.key)}: ${s.snapshotType} in the snapshot, ${s.liveType} live`,
      );
    }
    if (differing.length > 10) mismatches.push(`and ${differing.length - 10} more sampled keys`);
  }
  const ok = mismatches.length === 0;
  const line = ok
    ? `the snapshot's ${c.snapshotKeys} keys agree with the live server (${c.liveKeysBefore} before, ${c.liveKeysAfter} after); ${c.sample.length} sampled keys, ${differing.length} differing within the allowance of ${allowance}`
    : `the snapshot does not agree with the live server: ${mismatches.join('; ')}`;
  return { ok, allowance, sampled: c.sample.length, mismatches, line };
}

/** Keys per database from INFO keyspace (`db0:keys=3,expires=1,avg_ttl=0`), summed. */
export function keyspaceKeys(info: string): number {
  let total = 0;
  for (const m of info.matchAll(/^db\d+:keys=(\d+)/gm)) total += Number(m[1]);
  return total;
}

/** expired_keys + evicted_keys from INFO stats: the keys the server removed by itself. */
export function keysRemovedByServer(info: string): number {
  const field = (name: string) => Number(new RegExp(`^${name}:(\\d+)`, 'm').exec(info)?.[1] ?? 0);
  return field('expired_keys') + field('evicted_keys');
}

/** One line for the log and the report: when, how big, how many keys, where. */
export function describeBackup(
  m: Pick<BackupMetadata, 'file' | 'finishedAt' | 'durationMs' | 'sizeBytes' | 'keys'>,
): string {
  const size =
    m.sizeBytes >= 1 << 20
      ? `${(m.sizeBytes / (1 << 20)).toFixed(1)} MiB`
      : `${(m.sizeBytes / 1024).toFixed(1)} KiB`;
  return `${basename(m.file)}: ${m.keys} keys, ${size}, taken in ${(m.durationMs / 1000).toFixed(1)} s, finished ${m.finishedAt}`;
}
