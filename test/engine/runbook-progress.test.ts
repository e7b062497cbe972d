import t from 'tap';
import { Progress, type StepOutcome, stepTime } from '../../lib/engine/progress.ts';
import { defineRunbook, executeRunbook } from '../../lib/engine/runbook.ts';
import { clearSecretsForTests, registerSecret } from '../../lib/mask.ts';
import { Capture } from '../helpers/marker-runbook.ts';
import { makeRunbookEnv } from '../helpers/runbook-env.ts';
import { waitUntil } from '../helpers/wait.ts';

class Screen {
  text = '';
  constructor(readonly isTTY: boolean) {}
  write(chunk: string) {
    this.text += chunk;
    return true;
  }
}

const outcomes: StepOutcome[] = [
  { id: 'P01', title: 'Preflight', status: 'verified-done', duration_ms: 12 },
  { id: 'T035', title: 'Scale beersystem to 0', status: 'ok', duration_ms: 65_000 },
  { id: 'T036', title: 'Apply', status: 'failed', duration_ms: 1_500, error: 'boom' },
  { id: 'T044', title: 'Delete old Redis', status: 'not-run', duration_ms: 0 },
  { id: 'T045', title: 'Skipped one', status: 'skipped', duration_ms: 0 },
];

t.test('not a terminal: plain lines, no spinner and no escape codes', async (t) => {
  const screen = new Screen(false);
  const progress = new Progress(screen);
  progress.stepStarted('T035', 'Scale beersystem to 0');
  progress.log('run: kubectl scale');
  progress.stepFinished(outcomes[1] as StepOutcome);
  progress.stepFinished(outcomes[4] as StepOutcome);
  t.equal(
    screen.text,
    'run: kubectl scale\n✔ T035  Scale beersystem to 0  ok  1m5s\n- T045  Skipped one  skipped\n',
  );
  t.notMatch(screen.text, /\x1b/);
});

t.test('on a terminal: a spinner with elapsed time that log lines never tear', async (t) => {
  const screen = new Screen(true);
  const progress = new Progress(screen);
  progress.stepStarted('T035', 'Scale beersystem to 0');
  t.match(screen.text, /⠋ T035 {2}Scale beersystem to 0 {2}\d+ms/);
  await waitUntil('the spinner to show its second frame', () => /⠙/.test(screen.text));
  t.pass('the spinner advanced on its own');
  screen.text = '';
  progress.log('waiting for pods');
  t.match(screen.text, /^\r\x1b\[Kwaiting for pods\n⠙|^\r\x1b\[Kwaiting for pods\n./);
  screen.text = '';
  progress.stepFinished(outcomes[1] as StepOutcome);
  t.match(screen.text, /^\r\x1b\[K✔ T035 {2}Scale beersystem to 0 {2}ok {2}1m5s\n$/);
  progress.stop();
});

t.test('the summary table lines up and says where the audit log is', async (t) => {
  const screen = new Screen(false);
  new Progress(screen).summary('05-migrate', outcomes, {
    outcome: 'failed',
    dryRun: false,
    auditLog: '/repo/logs/audit.jsonl',
    runId: 'r-1',
  });
  t.equal(
    screen.text,
    [
      '',
      '05-migrate: failed',
      'step  status        time  title',
      'P01   already done  12ms  Preflight',
      'T035  ok            1m5s  Scale beersystem to 0',
      'T036  FAILED        1.5s  Apply',
      'T044  not run             Delete old Redis',
      'T045  skipped             Skipped one',
      'audit log: /repo/logs/audit.jsonl (run r-1)',
      '',
    ].join('\n'),
  );
  const dry = new Screen(false);
  new Progress(dry).summary('05-migrate', [], {
    outcome: 'ok',
    dryRun: true,
    auditLog: 'a',
    runId: 'r',
  });
  t.match(dry.text, /05-migrate: ok \(dry run: nothing was changed\)/);
});

t.test('log lines are masked', async (t) => {
  clearSecretsForTests();
  registerSecret('progress-secret');
  const screen = new Screen(false);
  new Progress(screen).log('password progress-secret');
  t.equal(screen.text, 'password ***\n');
  clearSecretsForTests();
});

t.test('a step that waited at a prompt shows its work time and the wait apart', async (t) => {
  const screen = new Screen(false);
  const progress = new Progress(screen);
  const waited: StepOutcome = {
    id: 'T001',
    title: 'Touch',
    status: 'ok',
    duration_ms: 7,
    waited_ms: 3_200,
  };
  progress.stepFinished(waited);
  t.equal(screen.text, '✔ T001  Touch  ok  7ms (waited 3.2s for you)\n');
  t.equal(stepTime({ ...waited, status: 'skipped' }), '');
  t.equal(stepTime({ ...waited, waited_ms: 0 }), '7ms');
  screen.text = '';
  progress.summary('x', [waited], { outcome: 'ok', dryRun: false, auditLog: 'a', runId: 'r' });
  t.match(screen.text, /T001 {2}ok {6}7ms \(waited 3\.2s for you\) {2}Touch/);
});

t.test('a wait shows what is awaited with the elapsed time, on a terminal only', async (t) => {
  const plain = new Screen(false);
  new Progress(plain).waiting('pods gone', Date.now() - 2_000, '1/2 left');
  t.equal(plain.text, '');
  const screen = new Screen(true);
  const progress = new Progress(screen);
  progress.waiting('pods gone', Date.now() - 2_000, '1/2 left');
  t.match(screen.text, /⠋ waiting for pods gone \(1\/2 left\) {2}2\.0s/);
  progress.stop();
});

t.test(
  'a live status line rides beside the spinner, one terminal row, until cleared',
  async (t) => {
    const screen = Object.assign(new Screen(true), { columns: 80 });
    const progress = new Progress(screen);
    progress.setStatus(
      (step) => `downtime 3.0s · step of ${step} · beersystem DOWN (${'x'.repeat(60)})`,
    );
    progress.stepStarted('T040', 'Scale up');
    const frame = screen.text.split('\r\x1b[K').at(-1) ?? '';
    t.match(
      frame,
      /^⠋ T040 {2}Scale up {2}\d+ms {2}· downtime 3\.0s · step of T040 · beersystem DOWN/,
    );
    t.ok(frame.length <= 79, `cut to the terminal's width (${frame.length})`);
    t.match(frame, /…$/);
    progress.setStatus(undefined);
    screen.text = '';
    progress.stepStarted('T041', 'Test');
    t.notMatch(screen.text, /downtime/, 'cleared');
    progress.stop();

    const plain = new Screen(false);
    const lines = new Progress(plain);
    lines.setStatus(() => 'downtime 1s');
    lines.stepStarted('T040', 'Scale up');
    t.equal(plain.text, '', 'without a terminal there is no live line');
  },
);

t.test('on a terminal a wait shows what it waits for, then the step again', async (t) => {
  const sandbox = makeRunbookEnv(t);
  const stderr = new Capture();
  stderr.isTTY = true;
  let checks = 0;
  const runbook = defineRunbook({
    id: '92-wait',
    title: 'wait',
    steps: [
      {
        id: 'P01',
        title: 'Wait a little',
        risk: 'read',
        run: async (ctx) => {
          await ctx.waitFor('the second look', () => ++checks >= 2, {
            intervalMs: 1,
            progress: () => `${checks} looks`,
          });
        },
      },
    ],
  });
  const code = await executeRunbook(runbook, {
    argv: [],
    program: './x.mts',
    stdout: new Capture(),
    stderr,
    isInteractive: () => false,
    env: sandbox.env,
  });
  t.equal(code, 0, stderr.text);
  const shown = stderr.text.indexOf('waiting for the second look (1 looks)');
  t.ok(shown > 0, 'the spinner named the wait and its progress');
  t.match(stderr.text.slice(shown), /⠋ P01 {2}Wait a little/, 'then the step again');
});
