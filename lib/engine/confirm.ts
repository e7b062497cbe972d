// Confirmation by risk level (docs/architecture.md).
//
// The rule, as printed by every runbook's --help:
//   read          never asks.
//   change, high  ask yes/no (default no); `high` names the impact. `--yes` answers them.
//   irreversible  the operator types the resource name at the prompt, or passes
//                 `--yes --confirm <name>` with exactly that name. `--yes` alone is never
//                 enough: on a terminal the name is still asked for, without one the run refuses.
//   no terminal   and no `--yes`: refuse at once with exit 2 and a one-line message saying what
//                 to re-run with. Never a hang (an unanswerable prompt), never a stack trace.
//   --dry-run     asks nothing: nothing is changed, so there is nothing to confirm.
//
// Prompts go to stderr, like all progress, so `--json` output on stdout stays one clean object;
// that is why a terminal means stdin and stderr are TTYs. @inquirer/prompts never checks for a
// TTY itself (it hangs on a silent pipe), hence the explicit check.
import type { Risk } from './risk.ts';

export interface ConfirmRequest {
  stepId: string;
  title: string;
  risk: Risk;
  /** what the operator loses if this goes wrong; shown for `high` and `irreversible` */
  impact?: string;
  /** the name the operator must type for an `irreversible` step */
  resourceName?: string;
  /** a sequence confirmation: the answer also covers the following steps up to `through` */
  covers?: { through: string; text?: string };
}

export interface ConfirmFlags {
  yes: boolean;
  /** every `--confirm <name>` given */
  confirmNames: readonly string[];
  dryRun: boolean;
}

/** Asks the operator; injectable so tests cover the terminal path without a terminal. */
export interface Prompter {
  yesNo(message: string): Promise<boolean>;
  typeName(message: string): Promise<string>;
  /** one of several answers, each with a line saying what it does; resolves to its value */
  choose<T extends string>(message: string, choices: readonly Choice<T>[]): Promise<T>;
}

export interface Choice<T extends string> {
  value: T;
  name: string;
  description: string;
}

export interface ConfirmEnvironment {
  prompter?: Prompter;
  isInteractive?: () => boolean;
}

export type ConfirmMethod =
  | 'not-needed'
  | 'dry-run'
  | 'yes-flag'
  | 'confirm-flag'
  | 'prompt'
  /** a rollback run's questions, answered by choosing "roll back now" after a failure */
  | 'rollback-chosen';

export interface ConfirmDecision {
  method: ConfirmMethod;
}

/** The run stops with exit 2; the message is one line and says what to do next. */
export class ConfirmationRefused extends Error {
  override readonly name = 'ConfirmationRefused';
  constructor(
    message: string,
    /** true when the operator pressed Ctrl-C at the prompt rather than answering */
    readonly interrupted = false,
  ) {
    super(message);
  }
}

export function isInteractiveTerminal(): boolean {
  return Boolean(process.stdin.isTTY && process.stderr.isTTY);
}

// inquirer marks an answered question with a green ✔, whatever the answer: a declined T035 would
// read as done. An answered question keeps a neutral mark; the step's own line says what happened.
const theme = { prefix: { idle: '?', done: '›' } };

/** The real prompts; loaded only when a question is actually asked. */
export const inquirerPrompter: Prompter = {
  async yesNo(message) {
    const { confirm } = await import('@inquirer/prompts');
    return confirm({ message, default: false, theme }, { output: process.stderr });
  },
  async typeName(message) {
    const { input } = await import('@inquirer/prompts');
    return input({ message, theme }, { output: process.stderr });
  },
  async choose(message, choices) {
    const { select } = await import('@inquirer/prompts');
    return select({ message, choices: [...choices], theme }, { output: process.stderr });
  },
};

// A plain re-run, not --from: --from would skip the checks and the backup before the step,
// while a plain re-run repeats them and finds what is done already done.
function againFrom(_stepId: string): string {
  return 'To go ahead later, re-run the runbook as before (its checks and backup run again first; what is done is not repeated)';
}

function sequence(request: ConfirmRequest): string {
  const covers = request.covers;
  if (!covers) return '';
  return ` ${request.stepId}–${covers.through} run without further questions${covers.text ? `; ${covers.text}` : ''}.`;
}

function question(request: ConfirmRequest): string {
  const base = `${request.stepId} ${request.title}`;
  const run = request.covers ? 'Run them?' : 'Run it?';
  if (request.risk === 'high') {
    // An impact of several lines (a plan, a line a change) stands on its own lines, as printed.
    if (request.impact?.includes('\n')) {
      return `${base}: high risk.${sequence(request)}\n${request.impact}\n${run}`;
    }
    return `${base}: high risk${request.impact ? ` (${request.impact})` : ''}.${sequence(request)} ${run}`;
  }
  return request.covers ? `${base}.${sequence(request)} ${run}` : `${base}: run it?`;
}

/**
 * What confirmStep would refuse without a terminal, decided from the flags alone, so a run can
 * check every confirmation it will need before its first step changes anything.
 */
export function refusalWithoutTerminal(
  request: ConfirmRequest,
  flags: ConfirmFlags,
): ConfirmationRefused | undefined {
  if (request.risk === 'read' || flags.dryRun) return undefined;
  if (request.risk === 'irreversible') {
    const name = request.resourceName;
    if (!name) return undefined;
    const retry = `re-run with --yes --confirm ${name}`;
    if (flags.yes && flags.confirmNames.includes(name)) return undefined;
    if (flags.yes && flags.confirmNames.length > 0) {
      return new ConfirmationRefused(
        `--confirm ${flags.confirmNames.join(', ')} does not name ${request.stepId}'s resource: ${retry}`,
      );
    }
    const why = flags.yes
      ? `--yes alone does not confirm irreversible step ${request.stepId}`
      : `${request.stepId} is irreversible and there is no terminal to confirm on`;
    return new ConfirmationRefused(`${why}: ${retry}`);
  }
  if (flags.yes) return undefined;
  return new ConfirmationRefused(
    `${request.stepId} (${request.risk} risk) needs confirmation and there is no terminal to ask on: re-run with --yes`,
  );
}

export async function ask<T>(prompt: () => Promise<T>): Promise<T> {
  try {
    return await prompt();
  } catch (err) {
    // @inquirer/prompts rejects with ExitPromptError when Ctrl-C is pressed at the prompt.
    if (err instanceof Error && err.name === 'ExitPromptError') {
      throw new ConfirmationRefused('interrupted at the confirmation prompt', true);
    }
    throw err;
  }
}

export async function confirmStep(
  request: ConfirmRequest,
  flags: ConfirmFlags,
  environment: ConfirmEnvironment = {},
): Promise<ConfirmDecision> {
  if (request.risk === 'read') return { method: 'not-needed' };
  if (flags.dryRun) return { method: 'dry-run' };
  const prompter = environment.prompter ?? inquirerPrompter;
  const interactive = (environment.isInteractive ?? isInteractiveTerminal)();

  if (request.risk === 'irreversible') {
    const name = request.resourceName;
    if (!name) throw new Error(`irreversible step ${request.stepId} names no resource to confirm`);
    if (flags.yes && flags.confirmNames.includes(name)) return { method: 'confirm-flag' };
    const refusal = refusalWithoutTerminal(request, flags);
    // A wrong --confirm is refused even on a terminal: the operator meant something else.
    if (refusal && (!interactive || (flags.yes && flags.confirmNames.length > 0))) throw refusal;
    const impact = request.impact ? ` ${request.impact}.` : '';
    const typed = await ask(() =>
      prompter.typeName(
        `${request.stepId} ${request.title} cannot be undone.${impact}${sequence(request)} Type "${name}" to go ahead:`,
      ),
    );
    if (typed.trim() !== name) {
      throw new ConfirmationRefused(
        `${request.stepId} not confirmed: "${typed.trim()}" is not "${name}"; nothing was changed by this step. ${againFrom(request.stepId)}`,
      );
    }
    return { method: 'prompt' };
  }

  if (flags.yes) return { method: 'yes-flag' };
  if (!interactive) throw refusalWithoutTerminal(request, flags) as ConfirmationRefused;
  const answer = await ask(() => prompter.yesNo(question(request)));
  if (!answer) {
    throw new ConfirmationRefused(
      `${request.stepId} not confirmed; nothing was changed by this step. ${againFrom(request.stepId)}`,
    );
  }
  return { method: 'prompt' };
}
