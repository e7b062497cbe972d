// Attempts: notes belong to the attempt that was open when they were written (and to its opening
// run), a resume reads only the open attempt's, and a rollback reads the completed attempt it
// undoes. Issue: a resume read downtime.end from a rolled-back attempt and backdated the record.
import t from 'tap';
import { AuditLog } from '../../lib/audit/audit.ts';
import { loadConfig } from '../../lib/config.ts';
import { attemptsOf } from '../../lib/engine/attempts.ts';
import { readNotes } from '../../lib/engine/notes.ts';
import {
  createStepContext,
  type RunShared,
  type StepContext,
} from '../../lib/engine/step-context.ts';
import { makeRunbookEnv } from '../helpers/runbook-env.ts';

const RUNBOOK = '95-attempts';

/** One run (one process): its contexts share what a run's steps share. */
function runOf(place: ReturnType<typeof makeRunbookEnv>, runId: string, mode = 'default') {
  const cfg = loadConfig({ env: place.env });
  const shared: RunShared = { notes: new Map(), unsentMutations: 0 };
  return (step = 'T001'): StepContext =>
    createStepContext({
      cfg,
      dryRun: false,
      runId,
      runbook: RUNBOOK,
      mode,
      step: { id: step, risk: 'change' },
      flags: {},
      state: {},
      shared,
      signal: new AbortController().signal,
      audit: new AuditLog(place.auditLog, { run_id: runId, runbook: RUNBOOK }),
      print: () => undefined,
      setReport: () => undefined,
    });
}

t.test('a resume never reads a rolled-back attempt’s notes', async (t) => {
  const place = makeRunbookEnv(t);
  // First attempt: opened, downtime ended, then rolled back.
  const first = runOf(place, 'run-1');
  await first('P01').note('replicas', 2);
  await first('T035').attempt.open();
  await first('T040').note('downtime.end', '2026-12-01T02:33:05.000Z');
  await first('P05').attempt.close('completed');
  const rollback = runOf(place, 'run-2', 'rollback');
  t.equal(await rollback('R01').recall('replicas'), 2, 'the rollback reads the attempt it undoes');
  await rollback('R06').attempt.close('rolled-back');

  // Second attempt: opened, killed while T040 waits (no end noted).
  const second = runOf(place, 'run-3');
  t.equal(await second('P01').recall('replicas'), undefined, 'a closed attempt is not read');
  await second('P01').note('replicas', 3);
  await second('T035').attempt.open();
  await second('T035').note('downtime.start', '2026-12-01T02:35:00.000Z');

  // The resume: a new process.
  const resume = runOf(place, 'run-4');
  t.equal(await resume('P05').recall('downtime.end'), undefined, 'no end from the earlier attempt');
  t.equal(await resume('P05').recall('replicas'), 3, 'the opening run’s notes belong to it');
  t.equal(await resume('P05').recall('downtime.start'), '2026-12-01T02:35:00.000Z');
  t.equal((await resume('P05').attempt.current())?.id, 'run-3', 'it continues the open attempt');
  await resume('P05').note('downtime.end', '2026-12-01T02:35:25.000Z');
  await resume('P05').attempt.close('completed');

  const attempts = attemptsOf(await readNotes(place.auditLog), RUNBOOK);
  t.same(
    attempts.map((a) => [a.id, a.outcome, a.runs]),
    [
      ['run-1', 'rolled-back', ['run-1', 'run-2']],
      ['run-3', 'completed', ['run-3', 'run-4']],
    ],
  );
  const ends = (await readNotes(place.auditLog, { key: 'downtime.end' })).map((n) => n.attempt);
  t.same(ends, ['run-1', 'run-3'], 'each end is tagged with its attempt');
});

t.test('opening while an attempt is open continues it', async (t) => {
  const place = makeRunbookEnv(t);
  const a = await runOf(place, 'run-1')('T035').attempt.open();
  const b = await runOf(place, 'run-2')('T035').attempt.open();
  t.equal(b.id, a.id);
  t.equal(attemptsOf(await readNotes(place.auditLog), RUNBOOK).length, 1);
});

t.test('a runbook that never opens an attempt reads all its notes, as before', async (t) => {
  const place = makeRunbookEnv(t);
  await runOf(place, 'run-1')().note('probe', 'ok');
  t.equal(await runOf(place, 'run-2')().recall('probe'), 'ok');
});
