// What runbooks/restore.mts decides about a restore of redis-shared, as pure functions: which
// snapshot to restore and whether it may be, the sentence that names what a restore overwrites,
// the drill's marker keys and its verdict on them (the measured RPO), and the RTO's line.
import { basename } from 'node:path';
import { formatDuration } from '../duration.ts';
import { BACKUP_PREFIX, type BackupMetadata, metadataFileName } from './backup.ts';

/** the snapshot R01 chose, noted so that R02 resumed in another process restores the same one */
export const RESTORE_CHOICE_NOTE = 'restore.choice';
/** when the operator decided to restore (R02's answer), ISO 8601: where the RTO starts */
export const RESTORE_DECIDED_NOTE = 'restore.decided-at';
/** what emptying redis-shared deleted (R02, D03): the audit log's record of it */
export const EMPTIED_NOTE = 'restore.emptied';
/** the drill's markers, noted by D01 and D02, judged by D04 */
export const DRILL_MARKERS_NOTE = 'restore.drill.markers';

export const RESTORE_RPO_EVIDENCE = 'RESTORE-RPO';
export const RESTORE_RTO_EVIDENCE = 'RESTORE-RTO';

/** A snapshot in BACKUP_DIR with what its metadata file says (undefined: no readable metadata). */
export interface SnapshotOnDisk {
  name: string;
  metadata: BackupMetadata | undefined;
}

/** The snapshot R01 chose: its file and metadata, checked, and what it will replace. */
export interface RestoreChoice {
  file: string;
  metadata: BackupMetadata;
  /** keys redis-shared held when the snapshot was chosen */
  liveKeys: number;
}

const SNAPSHOT = new RegExp(`^${BACKUP_PREFIX}\\d{8}T\\d{6}Z\\.rdb$`);

/** The snapshot files among the names in BACKUP_DIR, newest first. */
export function snapshotsNewestFirst(names: readonly string[]): string[] {
  return names
    .map((n) => basename(n))
    .filter((n) => SNAPSHOT.test(n))
    .sort()
    .reverse();
}

/**
 * The newest snapshot whose metadata says it was verified; snapshots without metadata or with a
 * failed verification are passed over, never chosen by default.
 */
export function newestVerifiedSnapshot(snapshots: readonly SnapshotOnDisk[]): string | undefined {
  return snapshotsNewestFirst(snapshots.map((s) => s.name)).find(
    (name) => snapshots.find((s) => s.name === name)?.metadata?.verification?.ok === true,
  );
}

/**
 * Why a snapshot may not be restored, or undefined when it may: its metadata must exist, say
 * that the verification passed, and give the sha256 the file has now.
 */
export function refusalOf(
  file: string,
  metadata: BackupMetadata | undefined,
  sha256Now: string,
): string | undefined {
  const name = basename(file);
  if (!metadata) {
    return `${name} has no metadata (${basename(metadataFileName(file))}): it was never verified, so it is not restored`;
  }
  if (metadata.verification?.ok !== true) {
    return `${name} failed its verification when it was taken (${metadata.verification?.line ?? 'no verdict'}): it is not restored`;
  }
  if (metadata.sha256 !== sha256Now) {
    return `${name} has changed since it was taken: its sha256 is ${sha256Now}, its metadata says ${metadata.sha256}; it is not restored`;
  }
  return undefined;
}

/** The sentence the confirmation and the log show: what is overwritten by what. */
export function overwriteSentence(choice: RestoreChoice, release: string): string {
  const m = choice.metadata;
  return `all ${choice.liveKeys} keys of ${release} are replaced by the ${m.keys} keys of ${m.file} taken at ${m.finishedAt}`;
}

/** The drill writes markers before the backup (they must come back) and after it (the RPO). */
export type MarkerPhase = 'before' | 'after';

export interface DrillMarker {
  key: string;
  value: string;
  phase: MarkerPhase;
  /** when it was acknowledged by redis-shared (ISO 8601) */
  writtenAt: string;
}

/** `restore-drill:<run>:<phase>:<n>`: one run's markers, told apart from any other key. */
export function markerKey(runId: string, phase: MarkerPhase, index: number): string {
  return `restore-drill:${runId}:${phase}:${index}`;
}

/** A marker as read back after the restore. */
export interface MarkerReadback {
  marker: DrillMarker;
  /** the value read back; undefined when the key is absent */
  value: string | undefined;
  /** its time to live in ms (-1 without one, -2 absent) */
  ttlMs: number;
}

export interface RpoVerdict {
  ok: boolean;
  beforeBack: number;
  beforeWritten: number;
  afterBack: number;
  afterWritten: number;
  /** the markers lost: written after the backup and not restored (the RPO, in writes) */
  lost: string[];
  /** what is wrong: a marker written before the backup missing, changed or without its TTL */
  problems: string[];
  line: string;
}

/**
 * Every marker written before the backup must be back with its value and a time to live; every
 * marker written after it must be gone (the writes a restore loses). A marker after the backup
 * that came back means the restore did not replace the data, so it fails the drill too.
 */
export function judgeRpo(readbacks: readonly MarkerReadback[]): RpoVerdict {
  const before = readbacks.filter((r) => r.marker.phase === 'before');
  const after = readbacks.filter((r) => r.marker.phase === 'after');
  const problems: string[] = [];
  let beforeBack = 0;
  for (const r of before) {
    if (r.value === undefined) problems.push(`${r.marker.key} (before the backup) is missing`);
    else if (r.value !== r.marker.value) problems.push(`${r.marker.key} came back changed`);
    else if (r.ttlMs < 0) problems.push(`${r.marker.key} came back without its time to live`);
    else beforeBack++;
  }
  const afterBack = after.filter((r) => r.value !== undefined);
  for (const r of afterBack) {
    problems.push(`${r.marker.key} (after the backup) is still there: the data was not replaced`);
  }
  const lost = after.filter((r) => r.value === undefined).map((r) => r.marker.key);
  const ok = problems.length === 0 && before.length > 0;
  const line = `${beforeBack}/${before.length} markers written before the backup came back with their TTL; ${lost.length}/${after.length} written after it were lost (the RPO)${problems.length ? `; ${problems.slice(0, 5).join('; ')}` : ''}`;
  return {
    ok,
    beforeBack,
    beforeWritten: before.length,
    afterBack: afterBack.length,
    afterWritten: after.length,
    lost,
    problems,
    line,
  };
}

/** The writes a restore of this snapshot gives up: everything after it finished. */
export function rpoWindowMs(snapshotFinishedAt: string, decidedAt: string): number {
  return Math.max(0, Date.parse(decidedAt) - Date.parse(snapshotFinishedAt));
}

/** The RTO's line for the log and the report. */
export function describeRto(rtoMs: number, decidedAt: string, healthyAt: string): string {
  return `RTO ${formatDuration(rtoMs)}: restore decided at ${decidedAt}, beersystem healthy again at ${healthyAt}`;
}
