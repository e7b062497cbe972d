#!/bin/sh
//bin/true; exec node --import "$(dirname "$(dirname "$(realpath "$0")")")/lib/ts-loader/register.mjs" "$0" "$@"
// Review and verify the audit log. Reads only; never writes to the log.

import { parseArgs } from 'node:util';

const HELP = `Usage: ./runbooks/audit.mts [list] [filters] [--format table|tsv|json] [--columns a,b]
       ./runbooks/audit.mts runs [--runbook <id>] [--run <id>] [--since <when>] [--format f]
       ./runbooks/audit.mts list --cluster [--json]
       ./runbooks/audit.mts verify [--all] [--anchor | --no-anchor]

Review what the runbooks did, from the hash-chained audit log (AUDIT_LOG, default
logs/audit.jsonl). Nothing here writes to the log.

Commands:
  list      (default) a table of entries, oldest first
  verify    walk the hash chain; exit 0 when intact, 1 naming the first bad line and why
            (edited, missing, reordered, truncated, not JSON) and how many more there are;
            --all names every bad line. Each line is checked as written, byte for byte.
            A missing or unreadable log is exit 2.
            Then, when the cluster can be read, compare the log with the anchors (seq + hash)
            the runs wrote to the cluster: a cut tail, a rewrite with recomputed hashes or a
            deleted run is reported (exit 1); without a cluster it says the anchors were not
            checked. --anchor: the check is required (unreadable cluster: exit 1);
            --no-anchor: chain only.
            With AUDIT_HMAC_KEY_FILE set (a 0600 file of ≥ 32 random bytes, the same on every
            machine that runs the runbooks), every line written carries an HMAC, and verify
            checks them: a line rewritten without the key is reported (forged, exit 1).
  runs      one row per run: RUN (what --run takes), runbook, mode, outcome, started, took,
            05's downtime, the choices made when a step failed (retry, rollback, stop), and
            the run it is chained to (a "Roll back now" run and the failed run it rolled
            back); a failed run's error follows its row, whole
  list --cluster   every operator's runs and the completed runbooks, as the cluster records
            them (RUNBOOKS_NAMESPACE/RUNBOOKS_RECORD_NAME)

Filters (list):
  --runbook <id>     e.g. 05-migrate, or just 05
  --step <id>        a task or preflight id, e.g. T035, P01
  --run <id>         a run: its id (20261130T140118Z-042ddb) or a prefix of it, the RUN column's
                     short form (140118-042ddb: start time and suffix), or the suffix (042ddb);
                     the run chained to it (see runs) is shown with it
  --since <when>     a duration back from now (90m, 24h, 7d) or an ISO time (2026-11-22T10:00Z)

Output (list):
  --format <f>       table (default, for people), tsv (tab-separated with a header line,
                     whole values and full run ids, for pipes) or json
  --columns <list>   the columns of table and tsv, in order, e.g. seq,time,run,step,event;
                     any of seq, time, run, runbook, step, event, outcome, took, detail
  --json             the matching entries, every field, as a JSON array (= --format json)

Options:
  --log <path>       read this audit log instead of AUDIT_LOG
  --env-file <path>  read settings from this file instead of .env
  -h, --help         this text

Exit codes: 0 ok · 1 verify found a broken chain · 2 usage, configuration, or a missing or
unreadable log.
Examples:
  ./runbooks/audit.mts runs --runbook 05
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
      format: { type: 'string' },
      columns: { type: 'string' },
      all: { type: 'boolean' },
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
if (positionals.length > 1 || !['list', 'runs', 'verify'].includes(command)) {
  usageError(`unknown command "${positionals.join(' ')}"; use list, runs or verify`);
}

const { resolveAuditLogPath } = await import('../lib/audit/audit-cli.ts');
const logPath = resolveAuditLogPath(values.log, values['env-file']);

const { AuditLogError, readAuditLog, verifyAuditLog } = await import('../lib/audit/audit.ts');
const view = await import('../lib/audit/audit-view.ts');

const format = values.json ? 'json' : (values.format ?? 'table');
if (!(view.OUTPUT_FORMATS as readonly string[]).includes(format)) {
  usageError(`--format "${format}" is not known; use table, tsv or json`);
}
let columns = view.COLUMN_NAMES;
if (values.columns !== undefined) {
  if (format === 'json')
    usageError('--columns applies to table and tsv; json prints whole entries');
  const parsedColumns = view.parseColumns(values.columns);
  if ('unknown' in parsedColumns) {
    usageError(
      `unknown column "${parsedColumns.unknown}" in --columns; use any of ${view.COLUMN_NAMES.join(', ')}`,
    );
  }
  columns = parsedColumns.columns;
}

/** A missing or unreadable log is a usage problem (exit 2), said in one sentence. */
async function orUnreadable<T>(work: Promise<T>): Promise<T> {
  try {
    return await work;
  } catch (err) {
    if (!(err instanceof AuditLogError)) throw err;
    process.stderr.write(`audit: ${err.message}\n`);
    process.exit(2);
  }
}

if (command === 'verify') {
  const { auditKeyForVerify } = await import('../lib/audit/audit-cli.ts');
  const key = await auditKeyForVerify(values['env-file']);
  const result = await orUnreadable(verifyAuditLog(logPath, key ? { hmacKey: key } : {}));
  if (result.ok) {
    process.stdout.write(`intact: ${result.entries} entries in ${logPath}\n`);
    if (result.signed) {
      const { from, to } = result.signed;
      const before =
        from > 1
          ? `; lines 1–${from - 1}, written before the key was set, are covered through the chain`
          : '';
      process.stdout.write(
        `hmac: lines ${from}–${to} carry an HMAC made with AUDIT_HMAC_KEY_FILE${before}\n`,
      );
    }
    if (values['no-anchor']) process.exit(0);
    const { anchorCheck } = await import('../lib/audit/audit-cli.ts');
    process.exit(await anchorCheck(logPath, values['env-file'], values.anchor === true));
  }
  const shown = values.all ? result.problems : result.problems.slice(0, 1);
  for (const problem of shown) process.stdout.write(`broken: ${logPath} ${problem.message}\n`);
  const rest = result.problems.slice(shown.length);
  if (rest.length > 0) {
    const noun = rest.length === 1 ? 'bad line' : 'bad lines';
    const which = rest.map((p) => p.line).join(', ');
    process.stdout.write(`and ${rest.length} more ${noun} (${which}); --all lists them\n`);
  }
  process.stderr.write(
    'Entries before the first bad line are trustworthy; from it on, compare with the backups in logs/backups and the cluster state.\n',
  );
  process.exit(1);
}

if (values.cluster) {
  const { listClusterRuns } = await import('../lib/audit/audit-cli.ts');
  process.exit(await listClusterRuns(values['env-file'], values.json === true));
}

const since = values.since === undefined ? undefined : view.parseSince(values.since);
if (values.since !== undefined && !since) {
  usageError(`--since "${values.since}" is neither a duration (24h, 90m) nor an ISO time`);
}
const log = await orUnreadable(readAuditLog(logPath));
if (log.unreadableLines > 0) {
  // The table would otherwise look complete; a damaged log is exactly what the reader must know.
  process.stderr.write(
    `warning: ${log.unreadableLines} line(s) of ${logPath} are not readable entries and are not listed; run ./runbooks/audit.mts verify to see where the log breaks\n`,
  );
}
const { summariseRuns, withChainedRuns, formatRunsTable, formatRunsTsv } = await import(
  '../lib/audit/audit-runs.ts'
);
const { DOWNTIME_MS_NOTE } = await import('../lib/phases/migration-notes.ts');
const runs = summariseRuns(log.entries, DOWNTIME_MS_NOTE);
// --run: the run asked for and the run chained to it.
const runIds =
  values.run === undefined
    ? undefined
    : withChainedRuns(runs, (id) => view.runMatches(id, values.run as string));
if (command === 'runs') {
  // The hint reads the same log as this invocation did.
  const { formatCommand } = await import('../lib/engine/shell.ts');
  const sameLog = formatCommand([
    './runbooks/audit.mts',
    ...(values.log !== undefined ? ['--log', values.log] : []),
    ...(values['env-file'] !== undefined ? ['--env-file', values['env-file']] : []),
  ]);
  if (values.step !== undefined || values.columns !== undefined) {
    usageError(
      'runs takes --runbook, --run, --since and --format; --step and --columns are for list',
    );
  }
  const shown = runs.filter(
    (r) =>
      (!runIds || runIds.has(r.runId)) &&
      view.runbookMatches(r.runbook, values.runbook) &&
      (!since || Date.parse(r.started) >= since.getTime()),
  );
  process.stdout.write(
    `${format === 'json' ? JSON.stringify(shown, null, 2) : format === 'tsv' ? formatRunsTsv(shown) : formatRunsTable(shown, sameLog)}\n`,
  );
  process.exit(0);
}
const entries = view
  .filterEntries(log.entries, { runbook: values.runbook, step: values.step, since })
  .filter((e) => !runIds || (e.run_id !== undefined && runIds.has(e.run_id)));
if (format === 'json') {
  process.stdout.write(`${JSON.stringify(entries, null, 2)}\n`);
} else if (format === 'tsv') {
  process.stdout.write(`${view.formatAuditTsv(entries, columns)}\n`);
} else {
  process.stdout.write(
    `${view.formatAuditTable(entries, process.stdout.columns ?? 160, columns)}\n`,
  );
}
