// The flags every runbook takes (docs/architecture.md), parsed strictly: an unknown flag or a stray
// argument is a usage error (exit 2), never silently ignored, because a typo in `--dry-run`
// must not turn a rehearsal into a real run.
import { parseArgs } from 'node:util';

/** A flag a single runbook adds to the common ones (e.g. 05-migrate's `--rollback`). */
export interface ExtraFlag {
  type: 'boolean' | 'string';
  description: string;
}

export interface RunbookArgs {
  help: boolean;
  dryRun: boolean;
  yes: boolean;
  confirmNames: string[];
  from: string | undefined;
  only: string[];
  json: boolean;
  envFile: string | undefined;
  overrideGate: string | undefined;
  /** the step list to run: 'default', or the mode whose flag was given (e.g. 'rollback') */
  mode: string;
  /** values of the runbook's own flags, by name */
  extra: Record<string, string | boolean | undefined>;
}

export class UsageError extends Error {
  override readonly name = 'UsageError';
}

export const COMMON_FLAGS = [
  ['--help', 'show this help and exit'],
  ['--dry-run', 'run every read, send no mutation; print each mutation as "would run: <command>"'],
  ['--yes', 'answer yes to change and high-risk confirmations (needed without a terminal)'],
  ['--confirm <name>', 'with --yes, confirms the irreversible step acting on <name>'],
  ['--from <step>', 'start at this step; the steps before it are not run or checked'],
  ['--only <steps>', 'run only these steps (comma-separated, or the flag repeated)'],
  ['--json', 'print one summary object on stdout (progress stays on stderr)'],
  ['--env-file <path>', 'read settings from this file instead of .env'],
  ['--override-gate <reason>', 'go through closed gates; the reason is written to the audit log'],
] as const;

export function parseRunbookArgs(
  argv: readonly string[],
  extraFlags: Readonly<Record<string, ExtraFlag>> = {},
  /** the runbook's modes; each is a boolean flag of its own name */
  modes: readonly string[] = [],
): RunbookArgs {
  const extraOptions = Object.fromEntries([
    ...Object.entries(extraFlags).map(([name, flag]) => [name, { type: flag.type }]),
    ...modes.map((name) => [name, { type: 'boolean' }]),
  ]);
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({
      args: [...argv],
      strict: true,
      allowPositionals: false,
      options: {
        ...extraOptions,
        help: { type: 'boolean', short: 'h' },
        'dry-run': { type: 'boolean' },
        yes: { type: 'boolean', short: 'y' },
        confirm: { type: 'string', multiple: true },
        from: { type: 'string' },
        only: { type: 'string', multiple: true },
        json: { type: 'boolean' },
        'env-file': { type: 'string' },
        'override-gate': { type: 'string' },
      },
    });
  } catch (err) {
    // node's messages are precise ("Unknown option '--dryrun'"); keep them, drop the advice
    // about '--' that does not apply here.
    throw new UsageError((err as Error).message.split('. To specify')[0] ?? String(err));
  }
  const v = parsed.values as Record<string, string | boolean | string[] | undefined>;
  const only = ((v.only as string[] | undefined) ?? [])
    .flatMap((list) => list.split(','))
    .map((id) => id.trim())
    .filter((id) => id !== '');
  const from = v.from as string | undefined;
  if (from !== undefined && only.length > 0) {
    throw new UsageError('--from and --only cannot be combined: choose one');
  }
  const overrideGate = v['override-gate'] as string | undefined;
  if (overrideGate !== undefined && overrideGate.trim() === '') {
    throw new UsageError(
      '--override-gate needs a reason, e.g. --override-gate "validated by hand"',
    );
  }
  const chosen = modes.filter((name) => v[name] === true);
  if (chosen.length > 1) {
    throw new UsageError(
      `${chosen.map((m) => `--${m}`).join(' and ')} cannot be combined: choose one`,
    );
  }
  const extra: Record<string, string | boolean | undefined> = {};
  for (const name of Object.keys(extraFlags)) {
    extra[name] = v[name] as string | boolean | undefined;
  }
  return {
    help: v.help === true,
    dryRun: v['dry-run'] === true,
    yes: v.yes === true,
    confirmNames: (v.confirm as string[] | undefined) ?? [],
    from,
    only,
    json: v.json === true,
    envFile: v['env-file'] as string | undefined,
    overrideGate,
    mode: chosen[0] ?? 'default',
    extra,
  };
}

export function usageLine(
  program: string,
  extraFlags: Readonly<Record<string, ExtraFlag>> = {},
  modes: readonly string[] = [],
) {
  const extras = [
    ...(modes.length > 0 ? [` [${modes.map((m) => `--${m}`).join(' | ')}]`] : []),
    ...Object.entries(extraFlags).map(([name, flag]) =>
      flag.type === 'string' ? ` [--${name} <value>]` : ` [--${name}]`,
    ),
  ];
  return `usage: ${program} [--help] [--dry-run] [--yes [--confirm <name>]] [--from <step> | --only <steps>] [--json] [--env-file <path>] [--override-gate <reason>]${extras.join('')}`;
}

/**
 * The flags of this run again, for a resume line: the mode, the runbook's own flags, the
 * settings file and --dry-run. Not --from/--only (the caller replaces them) and not --yes,
 * --confirm or --override-gate: a resume is a new decision to change things, and the operator
 * makes it again.
 */
export function flagsToRepeat(
  args: RunbookArgs,
  extraFlags: Readonly<Record<string, ExtraFlag>> = {},
): string[] {
  const out: string[] = [];
  if (args.mode !== 'default') out.push(`--${args.mode}`);
  for (const name of Object.keys(extraFlags)) {
    const value = args.extra[name];
    if (value === true) out.push(`--${name}`);
    else if (typeof value === 'string') out.push(`--${name}`, value);
  }
  if (args.envFile !== undefined) out.push('--env-file', args.envFile);
  if (args.dryRun) out.push('--dry-run');
  return out;
}
