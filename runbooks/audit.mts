#!/bin/sh
//bin/true; exec node --import "$(dirname "$(dirname "$(realpath "$0")")")/node_modules/tsx/dist/loader.mjs" "$0" "$@"
// Review and verify the audit log. Reads only; never writes to the log.
import { parseArgs } from 'node:util';

const HELP = `Usage: ./runbooks/audit.mts [list] [filters] [--json]
       ./runbooks/audit.mts list --cluster [--json]
       ./runbooks/audit.mts verify [--anchor | --no-anchor]

Review what the runbooks did, from the hash-chained audit log (AUDIT_LOG, default
logs/audit.jsonl). Nothing here writes to the log.

Commands:
  list      (default) a table of entries, oldest first
  verify    walk the hash chain; exit 0 when intact, 1 naming the first bad line and why
            (edited, missing, reordered, truncated, not JSON). An absent log is intact.
            Then, when the cluster can be read, compare the log with the anchors (seq + hash)
            the runs wrote to the cluster: a cut tail, a rewrite with recomputed hashes or a
            deleted run is reported (exit 1); without a cluster it says the anchors were not
            checked. --anchor: the check is required (unreadable cluster: exit 1);
            --no-anchor: chain only.
  list --cluster   every operator's runs and the completed runbooks, as the cluster records
            them (RUNBOOKS_NAMESPACE/RUNBOOKS_RECORD_NAME)

Filters (list):
  --runbook <id>     e.g. 05-migrate, or just 05
  --step <id>        a task or preflight id, e.g. T035, P01
  --run <id>         a run id (a prefix is enough: the RUN column shows 8 characters)
  --since <when>     a duration back from now (90m, 24h, 7d) or an ISO time (2026-11-22T10:00Z)
  --json             the matching entries as a JSON array on stdout

Options:
  --log <path>       read this audit log instead of AUDIT_LOG
  --env-file <path>  read settings from this file instead of .env
  -h, --help         this text

Exit codes: 0 ok · 1 verify found a broken chain · 2 usage or configuration error.
Examples:
  ./runbooks/audit.mts --runbook 05 --since 24h
  ./runbooks/audit.mts verify`;

function usageError(message: string): never {
  process.stderr.write(`audit: ${message}\nRun ./runbooks/audit.mts --help for usage.\n`);
  process.exit(2);
}

let parsed: ReturnType<typeof parse>;
function parse() {
  return parseArgs({
    allowPositionals: true,
    options: {
      runbook: { type: 'string' },
      step: { type: 'string' },
      run: { type: 'string' },
      since: { type: 'string' },
      json: { type: 'boolean' },
      anchor: { type: 'boolean' },
      'no-anchor': { type: 'boolean' },
      cluster: { type: 'boolean' },
      log: { type: 'string' },
      'env-file': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
}
try {
  parsed = parse();
} catch (err) {
  usageError((err as Error).message);
}
const { values, positionals } = parsed;
// `audit.mts list | head` closes the pipe early: that is the reader being done, not a failure.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(0);
  throw err;
});
if (values.help) {
  process.stdout.write(`${HELP}\n`);
  process.exit(0);
}
const command = positionals[0] ?? 'list';
if (positionals.length > 1 || !['list', 'verify'].includes(command)) {
  usageError(`unknown command "${positionals.join(' ')}"; use list or verify`);
}

const { resolveAuditLogPath } = await import('../lib/audit-cli.ts');
const logPath = resolveAuditLogPath(values.log, values['env-file']);

if (command === 'verify') {
  const { verifyAuditLog } = await import('../lib/audit.ts');
  const result = await verifyAuditLog(logPath);
  if (result.ok) {
    process.stdout.write(`intact: ${result.entries} entries in ${logPath}\n`);
    if (values['no-anchor']) process.exit(0);
    const { anchorCheck } = await import('../lib/audit-cli.ts');
    process.exit(await anchorCheck(logPath, values['env-file'], values.anchor === true));
  }
  process.stdout.write(`broken: ${logPath} ${result.message}\n`);
  process.stderr.write(
    'Entries before that line are trustworthy; from it on, compare with the backups in logs/backups and the cluster state.\n',
  );
  process.exit(1);
}

if (values.cluster) {
  const { listClusterRuns } = await import('../lib/audit-cli.ts');
  process.exit(await listClusterRuns(values['env-file'], values.json === true));
}

const { readAuditLog } = await import('../lib/audit.ts');
const { filterEntries, formatAuditTable, parseSince } = await import('../lib/audit-view.ts');
const since = values.since === undefined ? undefined : parseSince(values.since);
if (values.since !== undefined && !since) {
  usageError(`--since "${values.since}" is neither a duration (24h, 90m) nor an ISO time`);
}
const log = await readAuditLog(logPath);
if (log.unreadableLines > 0) {
  // The table would otherwise look complete; a damaged log is exactly what the reader must know.
  process.stderr.write(
    `warning: ${log.unreadableLines} line(s) of ${logPath} are not readable entries and are not listed; run ./runbooks/audit.mts verify to see where the log breaks\n`,
  );
}
const entries = filterEntries(log.entries, {
  runbook: values.runbook,
  step: values.step,
  run: values.run,
  since,
});
if (values.json) {
  process.stdout.write(`${JSON.stringify(entries, null, 2)}\n`);
} else {
  process.stdout.write(`${formatAuditTable(entries, process.stdout.columns ?? 160)}\n`);
}
