// How the command runner keeps a secret out of what it prints, audits and throws when the secret
// is quoted for the shell or sits where an error text is cut.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { AuditLog } from '../../lib/audit/audit.ts';
import {
  CommandError,
  formatCommand,
  runCommand,
  SecretInArgvError,
} from '../../lib/engine/shell.ts';
import { clearSecretsForTests, registerSecret } from '../../lib/mask.ts';

function tempDir(t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'shell-masking-test-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

t.beforeEach(() => clearSecretsForTests());

// The part of each password that survives when only the unquoted form is masked.
const QUOTED_PASSWORDS: Array<[string, RegExp]> = [
  ["it's-a-secret", /s-a-secret|it'/],
  ["'quoted-start", /quoted-start/],
  ["two''quotes-here", /quotes-here|two'/],
];

t.test(
  'a password containing a single quote is masked in the formatted command, the refusal and the audit log',
  async (t) => {
    const dir = tempDir(t);
    for (const [password, leak] of QUOTED_PASSWORDS) {
      clearSecretsForTests();
      registerSecret(password);
      t.notMatch(formatCommand(['redis-cli', '-a', password, 'PING']), leak, 'formatCommand');
      t.notMatch(
        formatCommand(['sh', '-c', 'x', `--requirepass=${password}`]),
        leak,
        'inside a larger argument',
      );
      const audit = join(dir, 'audit.jsonl');
      const printed: string[] = [];
      const err = await runCommand(['redis-cli', '-a', password, 'PING'], {
        kind: 'mutation',
        audit: new AuditLog(audit),
        print: (line) => printed.push(line),
      }).catch((e: unknown) => e);
      t.type(err, SecretInArgvError);
      t.notMatch((err as Error).message, leak, 'the refusal');
      t.notMatch((err as Error).stack ?? '', leak, 'its stack');
      t.match((err as Error).message, /redis-cli -a .*\*\*\*.* PING/);
      t.notMatch(printed.join('\n'), leak, 'what was printed');
    }
  },
);

t.test(
  'a failing command whose arguments are quoted and whose output names the password leaks neither',
  async (t) => {
    const dir = tempDir(t);
    const password = `it's "a" \\ secret`;
    registerSecret(password);
    const audit = join(dir, 'audit.jsonl');
    const printed: string[] = [];
    const err = await runCommand(['sh', '-c', 'printf "%s\\n" "$PW" >&2; exit 4', 'it is'], {
      kind: 'mutation',
      env: { PW: password },
      retries: 0,
      audit: new AuditLog(audit),
      print: (line) => printed.push(line),
    }).catch((e: unknown) => e);
    t.type(err, CommandError);
    const everything = [(err as Error).message, readFileSync(audit, 'utf8'), ...printed].join('\n');
    t.notMatch(everything, /a" \\ secret|a\\" \\\\ secret/);
    t.match((err as Error).message, /exit code 4/);
  },
);

t.test(
  'a password straddling the point where error output is cut leaks none of its characters',
  async (t) => {
    const dir = tempDir(t);
    const password = 'Zq7-straddle-TAIL99';
    registerSecret(password);
    const audit = join(dir, 'audit.jsonl');
    // 2,000 characters are kept from the end: the cut falls 6 characters before the password ends.
    const output = `${'x'.repeat(100)}${password}${'y'.repeat(2000 - 6)}`;
    const err = await runCommand(['sh', '-c', 'printf "%s" "$OUT" >&2; exit 5'], {
      kind: 'mutation',
      env: { OUT: output },
      retries: 0,
      audit: new AuditLog(audit),
      print: () => undefined,
    }).catch((e: unknown) => e);
    t.type(err, CommandError);
    const message = (err as CommandError).message;
    t.match(message, /exit code 5/);
    t.match(message, /y{1900}/, 'the tail of the output is kept');
    t.notMatch(message, /TAIL99|AIL99|IL99/, 'no tail of the password in the message');
    t.notMatch(readFileSync(audit, 'utf8'), /TAIL99|AIL99|IL99/, 'nor in the audit log');
    t.notMatch((err as CommandError).stderr, /TAIL99/);
  },
);
