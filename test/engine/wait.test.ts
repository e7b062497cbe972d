// ctx.waitFor's helper on its own: its value, its dry-run answer, its timeout, its interrupt and
// its audit lines, with a clock the test moves.
import t from 'tap';
import { KubeError } from '../../lib/cluster/kube-api.ts';
import { CommandError } from '../../lib/engine/shell.ts';
import {
  type WaitEnvironment,
  WaitInterrupted,
  WaitTimeout,
  waitFor,
} from '../../lib/engine/wait.ts';

interface Recorded {
  event: string;
  outcome?: string | null;
  duration_ms?: number | null;
  detail?: unknown;
}

function environment(overrides: Partial<WaitEnvironment> = {}) {
  const audited: Recorded[] = [];
  const printed: string[] = [];
  const shown: string[] = [];
  const env: WaitEnvironment = {
    defaultTimeoutMs: 1_000,
    dryRun: false,
    unsentMutations: () => false,
    signal: new AbortController().signal,
    audit: {
      append: async (input) => {
        audited.push(input);
      },
    },
    print: (line) => printed.push(line),
    showWaiting: (what, _started, detail) => shown.push(`${what}|${detail}`),
    ...overrides,
  };
  return { env, audited, printed, shown };
}

t.test('gives the first truthy value and audits the wait', async (t) => {
  const { env, audited, printed } = environment();
  let calls = 0;
  const value = await waitFor(
    'two pods Ready',
    () => (++calls >= 3 ? { ready: 2 } : undefined),
    { intervalMs: 1 },
    env,
  );
  t.same(value, { ready: 2 });
  t.equal(calls, 3);
  t.match(printed, [/^waiting for two pods Ready \(up to 1\.0s\)$/]);
  t.match(audited, [{ event: 'wait', outcome: 'ok', detail: { what: 'two pods Ready' } }]);
});

t.test('a condition that holds at once is not announced', async (t) => {
  const { env, printed } = environment();
  t.equal(await waitFor('x', () => 'done', {}, env), 'done');
  t.same(printed, []);
});

t.test('a dry run with an unsent mutation says what it would wait for', async (t) => {
  const { env, audited, printed } = environment({ dryRun: true, unsentMutations: () => true });
  let calls = 0;
  const value = await waitFor(
    'pods gone',
    () => {
      calls += 1;
      return false;
    },
    {},
    env,
  );
  t.equal(value, undefined);
  t.equal(calls, 1, 'checked once: the reads still run');
  t.same(printed, ['would wait for pods gone']);
  t.match(audited, [{ outcome: 'not-run' }]);
});

t.test('a dry run without unsent mutations waits like a real run', async (t) => {
  const { env } = environment({ dryRun: true, defaultTimeoutMs: 20 });
  await t.rejects(
    waitFor('never', () => false, { intervalMs: 5 }, env),
    WaitTimeout,
  );
});

t.test('a timeout names what was awaited and the last progress, and is audited', async (t) => {
  let now = 0;
  const { env, audited, printed, shown } = environment({ now: () => now });
  const err = await waitFor(
    'beersystem Ready',
    () => {
      now += 20_000;
      return false;
    },
    { timeoutMs: 90_000, intervalMs: 1, progress: () => '1/2 Ready' },
    env,
  ).catch((e: unknown) => e);
  t.type(err, WaitTimeout);
  t.match(
    (err as Error).message,
    /^timed out after 1m30s waiting for beersystem Ready \(last seen: 1\/2 Ready\)\. .*raise WAIT_TIMEOUT/,
  );
  t.match(printed, [/^waiting for/, /^still waiting for beersystem Ready: 40\.0s, 1\/2 Ready$/]);
  t.ok(printed.some((line) => /still waiting .*1m20s/.test(line)));
  t.match(shown[0], 'beersystem Ready|1/2 Ready');
  t.match(audited.at(-1), {
    outcome: 'timeout',
    duration_ms: 100_000,
    detail: { last: '1/2 Ready' },
  });
});

t.test('an interrupt stops the wait and aborts the signal its check was given', async (t) => {
  const controller = new AbortController();
  const { env, audited } = environment({ signal: controller.signal, defaultTimeoutMs: 60_000 });
  let checkSignal: AbortSignal | undefined;
  const waiting = waitFor(
    'a watch',
    (signal) => {
      checkSignal = signal;
      return new Promise<false>((resolve) => {
        signal.addEventListener('abort', () => resolve(false));
        controller.abort();
      });
    },
    {},
    env,
  );
  await t.rejects(waiting, WaitInterrupted);
  t.ok(checkSignal?.aborted, 'the check was told to close its watch');
  t.match(audited.at(-1), { outcome: 'interrupted' });
});

t.test('an interrupt during the pause between checks ends the wait at once', async (t) => {
  const controller = new AbortController();
  const { env } = environment({ signal: controller.signal, defaultTimeoutMs: 60_000 });
  const started = Date.now();
  setTimeout(() => controller.abort(), 20);
  await t.rejects(
    waitFor('x', () => false, { intervalMs: 30_000 }, env),
    WaitInterrupted,
  );
  t.ok(Date.now() - started < 5_000);
});

t.test('a check that throws fails the wait, audited with the error', async (t) => {
  const { env, audited } = environment();
  await t.rejects(
    waitFor(
      'x',
      () => {
        throw new Error('the API said no');
      },
      {},
      env,
    ),
    /the API said no/,
  );
  t.match(audited.at(-1), { outcome: 'failed', detail: { error: 'the API said no' } });
});

t.test(
  'a check failing as a busy API server fails (503, 429, unreachable, a transient kubectl error) is waited through',
  async (t) => {
    const { env, audited, shown } = environment({ defaultTimeoutMs: 10_000 });
    const failures = [
      new KubeError(
        'GET /apis/apps/v1/x answered 503 ServiceUnavailable: busy',
        503,
        'ServiceUnavailable',
      ),
      new KubeError(
        'GET /apis/apps/v1/x answered 429 TooManyRequests: slow down',
        429,
        'TooManyRequests',
      ),
      new KubeError('GET /apis/apps/v1/x failed: connect ECONNREFUSED', 0, undefined),
      new CommandError(
        'kubectl get: connection refused',
        'kubectl get',
        1,
        '',
        'connection refused',
        1,
        false,
        true,
      ),
    ];
    let calls = 0;
    const value = await waitFor(
      'beersystem Ready',
      () => {
        const failure = failures[calls++];
        if (failure) throw failure;
        return 'ready';
      },
      { intervalMs: 1, progress: () => '0/1 Ready' },
      env,
    );
    t.equal(value, 'ready', 'the wait goes on to its condition');
    t.match(shown, [/0\/1 Ready$/, /0\/1 Ready; the last check failed: GET .* answered 503/]);
    t.match(audited.at(-1), { outcome: 'ok', detail: { failed_checks: 4 } });
  },
);

t.test(
  'checks that keep failing that way end in the timeout, which names the failure',
  async (t) => {
    let now = 0;
    const { env } = environment({ now: () => now });
    const err = await waitFor(
      'beersystem Ready',
      () => {
        now += 20_000;
        throw new KubeError(
          'GET /api/v1/x answered 500 InternalError: etcd is down',
          500,
          'InternalError',
        );
      },
      { timeoutMs: 60_000, intervalMs: 1 },
      env,
    ).catch((e: unknown) => e);
    t.type(err, WaitTimeout);
    t.match((err as Error).message, /\(last seen: the last check failed: GET .*etcd is down\)/);
  },
);

t.test('a 404 or a refusal is not waited through: it fails the wait at once', async (t) => {
  const { env } = environment();
  await t.rejects(
    waitFor(
      'x',
      () => {
        throw new KubeError('GET x answered 403 Forbidden: no', 403, 'Forbidden');
      },
      {},
      env,
    ),
    /403 Forbidden/,
  );
});

/** A check that holds until its signal aborts, as a watch does, then gives up. */
const blocking = (signal: AbortSignal) =>
  new Promise<false>((_resolve, reject) =>
    signal.addEventListener('abort', () => reject(new Error('watch closed'))),
  );

t.test('a check that blocks like a watch is ended by the timeout', async (t) => {
  const { env, audited, printed } = environment({ defaultTimeoutMs: 150 });
  await t.rejects(waitFor('a watch', blocking, {}, env), WaitTimeout);
  t.match(audited.at(-1), { outcome: 'timeout' });
  t.same(printed, [], 'not announced within 2 s');
});

t.test(
  'a dry run looks once through a blocking check, then says what it would wait for',
  async (t) => {
    const { env, printed, audited } = environment({
      dryRun: true,
      unsentMutations: () => true,
      defaultTimeoutMs: 60_000,
    });
    t.equal(await waitFor('pods gone', blocking, {}, env), undefined);
    t.same(printed, ['would wait for pods gone']);
    t.match(audited, [{ outcome: 'not-run' }]);
  },
);
