import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { AuditLog, readAuditEntries } from '../../lib/audit/audit.ts';
import {
  backoffDelay,
  CommandError,
  formatCommand,
  isTransientFailure,
  registerSecret,
  runCommand,
  SecretInArgvError,
  shellQuote,
  stopRunningCommands,
  templateArgv,
} from '../../lib/engine/shell.ts';
import { clearSecretsForTests } from '../../lib/mask.ts';

const FAST = { baseMs: 5, maxMs: 20 };

function tempDir(t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'shell-test-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A command that fails `failures` times with `message` on stderr, then succeeds. */
function flakyCommand(dir: string, failures: number, message: string): string[] {
  const counter = join(dir, 'attempts');
  writeFileSync(counter, '0');
  const script = `n=$(cat "$1"); n=$((n+1)); echo "$n" > "$1"; if [ "$n" -le ${failures} ]; then echo "$2" >&2; exit 1; fi; echo ok`;
  return ['sh', '-c', script, 'sh', counter, message];
}

function attemptsMade(dir: string): number {
  return Number(readFileSync(join(dir, 'attempts'), 'utf8').trim());
}

t.beforeEach(() => clearSecretsForTests());

t.test(
  'dry run: a mutation that would create a file leaves no file, prints and audits it',
  async (t) => {
    const dir = tempDir(t);
    const target = join(dir, 'created by mutation');
    const audit = new AuditLog(join(dir, 'audit.jsonl'), { run_id: 'r1', runbook: 'test' });
    const printed: string[] = [];
    const result = await runCommand(['touch', target], {
      kind: 'mutation',
      dryRun: true,
      audit,
      print: (line) => printed.push(line),
    });
    t.notOk(existsSync(target), 'the file was not created');
    t.ok(result.skipped);
    t.equal(result.attempts, 0);
    t.same(printed, [`would run: touch '${target}'`]);
    const entries = await readAuditEntries(join(dir, 'audit.jsonl'));
    t.equal(entries.length, 1);
    t.match(entries[0], {
      event: 'command',
      dry_run: true,
      command: `touch '${target}'`,
      outcome: 'not-run',
    });
  },
);

t.test('dry run: a read still runs and returns its output', async (t) => {
  const printed: string[] = [];
  const result = await runCommand(['sh', '-c', 'echo read-output'], {
    kind: 'read',
    dryRun: true,
    print: (line) => printed.push(line),
  });
  t.equal(result.stdout, 'read-output\n');
  t.notOk(result.skipped);
  t.same(printed, [], 'reads are not echoed');
});

t.test('a real mutation runs, is echoed and audited with its outcome', async (t) => {
  const dir = tempDir(t);
  const target = join(dir, 'made');
  const audit = new AuditLog(join(dir, 'audit.jsonl'));
  const printed: string[] = [];
  const result = await runCommand(['touch', target], {
    kind: 'mutation',
    audit,
    print: (line) => printed.push(line),
  });
  t.ok(existsSync(target));
  t.equal(result.exitCode, 0);
  t.same(printed, [`run: touch ${target}`]);
  const [entry] = await readAuditEntries(join(dir, 'audit.jsonl'));
  t.match(entry, { event: 'command', dry_run: false, outcome: 'ok', detail: { attempts: 1 } });
});

t.test('reads are audited only when asked to, and failures are audited too', async (t) => {
  const dir = tempDir(t);
  const path = join(dir, 'audit.jsonl');
  const audit = new AuditLog(path);
  await runCommand(['true'], { kind: 'read', audit });
  t.equal((await readAuditEntries(path)).length, 0);
  await runCommand(['true'], { kind: 'read', audit, auditReads: true });
  await t.rejects(
    runCommand(['sh', '-c', 'exit 7'], { kind: 'mutation', audit, print: () => undefined }),
  );
  const entries = await readAuditEntries(path);
  t.same(
    entries.map((e) => e.outcome),
    ['ok', 'failed'],
  );
  t.match(entries[1]?.detail, { exit_code: 7 });
});

t.test('registered secrets are masked in printed commands, audit entries and errors', async (t) => {
  const dir = tempDir(t);
  const path = join(dir, 'audit.jsonl');
  registerSecret('s3cret-pass-word');
  const printed: string[] = [];
  const err = await runCommand(['sh', '-c', 'echo "auth failed for $PW" >&2; exit 3'], {
    kind: 'mutation',
    env: { PW: 's3cret-pass-word' },
    audit: new AuditLog(path),
    print: (line) => printed.push(line),
  }).catch((e: unknown) => e);
  t.type(err, CommandError);
  const error = err as CommandError;
  t.match(error.message, /exit code 3/);
  t.match(error.message, /auth failed for \*\*\*/);
  t.notMatch(error.message, /s3cret-pass-word/);
  t.notMatch(error.stderr, /s3cret-pass-word/);
  t.notMatch(error.stack ?? '', /s3cret-pass-word/);
  t.notMatch(readFileSync(path, 'utf8'), /s3cret-pass-word/);
  t.notMatch(printed.join('\n'), /s3cret-pass-word/);
});

t.test('a secret in argv is refused before anything runs, and the refusal is masked', async (t) => {
  const dir = tempDir(t);
  const target = join(dir, 'should-not-exist');
  registerSecret('hunter2-secret');
  const err = await runCommand(['sh', '-c', `touch ${target}`, 'hunter2-secret'], {
    kind: 'read',
  }).catch((e: unknown) => e);
  t.type(err, SecretInArgvError);
  t.notMatch((err as Error).message, /hunter2-secret/);
  t.match((err as Error).message, /\*\*\*/);
  t.notOk(existsSync(target));
});

t.test(
  'secrets reach a command through env and stdin, and its output comes back unmasked',
  async (t) => {
    registerSecret('pipe-secret-value');
    const viaInput = await runCommand(
      ['sh', '-c', 'read -r x; [ "$x" = "$EXPECTED" ] && echo match'],
      {
        kind: 'read',
        input: 'pipe-secret-value\n',
        env: { EXPECTED: 'pipe-secret-value' },
      },
    );
    t.equal(viaInput.stdout, 'match\n');
    const viaEnv = await runCommand(['sh', '-c', 'printf %s "$PW"'], {
      kind: 'read',
      env: { PW: 'pipe-secret-value' },
    });
    t.equal(viaEnv.stdout, 'pipe-secret-value', 'a step that reads a secret gets its value');
  },
);

t.test('a command failing transiently twice is tried a third time and succeeds', async (t) => {
  const dir = tempDir(t);
  const argv = flakyCommand(dir, 2, 'dial tcp 127.0.0.1:6443: connect: connection refused');
  const result = await runCommand(argv, { kind: 'read', backoff: FAST });
  t.equal(result.attempts, 3);
  t.equal(attemptsMade(dir), 3);
  t.equal(result.stdout, 'ok\n');
});

t.test('a kubectl 409 conflict is retried', async (t) => {
  const dir = tempDir(t);
  const argv = flakyCommand(
    dir,
    1,
    'Error from server (Conflict): Operation cannot be fulfilled on deployments.apps "beersystem": the object has been modified; please apply your changes to the latest version and try again',
  );
  const result = await runCommand(argv, {
    kind: 'mutation',
    idempotent: true,
    backoff: FAST,
    print: () => undefined,
  });
  t.equal(result.attempts, 2);
});

t.test(
  'a mutation not declared idempotent is sent once, even after a transient failure',
  async (t) => {
    const dir = tempDir(t);
    const argv = flakyCommand(dir, 1, 'HTTP/1.1 503 Service Unavailable');
    const err = (await runCommand(argv, {
      kind: 'mutation',
      backoff: FAST,
      print: () => undefined,
    }).catch((e) => e)) as CommandError;
    t.type(err, CommandError);
    t.equal(err.attempts, 1);
    t.equal(attemptsMade(dir), 1, 'the command ran exactly once');
    t.ok(err.transient, 'the failure looked transient, and still was not retried');
  },
);

t.test('a non-transient failure is tried once', async (t) => {
  const dir = tempDir(t);
  const argv = flakyCommand(dir, 5, 'Error from server (NotFound): deployments.apps "x" not found');
  const err = (await runCommand(argv, { kind: 'read', backoff: FAST }).catch(
    (e) => e,
  )) as CommandError;
  t.type(err, CommandError);
  t.equal(err.attempts, 1);
  t.equal(attemptsMade(dir), 1);
  t.equal(err.transient, false);
  t.match(err.message, /NotFound/);
});

t.test('retries stop at the cap and the error says how many attempts were made', async (t) => {
  const dir = tempDir(t);
  const argv = flakyCommand(dir, 10, 'HTTP/1.1 503 Service Unavailable');
  const err = (await runCommand(argv, { kind: 'read', retries: 2, backoff: FAST }).catch(
    (e) => e,
  )) as CommandError;
  t.equal(err.attempts, 3);
  t.equal(attemptsMade(dir), 3);
  t.ok(err.transient);
  t.match(err.message, /after 3 attempts/);
});

/** `sh` that records its pid in `pidFile`, runs `prelude`, then becomes `sleep 600`. */
function sleeper(pidFile: string, prelude = ''): string[] {
  return ['sh', '-c', `${prelude}echo $$ > "$1"; exec sleep 600`, 'sh', pidFile];
}

function isRunning(pidFile: string): boolean {
  // Read outside the try: a command that never started must fail the test, not pass it.
  const pid = Number(readFileSync(pidFile, 'utf8').trim());
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

t.test('a command that outlives its timeout is killed and not retried', async (t) => {
  const pidFile = join(tempDir(t), 'pid');
  const err = (await runCommand(sleeper(pidFile, 'echo connection refused >&2; '), {
    kind: 'read',
    // long enough for a loaded machine to start the command before the timeout
    timeoutMs: 2_000,
    backoff: FAST,
  }).catch((e) => e)) as CommandError;
  t.type(err, CommandError);
  t.ok(err.timedOut);
  t.equal(err.attempts, 1, 'the transient-looking output did not make a timeout retried');
  t.match(err.message, /timed out after 2000 ms/);
  t.notOk(isRunning(pidFile), 'the command is no longer running');
});

t.test('a command that ignores SIGTERM is killed once the grace period is over', async (t) => {
  const pidFile = join(tempDir(t), 'pid');
  const err = (await runCommand(sleeper(pidFile, 'trap "" TERM; '), {
    kind: 'read',
    // long enough for a loaded machine to set the trap before the timeout
    timeoutMs: 2_000,
    killGraceMs: 200,
  }).catch((e) => e)) as CommandError;
  t.type(err, CommandError);
  t.ok(err.timedOut);
  t.match(err.message, /timed out after 2000 ms/);
  t.notOk(isRunning(pidFile), 'SIGKILL ended what SIGTERM could not');
});

t.test('aborting the signal stops a running command', async (t) => {
  const controller = new AbortController();
  const running = runCommand(['sleep', '30'], { kind: 'read', signal: controller.signal });
  setTimeout(() => controller.abort(), 100);
  const err = (await running.catch((e) => e)) as CommandError;
  t.match(err.message, /interrupted/);
  const again = (await runCommand(['true'], { kind: 'read', signal: controller.signal }).catch(
    (e) => e,
  )) as CommandError;
  t.match(again.message, /interrupted/, 'an already aborted run starts nothing');
});

t.test('transient failures are told apart from the rest', async (t) => {
  const transient = [
    'The connection to the server 10.0.0.1:6443 was refused - connection refused',
    'read tcp 10.0.0.2:5555->10.0.0.1:6443: read: connection reset by peer',
    'Error from server (InternalError): an error on the server ("") has prevented the request',
    'Error from server (ServiceUnavailable): the server is currently unable to handle the request',
    'curl: (22) The requested URL returned error: 502',
    'unexpected status code: 500',
    'Error: ECONNREFUSED 127.0.0.1:9090',
    '409 Conflict',
  ];
  for (const text of transient) t.ok(isTransientFailure(text), text);
  const permanent = [
    'Error from server (NotFound): pods "x" not found',
    'Error from server (Forbidden): secrets is forbidden',
    'error: unknown flag: --replica',
    'listening on port 5000',
    'HTTP/1.1 404 Not Found',
  ];
  for (const text of permanent) t.notOk(isTransientFailure(text), text);
});

t.test('commands are shown shell-quoted so they can be pasted back', async (t) => {
  t.equal(shellQuote('plain-word_1.2/x:y=z'), 'plain-word_1.2/x:y=z');
  t.equal(shellQuote(''), "''");
  t.equal(shellQuote('two words'), "'two words'");
  t.equal(shellQuote("it's"), `'it'\\''s'`);
  t.equal(shellQuote('$(rm -rf /)'), "'$(rm -rf /)'");
  t.equal(
    formatCommand(['kubectl', 'patch', 'deploy', 'x', '-p', '{"spec":{"replicas":0}}']),
    `kubectl patch deploy x -p '{"spec":{"replicas":0}}'`,
  );
  const out = await runCommand(['printf', '%s|', "it's", 'two words', '$HOME'], { kind: 'read' });
  t.equal(out.stdout, "it's|two words|$HOME|", 'each element reaches the command as one argument');
});

t.test('backoff doubles and is capped', async (t) => {
  const policy = { baseMs: 100, maxMs: 500 };
  t.same(
    [0, 1, 2, 3, 4].map((n) => backoffDelay(n, policy)),
    [100, 200, 400, 500, 500],
  );
});

t.test('an empty argv is a programming error', async (t) => {
  await t.rejects(runCommand([], { kind: 'read' }), /at least the program name/);
});

t.test(
  'templateArgv reads a template the way zx does: one argument per interpolation',
  async (t) => {
    const tag = (strings: TemplateStringsArray, ...values: unknown[]) =>
      templateArgv(strings, values);
    const name = 'beer system';
    t.same(tag`scale deployment ${name} -n ${'beersystem'} --replicas=${0}`, [
      'scale',
      'deployment',
      'beer system',
      '-n',
      'beersystem',
      '--replicas=0',
    ]);
    t.same(tag`get ${['pods', 'svc']} -o json`, ['get', 'pods', 'svc', '-o', 'json']);
    t.same(tag`annotate x ${'a=b; rm -rf /'}`, ['annotate', 'x', 'a=b; rm -rf /']);
    t.same(tag`  plan   -out ${'p'}  `, ['plan', '-out', 'p']);
    t.same(tag`echo ${''}`, ['echo', ''], 'an empty value is an empty argument');
    t.same(tag`x ${[]} y`, ['x', 'y'], 'an empty array gives no argument');
    t.same(tag`n ${{ stdout: '3\n' }}`, ['n', '3'], "a command's output, trimmed");
    t.throws(() => tag`scale ${undefined}`, /interpolation 1 .* is undefined/);
    t.throws(() => tag`scale ${null}`, /is null/);
  },
);

/** Alive and not a zombie (an orphan's zombie may wait long for a reaper in a container). */
function liveProcess(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/^[ZX]/.test(stat.slice(stat.lastIndexOf(')') + 2));
  } catch {
    return false;
  }
}

t.test(
  'an interrupted command is stopped with everything it started, and nothing is left',
  async (t) => {
    const dir = tempDir(t);
    const pids = join(dir, 'pids');
    const controller = new AbortController();
    // a shell that starts a grandchild in the background, then waits
    const running = runCommand(
      ['sh', '-c', 'sleep 600 & echo $! > "$1"; echo $$ >> "$1"; wait', 'sh', pids],
      { kind: 'read', signal: controller.signal, killGraceMs: 2_000 },
    );
    const deadline = Date.now() + 10_000;
    while (!existsSync(pids) || readFileSync(pids, 'utf8').trim().split('\n').length < 2) {
      if (Date.now() > deadline) throw new Error('the command did not start');
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    const started = readFileSync(pids, 'utf8').trim().split('\n').map(Number);
    controller.abort();
    const stopped = stopRunningCommands();
    const err = (await running.catch((e) => e)) as CommandError;
    t.same(await stopped, [], 'no process survived');
    t.match(err.message, /interrupted/);
    for (const pid of started) {
      t.notOk(liveProcess(pid), `process ${pid} is gone`);
    }
  },
);

t.test('a grandchild that moved to a process group of its own is stopped too', async (t) => {
  const dir = tempDir(t);
  const pids = join(dir, 'pids');
  const controller = new AbortController();
  const running = runCommand(['sh', '-c', 'setsid sleep 600 & echo $! > "$1"; wait', 'sh', pids], {
    kind: 'read',
    signal: controller.signal,
    killGraceMs: 500,
  });
  const deadline = Date.now() + 10_000;
  while (!existsSync(pids) || readFileSync(pids, 'utf8').trim() === '') {
    if (Date.now() > deadline) throw new Error('the command did not start');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  const grandchild = Number(readFileSync(pids, 'utf8').trim());
  controller.abort();
  await running.catch(() => undefined);
  t.notOk(liveProcess(grandchild), 'a grandchild in a process group of its own was stopped too');
});
