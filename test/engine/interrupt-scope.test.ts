// Interrupting a run: at a prompt, before the first step, while a command runs (stopped, cleaned
// up, resumable), and a process that will not die keeping the lock.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import type { Prompter } from '../../lib/engine/confirm.ts';
import { defineRunbook } from '../../lib/engine/runbook.ts';
import { ALL, execute, markerRunbook } from '../helpers/marker-runbook.ts';
import { unasked } from '../helpers/prompter.ts';
import { makeRunbookEnv } from '../helpers/runbook-env.ts';

/** Polls `condition` until it holds; gives up (failing the test) after `timeoutMs`. */
async function until(condition: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

t.test('Ctrl-C at a prompt ends the run as interrupted (130)', async (t) => {
  const sandbox = makeRunbookEnv(t);
  const prompter: Prompter = {
    ...unasked,
    yesNo: async () => {
      throw Object.assign(new Error('force closed'), { name: 'ExitPromptError' });
    },
    typeName: async () => '',
  };
  const out = await execute(markerRunbook(sandbox), sandbox, [], {
    prompter,
    isInteractive: () => true,
  });
  t.equal(out.code, 130);
  t.match(out.entries.at(-1), { event: 'run-end', outcome: 'interrupted' });
});

t.test(
  'interrupting a running step: exit 130, run-end interrupted, cleanup runs, resume works',
  async (t) => {
    const sandbox = makeRunbookEnv(t);
    const controller = new AbortController();
    const pidFile = join(sandbox.dir, 'sleep.pid');
    let cleaned = 0;
    const blocking = markerRunbook(sandbox, {
      cleanup: () => {
        cleaned += 1;
      },
      steps: [
        ...markerRunbook(sandbox).steps.slice(0, 1),
        {
          id: 'T002',
          title: 'Wait for something',
          risk: 'read',
          done: () => existsSync(join(sandbox.dir, 'two')),
          run: async (ctx) => {
            const sleeping = ctx.run(
              ['sh', '-c', 'echo $$ > "$1"; exec sleep 600', 'sh', pidFile],
              { kind: 'read' },
            );
            // Interrupt once the command is really running, as an operator's Ctrl-C would.
            await until(() => existsSync(pidFile) && readFileSync(pidFile, 'utf8').endsWith('\n'));
            controller.abort();
            await sleeping;
          },
        },
      ],
    });
    const out = await execute(blocking, sandbox, [...ALL, '--json'], { signal: controller.signal });
    t.equal(out.code, 130);
    const pid = Number(readFileSync(pidFile, 'utf8'));
    await until(() => !processExists(pid));
    t.pass('the interrupted command was stopped');
    t.equal(cleaned, 1);
    t.match(out.entries.at(-1), { event: 'run-end', outcome: 'interrupted' });
    t.match(
      out.entries.find((e) => e.event === 'step-failed'),
      { step: 'T002', outcome: 'interrupted' },
    );
    t.match(out.stderr, /resume: .*\.\/runbooks\/98-inline\.mts --from T002/);
    t.same(
      out.json?.steps.map((s) => s.status),
      ['ok', 'interrupted'],
    );

    writeFileSync(join(sandbox.dir, 'two'), '');
    const again = await execute(blocking, sandbox, [...ALL, '--json']);
    t.equal(again.code, 0);
    t.same(
      again.json?.steps.map((s) => s.status),
      ['verified-done', 'verified-done'],
    );
  },
);

t.test('an interrupt before the first step still ends the run cleanly', async (t) => {
  const sandbox = makeRunbookEnv(t);
  const controller = new AbortController();
  controller.abort();
  const out = await execute(markerRunbook(sandbox), sandbox, ALL, { signal: controller.signal });
  t.equal(out.code, 130);
  t.match(out.entries.at(-1), { event: 'run-end', outcome: 'interrupted' });
});

t.test('a process that will not die is reported by pid, and the lock is kept for it', async (t) => {
  const sandbox = makeRunbookEnv(t);
  const { spawn } = await import('node:child_process');
  const stubborn = spawn('sleep', ['600'], { stdio: 'ignore' });
  t.teardown(() => stubborn.kill('SIGKILL'));
  const pid = stubborn.pid as number;
  const controller = new AbortController();
  const runbook = defineRunbook({
    id: '98-inline',
    title: 'stubborn',
    steps: [
      {
        id: 'T001',
        title: 'block',
        risk: 'change',
        run: async (ctx) => {
          controller.abort();
          await new Promise((resolve) => ctx.signal.addEventListener('abort', resolve));
        },
      },
    ],
  });
  const out = await execute(runbook, sandbox, ['--yes'], {
    signal: controller.signal,
    stopCommands: async () => [pid],
  });
  t.equal(out.code, 130);
  t.match(
    out.stderr,
    new RegExp(
      `process ${pid} of this run would not die, even after SIGKILL\\. The lock .*run\\.lock is kept`,
    ),
  );
  t.match(out.entries.at(-1), {
    event: 'run-end',
    outcome: 'interrupted',
    detail: { survivors: [pid], lock_kept: /run\.lock$/ },
  });
  const lock = JSON.parse(readFileSync(join(sandbox.dir, 'logs', 'run.lock'), 'utf8'));
  t.equal(lock.pid, pid, 'the lock now names the surviving process');
  const next = await execute(markerRunbook(sandbox), sandbox, ALL);
  t.equal(next.code, 4, 'the next run is locked out while that process lives');
});
