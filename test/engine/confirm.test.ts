import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { readAuditEntries } from '../../lib/audit/audit.ts';
import {
  ConfirmationRefused,
  type ConfirmFlags,
  type ConfirmRequest,
  confirmStep,
  isInteractiveTerminal,
  type Prompter,
  refusalWithoutTerminal,
} from '../../lib/engine/confirm.ts';
import { unasked } from '../helpers/prompter.ts';
import { LOADER, REPO, withoutCoverage } from '../helpers/run-cli.ts';
import { makeRunbookEnv, type RunbookEnv } from '../helpers/runbook-env.ts';

const NO_FLAGS: ConfirmFlags = { yes: false, confirmNames: [], dryRun: false };
const tty = { isInteractive: () => true };
const noTty = { isInteractive: () => false };

const change: ConfirmRequest = { stepId: 'T010', title: 'Apply the module', risk: 'change' };
const high: ConfirmRequest = {
  stepId: 'T035',
  title: 'Scale beersystem to 0',
  risk: 'high',
  impact: 'downtime starts for beersystem',
};
const irreversible: ConfirmRequest = {
  stepId: 'T044',
  title: 'Delete the old Redis',
  risk: 'irreversible',
  impact: 'its data is gone',
  resourceName: 'redis',
};

/** Answers with the given values and remembers what it was asked. */
function scripted(answers: { yesNo?: boolean; typed?: string }) {
  const asked: string[] = [];
  const prompter: Prompter = {
    ...unasked,
    async yesNo(message) {
      asked.push(message);
      if (answers.yesNo === undefined) throw new Error(`unexpected yes/no: ${message}`);
      return answers.yesNo;
    },
    async typeName(message) {
      asked.push(message);
      if (answers.typed === undefined) throw new Error(`unexpected name prompt: ${message}`);
      return answers.typed;
    },
  };
  return { prompter, asked };
}

const never = scripted({}).prompter;

async function refusal(promise: Promise<unknown>): Promise<ConfirmationRefused> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(err instanceof ConfirmationRefused)) throw new Error(`expected a refusal, got ${err}`);
  return err;
}

t.test('a read step never asks, even without a terminal', async (t) => {
  const read: ConfirmRequest = { stepId: 'P01', title: 'Check', risk: 'read' };
  t.same(await confirmStep(read, NO_FLAGS, { prompter: never, ...noTty }), {
    method: 'not-needed',
  });
});

t.test('a dry run asks nothing, whatever the risk', async (t) => {
  const flags = { ...NO_FLAGS, dryRun: true };
  for (const request of [change, high, irreversible]) {
    t.same(await confirmStep(request, flags, { prompter: never, ...noTty }), {
      method: 'dry-run',
    });
  }
});

t.test('on a terminal a change step asks yes/no and goes ahead on yes', async (t) => {
  const { prompter, asked } = scripted({ yesNo: true });
  t.same(await confirmStep(change, NO_FLAGS, { prompter, ...tty }), { method: 'prompt' });
  t.same(asked, ['T010 Apply the module: run it?']);
});

t.test('an impact of several lines (a plan) is asked on its own lines, as printed', async (t) => {
  const { prompter, asked } = scripted({ yesNo: true });
  const plan =
    'tofu apply makes these changes in the cluster:\n    create  namespace redis  module.x\n    update  Helm release     module.y';
  await confirmStep({ ...high, impact: plan }, NO_FLAGS, { prompter, ...tty });
  t.equal(
    asked[0],
    `T035 Scale beersystem to 0: high risk.\n${plan}\nRun it?`,
    'the list, then the question',
  );
});

t.test(
  'on a terminal a high step names its impact, and no refuses with exit-2 error',
  async (t) => {
    const { prompter, asked } = scripted({ yesNo: false });
    const err = await refusal(confirmStep(high, NO_FLAGS, { prompter, ...tty }));
    t.match(asked[0], /high risk \(downtime starts for beersystem\)/);
    t.match(
      err.message,
      /^T035 not confirmed; nothing was changed by this step\. To go ahead later, re-run the runbook as before \(its checks and backup run again first; what is done is not repeated\)$/,
    );
    t.notOk(err.interrupted);
  },
);

t.test('without a terminal and without --yes, a change step is refused in one line', async (t) => {
  for (const request of [change, high]) {
    const err = await refusal(confirmStep(request, NO_FLAGS, { prompter: never, ...noTty }));
    t.match(err.message, /no terminal to ask on: re-run with --yes$/);
    t.notMatch(err.message, /\n/);
  }
});

t.test('--yes answers change and high steps without asking', async (t) => {
  const flags = { ...NO_FLAGS, yes: true };
  t.same(await confirmStep(change, flags, { prompter: never, ...noTty }), { method: 'yes-flag' });
  t.same(await confirmStep(high, flags, { prompter: never, ...tty }), { method: 'yes-flag' });
});

t.test('irreversible: --yes alone is refused without a terminal', async (t) => {
  const err = await refusal(
    confirmStep(irreversible, { ...NO_FLAGS, yes: true }, { prompter: never, ...noTty }),
  );
  t.equal(
    err.message,
    '--yes alone does not confirm irreversible step T044: re-run with --yes --confirm redis',
  );
});

t.test(
  'irreversible: no terminal and no --yes says to re-run with --yes --confirm <name>',
  async (t) => {
    const err = await refusal(confirmStep(irreversible, NO_FLAGS, { prompter: never, ...noTty }));
    t.match(err.message, /no terminal to confirm on: re-run with --yes --confirm redis$/);
  },
);

t.test('irreversible: --yes --confirm with the resource name passes', async (t) => {
  const flags = { ...NO_FLAGS, yes: true, confirmNames: ['other', 'redis'] };
  t.same(await confirmStep(irreversible, flags, { prompter: never, ...noTty }), {
    method: 'confirm-flag',
  });
});

t.test('irreversible: --confirm with another name is refused', async (t) => {
  const flags = { ...NO_FLAGS, yes: true, confirmNames: ['redis-shared'] };
  const err = await refusal(confirmStep(irreversible, flags, { prompter: never, ...tty }));
  t.match(
    err.message,
    /--confirm redis-shared does not name T044's resource: re-run with --yes --confirm redis/,
  );
});

t.test('irreversible: --confirm without --yes does not pass by itself', async (t) => {
  const flags = { ...NO_FLAGS, confirmNames: ['redis'] };
  const err = await refusal(confirmStep(irreversible, flags, { prompter: never, ...noTty }));
  t.match(err.message, /re-run with --yes --confirm redis/);
});

t.test('irreversible on a terminal: typing the name passes, anything else refuses', async (t) => {
  const right = scripted({ typed: ' redis ' });
  t.same(await confirmStep(irreversible, NO_FLAGS, { prompter: right.prompter, ...tty }), {
    method: 'prompt',
  });
  t.match(right.asked[0], /cannot be undone\. its data is gone\. Type "redis" to go ahead/);
  const wrong = scripted({ typed: 'yes' });
  const err = await refusal(
    confirmStep(irreversible, NO_FLAGS, { prompter: wrong.prompter, ...tty }),
  );
  t.match(
    err.message,
    /"yes" is not "redis"; .* re-run the runbook as before \(its checks and backup run again first/,
  );
});

t.test('irreversible on a terminal: --yes alone still asks for the name', async (t) => {
  const { prompter, asked } = scripted({ typed: 'redis' });
  t.same(await confirmStep(irreversible, { ...NO_FLAGS, yes: true }, { prompter, ...tty }), {
    method: 'prompt',
  });
  t.equal(asked.length, 1);
});

t.test('Ctrl-C at the prompt is an interruption, not an answer', async (t) => {
  const prompter: Prompter = {
    ...unasked,
    yesNo: async () => {
      throw Object.assign(new Error('User force closed the prompt with SIGINT'), {
        name: 'ExitPromptError',
      });
    },
    typeName: async () => 'unused',
  };
  const err = await refusal(confirmStep(change, NO_FLAGS, { prompter, ...tty }));
  t.ok(err.interrupted);
  const broken: Prompter = {
    ...unasked,
    yesNo: async () => Promise.reject(new Error('tty gone')),
    typeName: async () => '',
  };
  await t.rejects(confirmStep(change, NO_FLAGS, { prompter: broken, ...tty }), /tty gone/);
});

t.test('an irreversible request without a resource name is a programming error', async (t) => {
  const { resourceName: _, ...nameless } = irreversible;
  await t.rejects(
    confirmStep(nameless, NO_FLAGS, { prompter: never, ...tty }),
    /names no resource/,
  );
});

t.test('a test run has no terminal, so the real check says no', async (t) => {
  t.equal(isInteractiveTerminal(), Boolean(process.stdin.isTTY && process.stderr.isTTY));
  t.equal(isInteractiveTerminal(), false);
});

/** The markers runbook on a real pseudo-terminal: util-linux `script` gives it a terminal on
 * stdin and stderr; the returned `type` is its keyboard. */
function onTerminal(t: Test, sandbox: RunbookEnv, args: string) {
  const script = join(REPO, 'examples/example-runbook.ts');
  const child = spawn(
    'script',
    ['-qfec', `exec '${process.execPath}' --import '${LOADER}' '${script}' ${args}`, '/dev/null'],
    { cwd: REPO, env: withoutCoverage(sandbox.env), stdio: ['pipe', 'pipe', 'pipe'] },
  );
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  const terminal = { screen: '' };
  const waiters: Array<[RegExp, () => void]> = [];
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    terminal.screen += chunk;
    for (const [pattern, resolve] of [...waiters]) if (pattern.test(terminal.screen)) resolve();
  });
  const closed = new Promise<number | null>((resolve) =>
    child.on('close', (code) => resolve(code)),
  );
  const waitFor = (pattern: RegExp) =>
    new Promise<void>((resolve, reject) => {
      if (pattern.test(terminal.screen)) return resolve();
      waiters.push([pattern, resolve]);
      closed.then(() =>
        reject(new Error(`terminal closed before ${pattern}:\n${terminal.screen}`)),
      );
    });
  return { terminal, waitFor, closed, type: (text: string) => child.stdin.write(text) };
}

t.test(
  'a real pseudo-terminal: y at the prompt, then the typed name, run both steps',
  async (t) => {
    const sandbox = makeRunbookEnv(t);
    const term = onTerminal(t, sandbox, '--only T001,T003');
    // T002 is left out, so T001's answer covers nothing: it asks for itself
    await term.waitFor(/run it\?/);
    term.type('y\r');
    await term.waitFor(/Type "old-redis" to go ahead/);
    term.type('old-redis\r');
    const code = await term.closed;
    t.equal(code, 0, term.terminal.screen);
    t.ok(existsSync(join(sandbox.dir, 'one')), 'the confirmed change ran');
    t.ok(
      existsSync(join(sandbox.dir, 'three')),
      'the irreversible step ran after its name was typed',
    );
  },
);

t.test(
  'a real pseudo-terminal: one answer for a sequence runs the covered step without a question',
  async (t) => {
    const sandbox = makeRunbookEnv(t);
    const term = onTerminal(t, sandbox, '--only T001,T002');
    await term.waitFor(/Run them\?/);
    // The operator takes a while to answer: that time is not the step's.
    const ANSWER_AFTER_MS = 1_200;
    await new Promise((resolve) => setTimeout(resolve, ANSWER_AFTER_MS));
    term.type('y\r');
    const code = await term.closed;
    t.equal(code, 0, term.terminal.screen);
    t.ok(existsSync(join(sandbox.dir, 'two')), 'the covered step ran');
    // the prompt library redraws and wraps its line: compare the text without the drawing
    const text = term.terminal.screen
      .replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '')
      .replace(/\r?\n|\r/g, '');
    t.match(
      text,
      /T001 Create marker one\. T001–T002 run without further questions; markers one and two appear together\. Run them\?/,
    );
    t.notMatch(text, /T002 Create marker two: high risk/, 'T002 asked nothing');
    t.match(text, /T001 {2}Create marker one {2}ok {2}\d+m?s \(waited 1\.\ds for you\)/);
    const entries = await readAuditEntries(sandbox.auditLog);
    t.match(
      entries.filter((e) => e.event === 'confirm'),
      [
        { step: 'T001', outcome: 'confirmed', detail: { method: 'prompt', covers: ['T002'] } },
        { step: 'T002', outcome: 'confirmed', detail: { method: 'covered', covered_by: 'T001' } },
      ],
    );
    const one = entries.find((e) => e.event === 'step-ok' && e.step === 'T001');
    t.ok((one?.duration_ms ?? Infinity) < ANSWER_AFTER_MS, 'the work time leaves the wait out');
    t.ok(((one?.detail as { waited_ms?: number } | undefined)?.waited_ms ?? 0) >= ANSWER_AFTER_MS);
  },
);

t.test('a real pseudo-terminal: a declined sequence changes nothing', async (t) => {
  const sandbox = makeRunbookEnv(t);
  const term = onTerminal(t, sandbox, '--only T001,T002');
  await term.waitFor(/Run them\?/);
  term.type('n\r');
  const code = await term.closed;
  t.equal(code, 2, term.terminal.screen);
  t.notOk(existsSync(join(sandbox.dir, 'one')));
  t.notOk(existsSync(join(sandbox.dir, 'two')));
  const entries = await readAuditEntries(sandbox.auditLog);
  t.notOk(
    entries.some((e) => e.event === 'command'),
    'no command was run',
  );
});

t.test('a sequence confirmation says which steps run without further questions', async (t) => {
  const { prompter, asked } = scripted({ yesNo: true, typed: 'redis' });
  await confirmStep(
    {
      ...high,
      covers: { through: 'T040', text: 'beersystem is down from T035 until T040 is Ready' },
    },
    NO_FLAGS,
    { ...tty, prompter },
  );
  t.equal(
    asked[0],
    'T035 Scale beersystem to 0: high risk (downtime starts for beersystem). T035–T040 run without further questions; beersystem is down from T035 until T040 is Ready. Run them?',
  );
  await confirmStep({ ...change, covers: { through: 'T012' } }, NO_FLAGS, { ...tty, prompter });
  t.equal(asked[1], 'T010 Apply the module. T010–T012 run without further questions. Run them?');
  await confirmStep({ ...irreversible, covers: { through: 'T045' } }, NO_FLAGS, {
    ...tty,
    prompter,
  });
  t.match(
    asked[2],
    /cannot be undone\. its data is gone\. T044–T045 run without further questions\. Type "redis"/,
  );
});

t.test('refusalWithoutTerminal decides from the flags alone, before anything runs', async (t) => {
  t.equal(refusalWithoutTerminal(change, { ...NO_FLAGS, yes: true }), undefined);
  t.equal(refusalWithoutTerminal(change, { ...NO_FLAGS, dryRun: true }), undefined);
  t.equal(refusalWithoutTerminal({ ...change, risk: 'read' }, NO_FLAGS), undefined);
  t.match(
    refusalWithoutTerminal(high, NO_FLAGS)?.message,
    /T035 \(high risk\) needs confirmation.*--yes/,
  );
  t.equal(
    refusalWithoutTerminal(irreversible, { ...NO_FLAGS, yes: true, confirmNames: ['redis'] }),
    undefined,
  );
  t.match(
    refusalWithoutTerminal(irreversible, { ...NO_FLAGS, yes: true, confirmNames: ['rdis'] })
      ?.message,
    /--confirm rdis does not name T044's resource/,
  );
  t.match(
    refusalWithoutTerminal(irreversible, { ...NO_FLAGS, yes: true })?.message,
    /--yes alone does not confirm irreversible step T044/,
  );
  t.match(
    refusalWithoutTerminal(irreversible, NO_FLAGS)?.message,
    /T044 is irreversible and there is no terminal/,
  );
});
