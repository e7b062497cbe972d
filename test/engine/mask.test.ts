import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import {
  clearSecretsForTests,
  maskDeep,
  maskError,
  maskSecrets,
  registerSecret,
} from '../../lib/mask.ts';
import { REPO, runCli } from '../helpers/run-cli.ts';
import { makeRunbookEnv } from '../helpers/runbook-env.ts';

// Ten real runbook runs below, each loading client-node to try the cluster's Lease first.
t.setTimeout(480_000);

t.beforeEach(() => clearSecretsForTests());

t.test('a registered secret is masked in plain and base64 form', async (t) => {
  registerSecret('s3cr3t-value');
  const b64 = Buffer.from('s3cr3t-value').toString('base64');
  t.equal(maskSecrets(`auth s3cr3t-value and ${b64}`), 'auth *** and ***');
});

t.test('a secret containing another one is masked whole', async (t) => {
  registerSecret('abcd');
  registerSecret('abcdefgh');
  t.equal(maskSecrets('x abcdefgh y abcd'), 'x *** y ***');
});

t.test('maskDeep masks strings nested in objects and arrays, and keeps other values', async (t) => {
  registerSecret('hunter22');
  t.same(maskDeep({ a: ['pw=hunter22', 3], b: { c: 'hunter22' }, d: null, e: true }), {
    a: ['pw=***', 3],
    b: { c: '***' },
    d: null,
    e: true,
  });
});

t.test('maskError masks message and stack and keeps name and code', async (t) => {
  registerSecret('hunter22');
  const err = Object.assign(new TypeError('bad hunter22'), { code: 'EX' });
  const masked = maskError(err);
  t.equal(masked.message, 'bad ***');
  t.equal(masked.name, 'TypeError');
  t.notMatch(masked.stack ?? '', /hunter22/);
  t.equal((masked as { code?: string }).code, 'EX');
  t.equal(maskError('plain hunter22').message, 'plain ***');
});

// Passwords with every character that changes under some encoding: quotes, backslash, @, %,
// spaces, non-ASCII.
const HOSTILE_PASSWORDS = [
  "it's-a-secret",
  'say "cheese" now',
  'back\\slash\\pw',
  'S3cr3t-P@ss!word',
  '100%-sure-pw',
  'with spaces in it',
  'пароль-ünï-密码',
  `a'b"c\\d@e%f g/ü+`,
];

/** Every way the project (or a tool it prints from) may render a password, built here independently. */
function renderings(pw: string): Record<string, string> {
  const url = new URL('redis://redis-shared.redis.svc:6379/0');
  url.password = pw;
  const whatwg = url.href.slice('redis://:'.length, url.href.indexOf('@'));
  const strict = [...Buffer.from(pw, 'utf8')]
    .map((b) =>
      /[A-Za-z0-9\-._~]/.test(String.fromCharCode(b))
        ? String.fromCharCode(b)
        : `%${b.toString(16).toUpperCase().padStart(2, '0')}`,
    )
    .join('');
  const uriComponent = encodeURIComponent(pw);
  const redisUrl = `redis://:${uriComponent}@redis-shared.redis.svc:6379/0`;
  return {
    plain: pw,
    'URL-encoded': uriComponent,
    'URL-encoded, lower-case hex': uriComponent.replace(/%[0-9A-F]{2}/g, (m) => m.toLowerCase()),
    'URL-encoded, every reserved byte': strict,
    'URL userinfo (WHATWG)': whatwg,
    'form-encoded': new URLSearchParams({ p: pw }).toString().slice(2),
    'redis:// URL': redisUrl,
    hex: Buffer.from(pw).toString('hex'),
    HEX: Buffer.from(pw).toString('hex').toUpperCase(),
    base64: Buffer.from(pw).toString('base64'),
    base64url: Buffer.from(pw).toString('base64url'),
    'base64 of a redis:// URL': Buffer.from(redisUrl).toString('base64'),
    'base64 of the URL, shifted one byte': Buffer.from(`x${redisUrl}`).toString('base64'),
    'base64 of the URL, shifted two bytes': Buffer.from(`xy${redisUrl}`).toString('base64'),
    'base64 of a JSON document': Buffer.from(JSON.stringify({ auth: pw })).toString('base64'),
    'JSON-escaped': JSON.stringify({ auth: pw }),
    'JSON-escaped, ASCII only': JSON.stringify({ auth: pw }).replace(
      /[\u0080-\uffff]/g,
      (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
    ),
    'shell-quoted': `'${pw.replaceAll("'", `'\\''`)}'`,
    'shell double-quoted': `"${pw.replace(/[\\"$`]/g, '\\$&')}"`,
  };
}

/** Any 4 consecutive characters of the password, in the text or in anything base64/hex in it decodes to. */
function leakedPart(masked: string, pw: string): string | undefined {
  const pieces = new Set<string>();
  const chars = [...pw];
  for (let i = 0; i + 4 <= chars.length; i++) pieces.add(chars.slice(i, i + 4).join(''));
  for (const p of [...pieces]) {
    pieces.add(encodeURIComponent(p));
    pieces.add(encodeURIComponent(p).replace(/%[0-9A-F]{2}/g, (m) => m.toLowerCase()));
    pieces.add(
      p.replace(/[\u0080-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`),
    );
  }
  const decoded = [masked];
  for (const run of masked.match(/[A-Za-z0-9+/_-]{4,}/g) ?? []) {
    for (let shift = 0; shift < 4; shift++) {
      decoded.push(Buffer.from(run.slice(shift), 'base64').toString('utf8'));
      decoded.push(Buffer.from(run.slice(shift), 'base64url').toString('utf8'));
    }
  }
  for (const run of masked.match(/[0-9a-fA-F]{8,}/g) ?? []) {
    for (const shift of [0, 1]) decoded.push(Buffer.from(run.slice(shift), 'hex').toString('utf8'));
  }
  for (const text of decoded) {
    for (const piece of pieces) if (text.includes(piece)) return piece;
  }
  return undefined;
}

t.test(
  'item 5: every rendering of a registered password is masked, whatever characters it holds',
  async (t) => {
    for (const pw of HOSTILE_PASSWORDS) {
      clearSecretsForTests();
      registerSecret(pw);
      for (const [name, rendering] of Object.entries(renderings(pw))) {
        const masked = maskSecrets(`before ${rendering} after`);
        t.equal(leakedPart(masked, pw), undefined, `${JSON.stringify(pw)}: ${name}`);
        t.match(masked, /^before .*\*\*\*.* after$/s, `${JSON.stringify(pw)}: ${name} is marked`);
      }
    }
  },
);

t.test('the check above finds a leak when nothing is masked', async (t) => {
  for (const pw of HOSTILE_PASSWORDS) {
    for (const [name, rendering] of Object.entries(renderings(pw))) {
      t.not(leakedPart(rendering, pw), undefined, `${JSON.stringify(pw)}: ${name}`);
    }
  }
});

t.test('ordinary text around a masked password is kept', async (t) => {
  registerSecret('S3cr3t-P@ss!word');
  t.equal(
    maskSecrets('redis://:S3cr3t-P%40ss!word@redis-shared.redis.svc:6379/0'),
    'redis://:***@redis-shared.redis.svc:6379/0',
  );
  t.equal(maskSecrets('{"password":"S3cr3t-P@ss!word"}'), '{"password":"***"}');
  t.equal(maskSecrets('nothing secret here'), 'nothing secret here');
});

t.test('a password shorter than 4 characters is refused when it is registered', async (t) => {
  for (const pw of ['a', 'ab', 'abc', 'ü€']) {
    t.throws(
      () => registerSecret(pw),
      {
        name: 'SecretTooShortError',
        message: /fewer than 4 characters.*cannot be masked/,
      },
      JSON.stringify(pw),
    );
  }
  t.doesNotThrow(() => registerSecret('abcd'));
  t.doesNotThrow(() => registerSecret(undefined), 'no password: nothing to mask');
  t.doesNotThrow(() => registerSecret(null));
  t.doesNotThrow(() => registerSecret(''));
  t.equal(maskSecrets('ab abc abcd'), 'ab abc ***');
});

function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? filesUnder(path) : [path];
  });
}

t.test(
  'item 5: a run that logs, runs and fails with every rendering of the password leaks none of them',
  async (t) => {
    const script = join(REPO, 'test/fixtures/runbooks/leaky-step.ts');
    // The same characters as HOSTILE_PASSWORDS, without English words: a password that shares
    // four characters with the engine's own messages would be reported as a leak.
    const passwords = [
      "qv'x-Zq7-wk",
      'Zq "jx" vq7',
      'vk\\jq\\Zx7',
      'Zq7-P@vx!wk',
      '100%-Zqvx',
      'Zq7 qxv wkj',
      'пароль-ünï-密码',
      `a'b"c\\d@e%f g/ü+`,
    ];
    const runs = [
      ...passwords.map((pw) => ({ pw, argv: '0' })),
      { pw: "qv'x-Zq7-wk", argv: '1' },
      { pw: `a'b"c\\d@e%f g/ü+`, argv: '1' },
    ];
    for (const { pw, argv } of runs) {
      const sandbox = makeRunbookEnv(t);
      const out = await runCli(script, ['--yes', '--json'], {
        env: { ...sandbox.env, FIXTURE_PASSWORD: pw, FIXTURE_ARGV: argv },
      });
      const name = `${JSON.stringify(pw)}${argv === '1' ? ' in argv' : ''}`;
      t.equal(out.code, 1, `${name}: the step failed as planned`);
      t.match(out.stderr, /rendering: \*\*\*/, `${name}: the renderings were printed, masked`);
      t.ok(JSON.parse(out.stdout), `${name}: --json printed its summary`);
      t.equal(leakedPart(out.stdout, pw), undefined, `${name}: stdout (--json)`);
      t.equal(leakedPart(out.stderr, pw), undefined, `${name}: stderr`);
      const files = filesUnder(sandbox.dir);
      t.ok(files.includes(sandbox.auditLog), `${name}: the audit log is among the files scanned`);
      for (const file of files) {
        t.equal(leakedPart(readFileSync(file, 'utf8'), pw), undefined, `${name}: ${file}`);
      }
    }
  },
);
