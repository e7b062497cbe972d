// The cluster side of ./runbooks/audit.mts: `verify` against the anchors the runs left in the
// cluster, and `list --cluster`, every operator's runs as the cluster recorded them.
import { hostname } from 'node:os';
import type { Config } from '../config.ts';
import { readAuditEntries } from './audit.ts';
import { ClusterRecords, type ClusterRecordsSnapshot, checkAnchors } from './cluster-records.ts';

export type AnchorVerdict =
  | { status: 'matches'; checked: number; location: string }
  | { status: 'differs'; checked: number; location: string; problems: string[] }
  | { status: 'not-checked'; reason: string };

/** Reads the anchors; a cluster that cannot be reached gives `not-checked` with the reason. */
export async function verifyAgainstCluster(cfg: Config, logPath: string): Promise<AnchorVerdict> {
  // An unreachable address must not hold verify for a whole COMMAND_TIMEOUT.
  const quick = {
    ...cfg,
    timeouts: { ...cfg.timeouts, commandMs: Math.min(cfg.timeouts.commandMs, 10_000) },
  };
  const records = new ClusterRecords(quick);
  let snapshot: ClusterRecordsSnapshot;
  try {
    snapshot = await records.read();
  } catch (err) {
    return { status: 'not-checked', reason: (err as Error).message };
  }
  const entries = await readAuditEntries(logPath);
  const result = checkAnchors(entries, logPath, hostname(), snapshot);
  return result.problems.length === 0
    ? { status: 'matches', checked: result.checked, location: records.location }
    : {
        status: 'differs',
        checked: result.checked,
        location: records.location,
        problems: result.problems,
      };
}

export function formatAnchorVerdict(verdict: AnchorVerdict): string {
  switch (verdict.status) {
    case 'matches':
      return verdict.checked === 0
        ? `anchors: ${verdict.location} holds none for this log yet (no real run has ended with it)`
        : `anchors: ${verdict.checked} anchor(s) in ${verdict.location} match the log`;
    case 'differs':
      return [
        `anchors: the log differs from ${verdict.location}:`,
        ...verdict.problems.map((p) => `  - ${p}`),
      ].join('\n');
    case 'not-checked':
      return `anchors: not checked, the cluster could not be read (${verdict.reason})`;
  }
}

const COLUMNS = ['TIME (UTC)', 'RUNBOOK', 'MODE', 'OUTCOME', 'OPERATOR', 'RUN', 'LOG', 'SEQ'];

/** Every run the cluster knows about, oldest first, then which runbooks stand completed. */
export function formatClusterRuns(snapshot: ClusterRecordsSnapshot, location: string): string {
  const lines: string[] = [];
  if (snapshot.runs.length === 0) {
    lines.push(`No runs are recorded in ${location}.`);
  } else {
    const rows = snapshot.runs.map((r) => [
      r.time.replace('T', ' ').slice(0, 19),
      r.runbook,
      r.mode,
      r.outcome,
      `${r.operator}@${r.host}`,
      // whole: `--run` takes it, where its first 8 characters were only the date
      r.run_id,
      r.log_id.slice(0, 8),
      String(r.seq),
    ]);
    const widths = COLUMNS.map((c, i) =>
      Math.max(c.length, ...rows.map((row) => (row[i] as string).length)),
    );
    const render = (cells: string[]) =>
      cells
        .map((cell, i) => cell.padEnd(widths[i] as number))
        .join('  ')
        .trimEnd();
    lines.push(render(COLUMNS), ...rows.map(render));
  }
  const completed = Object.entries(snapshot.completions).sort(([a], [b]) => a.localeCompare(b));
  lines.push('');
  lines.push(
    completed.length === 0
      ? 'Completed runbooks: none recorded.'
      : `Completed runbooks (${location}):`,
  );
  for (const [id, r] of completed) {
    lines.push(`  ${id}: run ${r.run_id} by ${r.operator}@${r.host} at ${r.time}`);
  }
  return lines.join('\n');
}
