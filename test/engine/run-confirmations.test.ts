// Each step's question on a terminal and its audited answer, the sequences one answer confirms
// (confirmCovers), and the time spent at a prompt kept apart from the work.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import type { Prompter } from '../../lib/engine/confirm.ts';
import { defineRunbook, type Runbook, type StepDefinition } from '../../lib/engine/runbook.ts';
import { execute, markerRunbook } from '../helpers/marker-runbook.ts';
import { unasked } from '../helpers/prompter.ts';
import { makeRunbookEnv, type RunbookEnv } from '../helpers/runbook-env.ts';

t.test('on a terminal the injected prompt answers, and its answers are audited', async (t) => {
  const sandbox = makeRunbookEnv(t);
  const prompter: Prompter = {
    ...unasked,
    yesNo: async () => true,
    typeName: async () => 'old-redis',
  };
  const out = await execute(markerRunbook(sandbox), sandbox, [], {
    prompter,
    isInteractive: () => true,
  });
  t.equal(out.code, 0, out.stderr);
  t.same(
    out.entries
      .filter((e) => e.event === 'confirm')
      .map((e) => (e.detail as { method: string }).method),
    ['prompt', 'prompt', 'prompt'],
  );
  t.match(
    out.entries.find((e) => e.step === 'T003' && e.event === 'confirm'),
    {
      detail: { name: 'old-redis' },
    },
  );
});

/** Says yes to every question, recording each, and types the irreversible step's name. */
function agreeingTo(questions: string[]): Prompter {
  return {
    ...unasked,
    yesNo: async (message) => {
      questions.push(message);
      return true;
    },
    typeName: async () => 'old-redis',
  };
}

/** T001 (change) confirms T001–T002 at once; T003 stays on its own. */
function coveringRunbook(sandbox: RunbookEnv): Runbook {
  const base = markerRunbook(sandbox);
  const [one, two, three] = base.steps as [StepDefinition, StepDefinition, StepDefinition];
  return defineRunbook({
    id: '98-inline',
    title: 'Inline markers',
    steps: [
      { ...one, confirmCovers: 'T002', coverText: 'two markers appear together' },
      two,
      three,
    ],
  });
}

t.test(
  'a sequence confirmation: asked once, the covered step runs without asking and is audited as covered',
  async (t) => {
    const sandbox = makeRunbookEnv(t);
    const questions: string[] = [];
    const prompter = agreeingTo(questions);
    const out = await execute(coveringRunbook(sandbox), sandbox, [], {
      prompter,
      isInteractive: () => true,
    });
    t.equal(out.code, 0, out.stderr);
    t.equal(questions.length, 1, 'one yes/no question for T001 and T002');
    t.match(
      questions[0],
      /^T001 Create one\. T001–T002 run without further questions; two markers appear together\. Run them\?$/,
    );
    const confirms = out.entries.filter((e) => e.event === 'confirm');
    t.match(confirms, [
      { step: 'T001', outcome: 'confirmed', detail: { method: 'prompt', covers: ['T002'] } },
      {
        step: 'T002',
        outcome: 'confirmed',
        detail: { method: 'covered', covered_by: 'T001', answer: 'prompt' },
      },
      { step: 'T003', outcome: 'confirmed', detail: { method: 'prompt' } },
    ]);
  },
);

t.test('a declined sequence changes nothing', async (t) => {
  const sandbox = makeRunbookEnv(t);
  const prompter: Prompter = { ...unasked, yesNo: async () => false, typeName: async () => '' };
  const out = await execute(coveringRunbook(sandbox), sandbox, [], {
    prompter,
    isInteractive: () => true,
  });
  t.equal(out.code, 2);
  for (const name of ['one', 'two', 'three']) t.notOk(existsSync(join(sandbox.dir, name)));
  t.notOk(out.entries.some((e) => e.event === 'command'));
});

t.test('a resume at the last step of a sequence asks for that step on its own', async (t) => {
  const sandbox = makeRunbookEnv(t);
  const questions: string[] = [];
  const prompter = agreeingTo(questions);
  const out = await execute(coveringRunbook(sandbox), sandbox, ['--from', 'T002'], {
    prompter,
    isInteractive: () => true,
  });
  t.equal(out.code, 0, out.stderr);
  t.match(questions, [/^T002 Create two: high risk/]);
});

t.test('the time spent at a prompt is reported apart from the work', async (t) => {
  const sandbox = makeRunbookEnv(t);
  const ANSWER_AFTER_MS = 1_500;
  const prompter: Prompter = {
    ...unasked,
    yesNo: () => new Promise((resolve) => setTimeout(() => resolve(true), ANSWER_AFTER_MS)),
    typeName: async () => 'old-redis',
  };
  const out = await execute(markerRunbook(sandbox), sandbox, ['--only', 'T001', '--json'], {
    prompter,
    isInteractive: () => true,
  });
  t.equal(out.code, 0, out.stderr);
  const step = out.json?.steps[0];
  t.ok((step?.waited_ms ?? 0) >= ANSWER_AFTER_MS, 'the wait is measured');
  t.ok((step?.duration_ms ?? Infinity) < ANSWER_AFTER_MS, 'the work time leaves the wait out');
  t.match(out.stderr, /✔ T001 {2}Create one {2}ok {2}\d+ms \(waited 1\.\ds for you\)/);
  const ok = out.entries.find((e) => e.event === 'step-ok');
  t.equal(ok?.duration_ms, step?.duration_ms);
  t.ok(((ok?.detail as { waited_ms?: number } | undefined)?.waited_ms ?? 0) >= ANSWER_AFTER_MS);
  t.ok(
    ((out.entries.find((e) => e.event === 'confirm')?.detail as { waited_ms?: number } | undefined)
      ?.waited_ms ?? 0) >= ANSWER_AFTER_MS,
  );
});

t.test('an impact given as a function names what the steps before it found', async (t) => {
  const sandbox = makeRunbookEnv(t);
  const asked: string[] = [];
  const prompter: Prompter = {
    ...unasked,
    typeName: async (message) => {
      asked.push(message);
      return 'old-redis';
    },
  };
  const runbook = defineRunbook({
    id: '95-impact',
    title: 'impact',
    steps: [
      {
        id: 'T001',
        title: 'count',
        risk: 'read',
        run: (ctx) => {
          ctx.state.count = 37;
        },
      },
      {
        id: 'T002',
        title: 'replace',
        risk: 'irreversible',
        confirmName: 'old-redis',
        impact: (ctx) => `all ${String(ctx.state.count)} keys are replaced`,
        run: () => undefined,
        undo: 'none',
      },
    ],
  });
  const out = await execute(runbook, sandbox, [], { prompter, isInteractive: () => true });
  t.equal(out.code, 0, out.stderr);
  t.match(asked, [/T002 replace cannot be undone\. all 37 keys are replaced\./]);
});
