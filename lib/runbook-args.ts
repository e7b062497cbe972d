// The flags every runbook takes (DESIGN.md §3), parsed strictly: an unknown flag or a stray
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
): RunbookArgs {
  const extraOptions = Object.fromEntries(
    Object.entries(extraFlags).map(([name, flag]) => [name, { type: flag.type }]),
  );
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
    extra,
  };
}

export function usageLine(program: string, extraFlags: Readonly<Record<string, ExtraFlag>> = {}) {
  const extras = Object.entries(extraFlags).map(([name, flag]) =>
    flag.type === 'string' ? ` [--${name} <value>]` : ` [--${name}]`,
  );
  return `usage: ${program} [--help] [--dry-run] [--yes [--confirm <name>]] [--from <step> | --only <steps>] [--json] [--env-file <path>] [--override-gate <reason>]${extras.join('')}`;
}
