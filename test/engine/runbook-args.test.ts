import t from 'tap';
import { readAuditEntries } from '../../lib/audit/audit.ts';
import {
  flagsToRepeat,
  parseRunbookArgs,
  UsageError,
  usageLine,
} from '../../lib/engine/runbook-args.ts';
import { execute, markerRunbook } from '../helpers/marker-runbook.ts';
import { makeRunbookEnv } from '../helpers/runbook-env.ts';

t.test('defaults: nothing set', async (t) => {
  t.same(parseRunbookArgs([]), {
    help: false,
    dryRun: false,
    yes: false,
    confirmNames: [],
    from: undefined,
    only: [],
    json: false,
    envFile: undefined,
    overrideGate: undefined,
    mode: 'default',
    extra: {},
  });
});

t.test('a mode is a flag of its own name; two modes at once are a usage error', async (t) => {
  t.equal(parseRunbookArgs(['--rollback'], {}, ['rollback', 'repair']).mode, 'rollback');
  t.equal(parseRunbookArgs([], {}, ['rollback']).mode, 'default');
  t.throws(
    () => parseRunbookArgs(['--rollback', '--repair'], {}, ['rollback', 'repair']),
    /--rollback and --repair cannot be combined/,
  );
  t.throws(() => parseRunbookArgs(['--rollback'], {}, []), /Unknown option '--rollback'/);
  t.match(usageLine('./x.mts', {}, ['rollback']), /\[--rollback\]/);
});

t.test('a resume repeats the mode, the runbook flags, --env-file and --dry-run only', async (t) => {
  const args = parseRunbookArgs(
    [
      '--rollback',
      '--target',
      'a b',
      '--shout',
      '--env-file',
      'x.env',
      '--dry-run',
      '--yes',
      '--confirm',
      'old',
      '--json',
      '--from',
      'T2',
      '--override-gate',
      'why',
    ],
    {
      target: { type: 'string', description: '' },
      shout: { type: 'boolean', description: '' },
      quiet: { type: 'boolean', description: '' },
    },
    ['rollback'],
  );
  t.same(
    flagsToRepeat(args, {
      target: { type: 'string', description: '' },
      shout: { type: 'boolean', description: '' },
      quiet: { type: 'boolean', description: '' },
    }),
    ['--rollback', '--target', 'a b', '--shout', '--env-file', 'x.env', '--dry-run'],
  );
});

t.test('every common flag, short forms and repeated values', async (t) => {
  const args = parseRunbookArgs([
    '-h',
    '--dry-run',
    '-y',
    '--confirm',
    'redis',
    '--confirm=other',
    '--only',
    'T001, T002',
    '--only=T003',
    '--json',
    '--env-file',
    'x.env',
    '--override-gate',
    'because',
  ]);
  t.match(args, {
    help: true,
    dryRun: true,
    yes: true,
    confirmNames: ['redis', 'other'],
    only: ['T001', 'T002', 'T003'],
    json: true,
    envFile: 'x.env',
    overrideGate: 'because',
  });
});

t.test("a runbook's own flags are parsed and reported under extra", async (t) => {
  const flags = {
    rollback: { type: 'boolean', description: 'undo' },
    target: { type: 'string', description: 'where' },
  } as const;
  t.same(parseRunbookArgs(['--rollback', '--target', 'x'], flags).extra, {
    rollback: true,
    target: 'x',
  });
  t.same(parseRunbookArgs([], flags).extra, { rollback: undefined, target: undefined });
  t.throws(() => parseRunbookArgs(['--rollback']), UsageError, 'unknown to a runbook without it');
  t.equal(
    usageLine('./r.mts', flags),
    'usage: ./r.mts [--help] [--dry-run] [--yes [--confirm <name>]] [--from <step> | --only <steps>] [--json] [--env-file <path>] [--override-gate <reason>] [--rollback] [--target <value>]',
  );
});

t.test('usage errors say what is wrong', async (t) => {
  t.throws(() => parseRunbookArgs(['--from']), /Option '--from <value>' argument missing/);
  t.throws(() => parseRunbookArgs(['--json=yes']), UsageError);
  t.throws(() => parseRunbookArgs(['--from', 'T1', '--only', 'T2']), /cannot be combined/);
});

t.test('usage errors exit 2 with a usage line and run nothing', async (t) => {
  const sandbox = makeRunbookEnv(t);
  const cases: Array<[string[], RegExp]> = [
    [['--bogus'], /Unknown option '--bogus'/],
    [['stray'], /Unexpected argument 'stray'/],
    [['--from', 'T009'], /--from T009: no such step \(steps: T001, T002, T003\)/],
    [['--only', 'T001,T404'], /--only T404: no such step/],
    [['--from', 'T001', '--only', 'T002'], /--from and --only cannot be combined/],
    [['--override-gate', ' '], /--override-gate needs a reason/],
  ];
  for (const [argv, message] of cases) {
    const out = await execute(markerRunbook(sandbox), sandbox, argv);
    t.equal(out.code, 2, argv.join(' '));
    t.match(out.stderr, message);
    t.match(out.stderr, /\nusage: \.\/runbooks\/98-inline\.mts \[--help\]/);
  }
  t.same(await readAuditEntries(sandbox.auditLog), [], 'a usage error writes no audit entry');
});
