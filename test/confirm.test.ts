import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import {
  ConfirmationRefused,
  type ConfirmFlags,
  type ConfirmRequest,
  confirmStep,
  isInteractiveTerminal,
  type Prompter,
} from '../lib/confirm.ts';
import { LOADER, REPO, withoutCoverage } from './helpers/run-cli.ts';
import { makeRunbookEnv } from './helpers/runbook-env.ts';

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

t.test(
  'on a terminal a high step names its impact, and no refuses with exit-2 error',
  async (t) => {
    const { prompter, asked } = scripted({ yesNo: false });
    const err = await refusal(confirmStep(high, NO_FLAGS, { prompter, ...tty }));
    t.match(asked[0], /high risk \(downtime starts for beersystem\)/);
    t.match(
      err.message,
      /^T035 not confirmed; nothing was changed by this step\. To go ahead later, re-run with --from T035$/,
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
  t.match(err.message, /"yes" is not "redis"; .* re-run with --from T044$/);
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

t.test(
  'a real pseudo-terminal: y at the prompt, then the typed name, run both steps',
  async (t) => {
    const sandbox = makeRunbookEnv(t);
    const script = join(REPO, 'test/fixtures/runbooks/markers.ts');
    // util-linux `script` gives the runbook a terminal on stdin and stderr; our pipe is its keyboard.
    const child = spawn(
      'script',
      [
        '-qfec',
        `exec '${process.execPath}' --import '${LOADER}' '${script}' --only T001,T003`,
        '/dev/null',
      ],
      { cwd: REPO, env: withoutCoverage(sandbox.env), stdio: ['pipe', 'pipe', 'pipe'] },
    );
    t.teardown(() => {
      if (child.exitCode === null) child.kill('SIGKILL');
    });
    let screen = '';
    const waiters: Array<[RegExp, () => void]> = [];
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      screen += chunk;
      for (const [pattern, resolve] of [...waiters]) if (pattern.test(screen)) resolve();
    });
    const closed = new Promise<number | null>((resolve) =>
      child.on('close', (code) => resolve(code)),
    );
    const waitFor = (pattern: RegExp) =>
      new Promise<void>((resolve, reject) => {
        if (pattern.test(screen)) return resolve();
        waiters.push([pattern, resolve]);
        closed.then(() => reject(new Error(`terminal closed before ${pattern}:\n${screen}`)));
      });

    await waitFor(/run it\?/);
    child.stdin.write('y\r');
    await waitFor(/Type "old-redis" to go ahead/);
    child.stdin.write('old-redis\r');
    const code = await closed;
    t.equal(code, 0, screen);
    t.ok(existsSync(join(sandbox.dir, 'one')), 'the confirmed change ran');
    t.ok(
      existsSync(join(sandbox.dir, 'three')),
      'the irreversible step ran after its name was typed',
    );
  },
);
