// What the runbooks leave in the cluster for every operator to see (docs/shared-state.md): one
// ConfigMap (RUNBOOKS_NAMESPACE/RUNBOOKS_RECORD_NAME) holding
//   <runbook id>      the runbook's completion record (who, when, which run, the audit head),
//                     written when a run in the default mode completes, cleared by its rollback;
//   run.<run id>      every real run's anchor: where its run-end sits in its operator's log;
//   anchor.<log id>   the latest head (seq, hash) of each operator's log.
// The `requires` gate reads the completion records, so any machine sees the same truth; the
// anchors let `audit.mts verify` see a log whose tail was cut or that was rewritten.
import { open } from 'node:fs/promises';
import type { Kube } from '../cluster/kube.ts';
import { createKubeApi, type KubeApi, KubeError } from '../cluster/kube-api.ts';
import type { Config } from '../config.ts';
import { formatDuration } from '../duration.ts';
import { MIGRATION_ANNOTATION, migrationRecordOf } from '../names.ts';
import type { AuditEntry } from './audit.ts';

export interface AuditHead {
  /** the hash of the log's first entry: a random-enough, stable name for one operator's log */
  log_id: string;
  seq: number;
  hash: string;
}

export interface CompletionRecord {
  run_id: string;
  operator: string;
  host: string;
  time: string;
  git_rev: string | null;
  audit_head: AuditHead;
}

export interface RunAnchor extends AuditHead {
  run_id: string;
  runbook: string;
  mode: string;
  outcome: string;
  operator: string;
  host: string;
  time: string;
  /** the log's path on the operator's machine, to recognise a log replaced from its start */
  log_path: string;
}

export interface LogAnchor extends AuditHead {
  operator: string;
  host: string;
  time: string;
  log_path: string;
  run_id: string;
}

export interface ClusterRecordsSnapshot {
  completions: Record<string, CompletionRecord>;
  runs: RunAnchor[];
  logs: LogAnchor[];
}

interface ConfigMapObject {
  apiVersion: 'v1';
  kind: 'ConfigMap';
  metadata: {
    name: string;
    namespace: string;
    resourceVersion?: string;
    labels?: Record<string, string>;
  };
  data?: Record<string, string>;
}

const MAX_PASSES = 8;
const RUN_PREFIX = 'run.';
const LOG_PREFIX = 'anchor.';

export class ClusterRecords {
  readonly location: string;
  private readonly api: KubeApi;
  private readonly collection: string;
  private readonly path: string;

  constructor(
    private readonly cfg: Config,
    options: { api?: KubeApi } = {},
  ) {
    const { namespace, recordName } = cfg.runbooks;
    this.location = `ConfigMap ${namespace}/${recordName} (context ${cfg.kubeContext})`;
    this.api = options.api ?? createKubeApi(cfg);
    this.collection = `/api/v1/namespaces/${namespace}/configmaps`;
    this.path = `${this.collection}/${recordName}`;
  }

  /** Everything recorded; empty when nothing was ever written. Throws when the cluster cannot be read. */
  async read(): Promise<ClusterRecordsSnapshot> {
    const cm = await this.api.json<ConfigMapObject>('GET', this.path);
    return parseRecords(cm?.data ?? {});
  }

  async recordCompletion(runbook: string, record: CompletionRecord): Promise<void> {
    await this.update((data) => {
      data[runbook] = JSON.stringify(record);
    });
  }

  async clearCompletion(runbook: string): Promise<void> {
    await this.update((data) => {
      delete data[runbook];
    });
  }

  /**
   * A real run ended: anchor its run-end entry (and move its log's anchor forward); when it
   * completed, the default mode records the runbook as completed and `rollback` clears that.
   */
  async recordRunEnd(input: {
    logPath: string;
    entry: AuditEntry;
    mode: string;
    complete: boolean;
  }): Promise<RunAnchor> {
    const { entry } = input;
    const logId = (await readLogId(input.logPath)) ?? logIdOf(entry);
    const run: RunAnchor = {
      log_id: logId,
      seq: entry.seq,
      hash: entry.hash,
      run_id: entry.run_id,
      runbook: entry.runbook,
      mode: input.mode,
      outcome: entry.outcome ?? 'unknown',
      operator: entry.operator,
      host: entry.host,
      time: entry.ts,
      log_path: input.logPath,
    };
    await this.update((data) => {
      data[`${RUN_PREFIX}${run.run_id}`] = JSON.stringify(run);
      moveLogAnchor(data, {
        log_id: logId,
        seq: run.seq,
        hash: run.hash,
        operator: run.operator,
        host: run.host,
        time: run.time,
        log_path: run.log_path,
        run_id: run.run_id,
      });
      if (!input.complete) return;
      if (input.mode === 'default') {
        const record: CompletionRecord = {
          run_id: entry.run_id,
          operator: entry.operator,
          host: entry.host,
          time: entry.ts,
          git_rev: entry.git_rev,
          audit_head: { log_id: logId, seq: entry.seq, hash: entry.hash },
        };
        data[entry.runbook] = JSON.stringify(record);
      } else if (input.mode === 'rollback') {
        delete data[entry.runbook];
      }
    });
    return run;
  }

  /** Moves the log's anchor forward to `entry` in the middle of a long run. */
  async anchorHead(logPath: string, entry: AuditEntry): Promise<void> {
    const logId = (await readLogId(logPath)) ?? logIdOf(entry);
    await this.update((data) => {
      moveLogAnchor(data, {
        log_id: logId,
        seq: entry.seq,
        hash: entry.hash,
        operator: entry.operator,
        host: entry.host,
        time: entry.ts,
        log_path: logPath,
        run_id: entry.run_id,
      });
    });
  }

  /** Read, change, write with the resourceVersion read; another writer in between means again. */
  private async update(change: (data: Record<string, string>) => void): Promise<void> {
    const { namespace, recordName } = this.cfg.runbooks;
    for (let pass = 0; pass < MAX_PASSES; pass++) {
      const current = await this.api.json<ConfigMapObject>('GET', this.path);
      const data = { ...current?.data };
      change(data);
      const body: ConfigMapObject = {
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: {
          name: recordName,
          namespace,
          labels: { 'app.kubernetes.io/managed-by': 'redis-shared-runbooks' },
          ...(current?.metadata.resourceVersion
            ? { resourceVersion: current.metadata.resourceVersion }
            : {}),
        },
        data,
      };
      const { status, body: answer } = current
        ? await this.api.request('PUT', this.path, { body })
        : await this.api.request('POST', this.collection, { body });
      if (status === 409) continue;
      if (status < 200 || status > 299) {
        throw new KubeError(
          `writing ${this.location} answered ${status}: ${answer.slice(0, 300)}. Check that RUNBOOKS_NAMESPACE exists and that you may write ConfigMaps there`,
          status,
          undefined,
        );
      }
      return;
    }
    throw new Error(`${this.location} kept changing under this run; its record was not written`);
  }
}

// Anchors only move forward: a late writer must not pull a log's head back.
function moveLogAnchor(data: Record<string, string>, log: LogAnchor): void {
  const key = `${LOG_PREFIX}${log.log_id}`;
  const previous = data[key];
  if (!previous || (JSON.parse(previous) as LogAnchor).seq <= log.seq) {
    data[key] = JSON.stringify(log);
  }
}

export function parseRecords(data: Record<string, string>): ClusterRecordsSnapshot {
  const snapshot: ClusterRecordsSnapshot = { completions: {}, runs: [], logs: [] };
  for (const [key, value] of Object.entries(data)) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(value);
    } catch {
      continue;
    }
    if (key.startsWith(RUN_PREFIX)) snapshot.runs.push(parsed as RunAnchor);
    else if (key.startsWith(LOG_PREFIX)) snapshot.logs.push(parsed as LogAnchor);
    else snapshot.completions[key] = parsed as CompletionRecord;
  }
  snapshot.runs.sort((a, b) => a.time.localeCompare(b.time));
  return snapshot;
}

/** The id of the log whose first entry this is. */
export function logIdOf(first: Pick<AuditEntry, 'hash'>): string {
  return first.hash.slice(0, 16);
}

/** The log's id from its first line, without reading the rest; undefined for an empty log. */
export async function readLogId(path: string): Promise<string | undefined> {
  let handle: Awaited<ReturnType<typeof open>> | undefined;
  try {
    handle = await open(path, 'r');
    const buffer = Buffer.alloc(64 * 1024);
    const { bytesRead } = await handle.read(buffer, 0, buffer.length, 0);
    const firstLine = buffer.subarray(0, bytesRead).toString('utf8').split('\n')[0] ?? '';
    return logIdOf(JSON.parse(firstLine) as AuditEntry);
  } catch {
    return undefined;
  } finally {
    await handle?.close();
  }
}

export interface AnchorCheck {
  /** anchors that speak about this log */
  checked: number;
  /** one sentence per difference, naming the anchor and what differs */
  problems: string[];
}

/**
 * Compares a local log with what the cluster recorded about it: every run anchor of this log
 * (and the log's latest anchor) must find its entry at the recorded seq with the recorded hash.
 * A cut tail, a rewrite with recomputed hashes and a deleted run each break that.
 */
export function checkAnchors(
  entries: AuditEntry[],
  logPath: string,
  host: string,
  snapshot: ClusterRecordsSnapshot,
): AnchorCheck {
  const problems: string[] = [];
  const first = entries[0];
  const logId = first ? logIdOf(first) : undefined;
  const bySeq = new Map(entries.map((e) => [e.seq, e]));
  const lastSeq = entries.at(-1)?.seq ?? 0;
  const runIds = new Set(entries.map((e) => e.run_id));
  // A log is known by its id, or by its place (host and path) when its first line was changed.
  const ours = snapshot.runs.filter(
    (r) => r.log_id === logId || (r.host === host && r.log_path === logPath),
  );
  const otherIds = [...new Set(ours.filter((r) => r.log_id !== logId).map((r) => r.log_id))];
  if (otherIds.length > 0) {
    problems.push(
      `the cluster anchors runs of the log at ${logPath} on ${host} under id ${otherIds.join(', ')}, but this log's first entry gives id ${logId ?? '(empty log)'}: it was replaced or rewritten from its first line`,
    );
  }
  const describe = (a: { seq: number; hash: string }, what: string) => {
    const entry = bySeq.get(a.seq);
    if (!entry) {
      return a.seq > lastSeq
        ? `${what} records seq ${a.seq} (hash ${a.hash.slice(0, 12)}…), but the log ends at seq ${lastSeq}: its tail was cut off`
        : `${what} records seq ${a.seq}, which is not in the log`;
    }
    if (entry.hash !== a.hash) {
      return `${what} records seq ${a.seq} with hash ${a.hash.slice(0, 12)}…, the log has ${entry.hash.slice(0, 12)}… there: the log was rewritten`;
    }
    return undefined;
  };
  for (const run of ours) {
    const what = `the anchor of run ${run.run_id} (${run.runbook}, ${run.outcome}, ${run.operator}@${run.host}, ${run.time})`;
    if (!runIds.has(run.run_id) && run.seq <= lastSeq) {
      problems.push(`${what} is a run this log does not contain: it was deleted from the log`);
      continue;
    }
    const end = entries.find((e) => e.run_id === run.run_id && e.event === 'run-end');
    if (end && end.seq !== run.seq) {
      problems.push(
        `${what} records its end at seq ${run.seq}, the log has it at seq ${end.seq}: entries before it were removed or added and the chain recomputed`,
      );
      continue;
    }
    const problem = describe(run, what);
    if (problem) problems.push(problem);
  }
  const head = snapshot.logs.find((l) => l.log_id === logId);
  if (head) {
    const problem = describe(head, `the latest anchor of this log (${head.time})`);
    if (problem && !problems.some((p) => p.includes(`seq ${head.seq} `))) problems.push(problem);
  }
  return { checked: ours.length + (head ? 1 : 0), problems };
}

export interface GateContext {
  cfg: Config;
}

/**
 * `requires`, read from the cluster: open when every required runbook has a completion record,
 * whoever's machine ran it. A cluster that cannot be read keeps the gate closed.
 */
export function clusterRequiredRunbooksGate(
  required: readonly string[],
  /** asked only when no cluster can be reached at all: the local audit log's word */
  whenUnreachable?: {
    check(
      ctx: GateContext,
    ): { open: boolean; reason: string } | Promise<{ open: boolean; reason: string }>;
  },
) {
  return {
    id: 'requires',
    describe: `earlier runbooks completed (records in the cluster): ${required.join(', ')}`,
    async check(ctx: GateContext) {
      const records = new ClusterRecords(ctx.cfg);
      let completions: ClusterRecordsSnapshot['completions'];
      try {
        ({ completions } = await records.read());
      } catch (err) {
        if (!whenUnreachable || !(err instanceof KubeError) || err.status !== 0) throw err;
        const local = await whenUnreachable.check(ctx);
        return {
          open: local.open,
          reason: `${local.reason} (from the local audit log: the cluster, where the records are kept, cannot be reached)`,
        };
      }
      const missing = required.filter((id) => !completions[id]);
      if (missing.length === 0) {
        const by = required.map((id) => {
          const r = completions[id] as CompletionRecord;
          return `${id} by ${r.operator}@${r.host} at ${r.time}`;
        });
        return { open: true, reason: `completed: ${by.join('; ')}` };
      }
      return {
        open: false,
        reason: `${records.location} has no completion record for ${missing.join(', ')} (run ${missing
          .map((id) => `./runbooks/${id}.mts`)
          .join(', then ')} first)`,
      };
    },
  };
}

export interface MigrationRecord {
  /** ISO time of T040, as annotated */
  at: string;
  runId: string | undefined;
}

/** The migration record on beersystem's Deployment; undefined when there is none (yet). */
export async function readMigrationRecord(
  kube: Pick<Kube, 'deployment'>,
  cfg: Pick<Config, 'beersystem'>,
): Promise<MigrationRecord | undefined> {
  const dep = await kube.deployment(cfg.beersystem.namespace, cfg.beersystem.deployment);
  return dep ? migrationRecordOf(dep.annotations) : undefined;
}

/**
 * 06-decommission's gate: open once VALIDATION_WINDOW has passed since the migration record
 * that 05-migrate wrote in the cluster, whoever's machine ran it.
 */
export function validationWindowGate(now: () => number = Date.now) {
  return {
    id: 'validation-window',
    describe: 'VALIDATION_WINDOW has passed since the migration (annotation on beersystem)',
    async check(ctx: { cfg: Config; kube: Pick<Kube, 'deployment'> }) {
      const record = await readMigrationRecord(ctx.kube, ctx.cfg);
      const { namespace, deployment } = ctx.cfg.beersystem;
      if (!record) {
        return {
          open: false,
          reason: `there is no migration record (annotation ${MIGRATION_ANNOTATION} on deployment ${namespace}/${deployment}): run ./runbooks/05-migrate.mts first`,
        };
      }
      const since = now() - Date.parse(record.at);
      if (!Number.isFinite(since)) {
        return { open: false, reason: `the migration record "${record.at}" is not a time` };
      }
      const window = ctx.cfg.validationWindowMs;
      return since >= window
        ? {
            open: true,
            reason: `migrated at ${record.at} (run ${record.runId ?? 'unknown'}), ${formatDuration(since)} ago`,
          }
        : {
            open: false,
            reason: `migrated at ${record.at}, ${formatDuration(window - since)} of the ${formatDuration(window)} validation window left`,
          };
    },
  };
}
