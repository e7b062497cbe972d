// The command lines a run prints for an operator to paste later (resume, rollback, undo): each
// acts on the same cluster and the same audit log as the run that printed it. The settings file
// goes with them as --env-file; settings the environment gave are put in front as NAME=value,
// because the shell the line is pasted into may not have them.
import { dirname, join } from 'node:path';
import { type ExtraFlag, flagsToRepeat, type RunbookArgs } from './runbook-args.ts';
import { shellQuote } from './shell.ts';

export interface CommandLineSource {
  /** how the operator called the runbook (./runbooks/05-migrate.mts) */
  program: string;
  args: RunbookArgs;
  flags: Readonly<Record<string, ExtraFlag>> | undefined;
  /** settings the environment gave that the env file would not (config.ts settingsFromEnvironment) */
  environment: Readonly<Record<string, string>>;
}

export interface CommandLineOptions {
  /** another runbook of the same directory (e.g. '02-deploy'), with the same settings */
  runbook?: string;
  /** the step list: this run's mode unless given */
  mode?: string;
  /** start at this step (a resume) */
  from?: string;
  /** run only these steps (a resume after an --only run) */
  only?: readonly string[];
  /** a dry run's line stays a dry run unless told (a rollback is never dry) */
  dryRun?: boolean;
}

export function environmentPrefix(environment: Readonly<Record<string, string>>): string[] {
  return Object.entries(environment).map(([name, value]) => `${name}=${shellQuote(value)}`);
}

/** This runbook again, with this run's settings and flags, as one line a shell runs as printed. */
export function runbookCommandLine(
  source: CommandLineSource,
  options: CommandLineOptions = {},
): string {
  const other = options.runbook !== undefined;
  const args: RunbookArgs = {
    ...source.args,
    mode: options.mode ?? (other ? 'default' : source.args.mode),
    dryRun: options.dryRun ?? source.args.dryRun,
    // another runbook has flags of its own
    ...(other ? { extra: {} } : {}),
  };
  const program = other
    ? join(dirname(source.program), `${options.runbook}.mts`).replace(/^(?![./])/, './')
    : source.program;
  const position: string[] = [];
  if (options.only && options.only.length > 0) position.push('--only', options.only.join(','));
  else if (options.from !== undefined) position.push('--from', options.from);
  return [
    ...environmentPrefix(source.environment),
    ...[program, ...position, ...flagsToRepeat(args, other ? {} : source.flags)].map(shellQuote),
  ].join(' ');
}
