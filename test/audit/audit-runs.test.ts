// `audit.mts runs` (lib/audit/audit-runs.ts): one row per run for the post-mortem, the what-now
// choices, 05's downtime, and a "Roll back now" run chained to the failed run it rolled back;
// `--run` shows the chained run with the one asked for.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { AuditLog, readAuditEntries } from '../../lib/audit/audit.ts';
import { formatRunsTable, summariseRuns, withChainedRuns } from '../../lib/audit/audit-runs.ts';
import { REPO_ROOT } from '../../lib/config.ts';
import { DOWNTIME_MS_NOTE } from '../../lib/phases/migration-notes.ts';
import { withoutCoverage } from '../helpers/run-cli.ts';

const root = mkdtempSync(join(tmpdir(), 'audit-runs-'));
t.teardown(() => rmSync(root, { recursive: true, force: true }));

const FAILED = '20261206T021500Z-aaa111';
const ROLLBACK = '20261206T021800Z-bbb222';
const MIGRATED = '20261206T030000Z-ccc333';
const KILLED = '20261206T040000Z-ddd444';

/** A night in the window: a failed migration rolled back from the menu, a good one, a killed one. */
async function night(): Promise<string> {
  const path = join(mkdtempSync(join(root, 'log-')), 'audit.jsonl');
  const run = (run_id: string) =>
    new AuditLog(path, { run_id, runbook: '05-migrate', kube_context: 'sandbox' });
  const failed = run(FAILED);
  await failed.append({ event: 'run-start', detail: { mode: 'default' } });
  await failed.append({
    event: 'step-failed',
    step: 'T039',
    outcome: 'failed',
    detail: { error: 'tofu apply failed: the API answered 500\nsecond line of the error' },
  });
  await failed.append({ event: 'confirm', step: 'T039', outcome: 'rollback', detail: {} });
  const rollback = run(ROLLBACK);
  await rollback.append({ event: 'run-start', detail: { mode: 'rollback' } });
  await rollback.append({
    event: 'confirm',
    step: 'R01',
    outcome: 'confirmed',
    detail: { method: 'rollback-chosen', failed_run: FAILED, failed_step: 'T039' },
  });
  await rollback.append({ event: 'run-end', outcome: 'ok', duration_ms: 41_000, detail: {} });
  await failed.append({ event: 'run-end', outcome: 'failed', duration_ms: 95_000, detail: {} });
  const migrated = run(MIGRATED);
  await migrated.append({ event: 'run-start', detail: { mode: 'default' } });
  await migrated.append({
    event: 'note',
    step: 'T040',
    detail: { key: DOWNTIME_MS_NOTE, value: 5_200 },
  });
  await migrated.append({ event: 'run-end', outcome: 'ok', duration_ms: 60_000, detail: {} });
  await run(KILLED).append({ event: 'run-start', detail: { mode: 'default' } });
  return path;
}

const audit = (args: string[]) =>
  spawnSync(join(REPO_ROOT, 'runbooks/audit.mts'), args, {
    encoding: 'utf8',
    cwd: tmpdir(),
    env: withoutCoverage(),
  });

t.test('one row per run, the choices, the downtime, and the chain both ways', async (t) => {
  const runs = summariseRuns(await readAuditEntries(await night()), DOWNTIME_MS_NOTE);
  t.match(runs, [
    {
      runId: FAILED,
      mode: 'default',
      outcome: 'failed',
      choices: ['T039 rollback'],
      chainedTo: ROLLBACK,
    },
    { runId: ROLLBACK, mode: 'rollback', outcome: 'ok', tookMs: 41_000, chainedTo: FAILED },
    { runId: MIGRATED, outcome: 'ok', downtimeMs: 5_200, choices: [], chainedTo: undefined },
    { runId: KILLED, outcome: /no end recorded/ },
  ]);
  t.same([...withChainedRuns(runs, (id) => id === FAILED)].sort(), [FAILED, ROLLBACK]);
  const table = formatRunsTable(runs);
  t.match(
    table,
    /^RUN +RUNBOOK +MODE +OUTCOME +STARTED \(UTC\) +TOOK +DOWNTIME +CHOICES +CHAINED$/m,
  );
  t.match(
    table,
    /^021500-aaa111 +05-migrate +default +failed +\d{4}-\d\d-\d\d \d\d:\d\d:\d\d +1m35s +T039 rollback +021800-bbb222$/m,
  );
  t.match(
    table,
    /^ {4}error: T039: tofu apply failed: the API answered 500\n {11}second line of the error$/m,
    'the error whole',
  );
  t.match(table, /^030000-ccc333 .* 5\.2s/m);
});

t.test('audit.mts runs, and --run showing the chained run', async (t) => {
  const log = await night();
  const runs = audit(['runs', '--log', log]);
  t.equal(runs.status, 0, runs.stderr);
  t.equal(runs.stdout.split('\n').filter((l) => /^\d{6}-/.test(l)).length, 4, 'four runs');
  t.match(
    runs.stdout,
    `RUN is what --run takes: ./runbooks/audit.mts --log ${log} --run <RUN>`,
    'the hint reads the same log',
  );
  const tsv = audit(['runs', '--log', log, '--format', 'tsv', '--run', 'aaa111']);
  t.equal(tsv.status, 0, tsv.stderr);
  t.same(
    tsv.stdout
      .trim()
      .split('\n')
      .slice(1)
      .map((l) => l.split('\t')[0]),
    [FAILED, ROLLBACK],
    'the failed run and the rollback chained to it, full ids',
  );
  const list = audit([
    '--log',
    log,
    '--run',
    '021500-aaa111',
    '--format',
    'tsv',
    '--columns',
    'run,event',
  ]);
  t.equal(list.status, 0, list.stderr);
  t.same(
    [
      ...new Set(
        list.stdout
          .trim()
          .split('\n')
          .slice(1)
          .map((l) => l.split('\t')[0]),
      ),
    ],
    [FAILED, ROLLBACK],
    'list --run shows the chained run too',
  );
  const wrong = audit(['runs', '--log', log, '--step', 'T039']);
  t.equal(wrong.status, 2, 'runs has no --step');
});
