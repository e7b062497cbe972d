// What the engine asks when a step fails where stopping leaves things worse than they were:
// inside a sequence confirmed once, or at or after the runbook's rollback point.
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import type { Choice, Prompter } from '../../lib/engine/confirm.ts';
import { failureChoices, failureQuestion } from '../../lib/engine/failure-choice.ts';
import { defineRunbook, type Runbook, type StepContext } from '../../lib/engine/runbook.ts';
import { events, execute } from '../helpers/marker-runbook.ts';
import { unasked } from '../helpers/prompter.ts';
import { makeRunbookEnv, type RunbookEnv } from '../helpers/runbook-env.ts';

/**
 * T001 prepares, T002's one answer covers T002–T004 (the "downtime"), T005 checks. Each step
 * that changes leaves a marker (and is done when it is there). `failures` says how many times a
 * step fails before it works; R01–R02 undo the markers.
 */
function windowRunbook(
  sandbox: RunbookEnv,
  failures: Record<string, number>,
  withRollback: boolean,
): Runbook {
  const marker = (name: string) => join(sandbox.dir, name);
  const left = { ...failures };
  const step = (id: string, risk: 'read' | 'change' | 'high') => ({
    id,
    title: `Step ${id}`,
    risk,
    ...(risk === 'read'
      ? {}
      : {
          // `<id>.done` in failures: the step's check itself fails that many times
          done: () => {
            if ((left[`${id}.done`] ?? 0) > 0) {
              left[`${id}.done`] = (left[`${id}.done`] ?? 0) - 1;
              throw new Error(`${id}'s check failed on purpose`);
            }
            return existsSync(marker(id));
          },
        }),
    run: async (ctx: StepContext) => {
      if ((left[id] ?? 0) > 0) {
        left[id] = (left[id] ?? 0) - 1;
        await ctx.run(['sh', '-c', `echo "${id} failed on purpose" >&2; exit 4`], {
          kind: 'read',
          retries: 0,
        });
      }
      if (risk !== 'read') await ctx.run(['touch', marker(id)], { kind: 'mutation' });
    },
  });
  const undo = (id: string) => ({
    id,
    title: `Undo ${id}`,
    risk: 'change' as const,
    run: async (ctx: StepContext) => {
      await ctx.run(['rm', '-f', marker('T002'), marker('T003'), marker('T004')], {
        kind: 'mutation',
      });
    },
  });
  return defineRunbook({
    id: '98-inline',
    title: 'A window',
    steps: [
      step('T001', 'change'),
      { ...step('T002', 'high'), confirmCovers: 'T004', coverText: 'the service is down' },
      step('T003', 'change'),
      step('T004', 'change'),
      step('T005', 'read'),
    ],
    ...(withRollback
      ? {
          rollback: { mode: 'rollback', from: 'T002', stopLeaves: 'the service stays down' },
          standing: () => 'the service is DOWN (0/1 Ready)',
          modes: {
            rollback: {
              title: 'Put things back',
              steps: [{ ...undo('R01'), confirmCovers: 'R02' }, undo('R02')],
            },
          },
        }
      : {}),
  });
}

/** Answers yes to every yes/no, gives `choice` at the what-now question, and remembers both. */
function operator(choice: string | Error) {
  const questions: string[] = [];
  const offered: Choice<string>[][] = [];
  const prompter: Prompter = {
    ...unasked,
    yesNo: async (message) => {
      questions.push(message);
      return true;
    },
    choose: async (message, choices) => {
      questions.push(message);
      offered.push([...choices]);
      if (choice instanceof Error) throw choice;
      return choice as never;
    },
  };
  return { prompter, questions, offered };
}

/** The window runbook run once on a terminal by an operator who answers `choice`. */
async function runWindow(
  t: Test,
  choice: string | Error,
  failures: Record<string, number>,
  options: { rollback?: boolean; argv?: string[]; interactive?: boolean; made?: string[] } = {},
) {
  const sandbox = makeRunbookEnv(t);
  for (const id of options.made ?? []) writeFileSync(join(sandbox.dir, id), '');
  const op = operator(choice);
  const runbook = windowRunbook(sandbox, failures, options.rollback ?? true);
  const out = await execute(runbook, sandbox, options.argv ?? [], {
    prompter: op.prompter,
    isInteractive: () => options.interactive ?? true,
  });
  return { sandbox, op, out };
}

t.test(
  'a step failing inside the confirmed sequence asks what now; retry runs it again without asking again',
  async (t) => {
    const { sandbox, op, out } = await runWindow(t, 'retry', { T003: 1 }, { rollback: false });
    t.equal(out.code, 0, out.stderr);
    t.match(op.questions, [
      /^T001 Step T001: run it\?$/,
      /^T002 Step T002: high risk\. T002–T004 run without further questions; the service is down\./,
      /^T003 Step T003 failed \(the error is above\)\. What now\?$/,
    ]);
    t.equal(op.questions.length, 3, 'the retry itself asks nothing');
    t.same(
      op.offered[0]?.map((c) => c.value),
      ['retry', 'stop'],
      'no rollback is offered by a runbook without one',
    );
    t.ok(existsSync(join(sandbox.dir, 'T003')), 'the retried step did its work');
    const choice = out.entries.find(
      (e) => e.event === 'confirm' && e.step === 'T003' && e.outcome === 'retry',
    );
    t.match(choice, {
      outcome: 'retry',
      detail: { method: 'prompt', after_failure: /T003 failed on purpose/ },
    });
    t.type((choice?.detail as { waited_ms?: unknown } | undefined)?.waited_ms, 'number');
    t.match(
      out.entries.find((e) => e.event === 'step-ok' && e.step === 'T003'),
      { detail: { attempt: 2 } },
    );
    t.notOk(
      out.entries.some((e) => e.event === 'step-failed'),
      'a failure the retry mended is not the run failing',
    );
  },
);

t.test('stop ends the run as the failure it is, with the resume line', async (t) => {
  const { sandbox, op, out } = await runWindow(t, 'stop', { T003: 1 });
  t.equal(out.code, 1);
  t.same(
    op.offered[0]?.map((c) => c.value),
    ['retry', 'rollback', 'stop'],
  );
  t.match(out.stderr, /resume: .*\.\/runbooks\/98-inline\.mts --from T003/);
  t.notMatch(out.stderr, /rolling back now/);
  t.match(
    op.offered[0]?.find((c) => c.value === 'stop')?.description,
    /^end the run here; the service stays down; later: /,
    'the Stop choice says what stopping leaves behind',
  );
  const last = out.stderr.trimEnd().split('\n').slice(-3);
  t.match(
    last,
    [
      /^the service is DOWN \(0\/1 Ready\)$/,
      /^ {2}roll back: .*\.\/runbooks\/98-inline\.mts --rollback$/,
      /^ {2}resume: {4}.*\.\/runbooks\/98-inline\.mts --from T003$/,
    ],
    'the screen ends with where the system stands, then the lines back and on',
  );
  t.equal(out.stderr.match(/error: command failed/g)?.length, 1, 'the error is shown once');
  t.ok(
    out.entries.some((e) => e.event === 'confirm' && e.step === 'T003' && e.outcome === 'stop'),
    'the choice is audited',
  );
  t.match(out.entries.at(-1), { event: 'run-end', outcome: 'failed' });
  t.ok(existsSync(join(sandbox.dir, 'T002')), 'nothing was undone');
});

t.test(
  'roll back now runs the rollback mode at once, its questions answered by that choice',
  async (t) => {
    const { sandbox, op, out } = await runWindow(t, 'rollback', { T003: 99 }, { argv: ['--json'] });
    t.equal(out.code, 1, 'the change was not made: still a failure');
    t.equal(
      op.questions.length,
      3,
      'T001, the T002–T003 sequence, and what now; the rollback asks nothing',
    );
    t.notOk(existsSync(join(sandbox.dir, 'T002')), 'the rollback undid T002');
    t.match(out.stderr, /rolling back now: .*\.\/runbooks\/98-inline\.mts --rollback/);
    t.match(out.stderr, /T003 failed and the rollback completed; the change was not made/);
    t.notMatch(
      out.stderr,
      /the service is DOWN/,
      'a completed rollback leaves nothing down to report',
    );

    const runs = [...new Set(out.entries.map((e) => e.run_id))];
    t.equal(runs.length, 2, 'two runs: the failed one and its rollback');
    const [failed, rollback] = runs;
    t.match(
      out.entries
        .filter((e) => e.run_id === failed)
        .map((e) => `${e.event} ${e.step} ${e.outcome}`),
      ['run-start null null', /./],
    );
    t.match(events(out.entries.filter((e) => e.run_id === failed)).slice(-3), [
      'confirm T003 rollback',
      'step-failed T003 failed',
      'run-end failed',
    ]);
    const confirms = out.entries.filter((e) => e.run_id === rollback && e.event === 'confirm');
    t.match(confirms, [
      {
        step: 'R01',
        outcome: 'confirmed',
        detail: { method: 'rollback-chosen', failed_run: failed, failed_step: 'T003' },
      },
      { step: 'R02', outcome: 'confirmed', detail: { method: 'covered', covered_by: 'R01' } },
    ]);
    t.match(
      out.entries.find((e) => e.run_id === rollback && e.event === 'run-start'),
      { detail: { mode: 'rollback' } },
    );
    t.equal(out.stdout.trim().split('\n').length, 1, 'stdout stays one JSON object');
    t.match(out.json, {
      run_id: rollback,
      mode: 'rollback',
      outcome: 'ok',
      rolled_back_run: { run_id: failed, mode: 'default', outcome: 'failed' },
    });
  },
);

t.test(
  'a sequence whose first step is already done asks once, at its next step that asks, for the rest',
  async (t) => {
    const { op, out } = await runWindow(t, 'retry', {}, { made: ['T001', 'T002'] });
    t.equal(out.code, 0, out.stderr);
    t.same(op.questions, [
      'T003 Step T003. T003–T004 run without further questions; the service is down. Run them?',
    ]);
    t.match(
      out.entries.filter((e) => e.event === 'confirm'),
      [
        { step: 'T003', detail: { method: 'prompt', covers: ['T004'] } },
        { step: 'T004', detail: { method: 'covered', covered_by: 'T003' } },
      ],
    );
  },
);

t.test(
  'a step whose check fails before it was confirmed offers neither a retry without asking nor a rollback of what never ran',
  async (t) => {
    const { op, out } = await runWindow(t, 'rollback', { 'T002.done': 1 });
    t.equal(out.code, 1);
    t.same(op.offered, [], 'nothing was offered: nothing past the rollback point has run');
    t.notOk(
      out.entries.some((e) => e.step === 'T002' && e.event === 'confirm'),
      'T002 was never confirmed, and never run',
    );
    t.notOk(
      out.entries.some((e) => e.step?.startsWith('R')),
      'no rollback step ran',
    );
  },
);

t.test(
  'a retry of a covered step whose check failed still runs under the sequence answer',
  async (t) => {
    const { op, out } = await runWindow(t, 'retry', { 'T003.done': 1 });
    t.equal(out.code, 0, out.stderr);
    t.equal(op.offered.length, 1, 'asked once, after the check failed');
    t.match(
      out.entries.filter((e) => e.step === 'T003' && e.event === 'confirm'),
      [
        { outcome: 'retry' },
        { outcome: 'confirmed', detail: { method: 'covered', covered_by: 'T002' } },
      ],
      'the retried step is confirmed by the sequence, not run unasked',
    );
  },
);

t.test('a failure before the rollback point and outside a sequence asks nothing', async (t) => {
  const { op, out } = await runWindow(t, 'retry', { T001: 1 });
  t.equal(out.code, 1);
  t.equal(op.offered.length, 0);
  t.match(out.stderr, /T001 failed on purpose/);
  t.match(out.stderr, /resume: .*--from T001/);
});

t.test('past the rollback point, a read step failing offers the rollback too', async (t) => {
  const { op, out } = await runWindow(t, 'stop', { T005: 1 });
  t.equal(out.code, 1);
  t.same(
    op.offered[0]?.map((c) => c.value),
    ['retry', 'rollback', 'stop'],
  );
});

t.test('without a terminal, or with --yes, a failure in the sequence asks nothing', async (t) => {
  for (const [label, argv, interactive] of [
    ['no terminal', ['--yes'], false],
    ['--yes on a terminal', ['--yes'], true],
  ] as const) {
    const { op, out } = await runWindow(t, 'retry', { T003: 1 }, { argv: [...argv], interactive });
    t.equal(out.code, 1, label);
    t.equal(op.offered.length, 0, `${label}: nothing asked`);
    t.match(out.stderr, /resume: .*--from T003/, label);
  }
});

t.test('Ctrl-C at the what-now question ends the run as interrupted', async (t) => {
  const { sandbox, out } = await runWindow(
    t,
    Object.assign(new Error('force closed'), { name: 'ExitPromptError' }),
    { T003: 1 },
  );
  t.equal(out.code, 130);
  t.match(out.entries.at(-1), { event: 'run-end', outcome: 'interrupted' });
  t.match(
    out.entries.find(
      (e) => e.step === 'T003' && e.event === 'confirm' && e.outcome === 'interrupted',
    ),
    { detail: { after_failure: /T003 failed on purpose/ } },
    "the step's own error stays in the audit",
  );
  t.ok(existsSync(join(sandbox.dir, 'T002')), 'nothing was rolled back');
});

t.test('the question names the step and the error; each choice says what it does', async (t) => {
  const q = {
    stepId: 'T039',
    title: 'Apply',
    resume: './runbooks/05-migrate.mts --from T039',
    rollback: { command: './runbooks/05-migrate.mts --rollback', title: 'Put it back' },
  };
  t.equal(failureQuestion(q), 'T039 Apply failed (the error is above). What now?');
  const choices = failureChoices(q);
  t.same(
    choices.map((c) => c.name),
    ['Retry T039', 'Roll back now', 'Stop'],
  );
  t.match(
    choices[1]?.description,
    /Put it back: runs \.\/runbooks\/05-migrate\.mts --rollback now/,
  );
  t.match(
    choices[2]?.description,
    /later: \.\/runbooks\/05-migrate\.mts --from T039 or \.\/runbooks\/05-migrate\.mts --rollback/,
  );
  const { rollback: _, ...withoutRollback } = q;
  t.same(
    failureChoices(withoutRollback).map((c) => c.value),
    ['retry', 'stop'],
  );
});

t.test(
  'a runbook whose rollback names a missing mode or step is refused when it loads',
  async (t) => {
    t.throws(
      () =>
        defineRunbook({
          id: '98-inline',
          title: 'x',
          steps: [{ id: 'T001', title: 'a', risk: 'read', run: () => undefined }],
          rollback: { mode: 'back', from: 'T009' },
        }),
      /rollback names mode back, which the runbook does not have[\s\S]*rollback\.from T009 is not a step/,
    );
  },
);

t.test(
  'a declined confirmation says to re-run the runbook as before, not --from: its checks come first again',
  async (t) => {
    const sandbox = makeRunbookEnv(t);
    const runbook = windowRunbook(sandbox, {}, true);
    const out = await execute(runbook, sandbox, [], {
      prompter: { ...unasked, yesNo: async (message) => !message.startsWith('T002') },
      isInteractive: () => true,
    });
    t.equal(out.code, 2);
    t.match(out.stderr, /T002 not confirmed; .*re-run the runbook as before/);
    t.match(out.stderr, /^ {2}re-run: .*\.\/runbooks\/98-inline\.mts$/m);
    t.notMatch(out.stderr, /--from T002/, 'no line skips the checks before the step');
  },
);
