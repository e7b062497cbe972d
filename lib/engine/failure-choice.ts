// When a step fails where stopping leaves things worse than they were (inside a sequence the
// operator confirmed once, or past the point the runbook can roll back from), an operator at a
// terminal is asked what happens next instead of being left to copy a command out of the log:
// run the step again, roll back now, or stop with the resume and rollback lines printed.
import { ask, type Choice, type Prompter } from './confirm.ts';

export type FailureChoice = 'retry' | 'rollback' | 'stop';

export interface FailureQuestion {
  stepId: string;
  title: string;
  /** the command that goes on from this step later */
  resume: string;
  /** offered when the runbook has a rollback mode that applies here */
  rollback?: { command: string; title: string };
  /** what stopping leaves behind (e.g. "beersystem stays down") */
  stopLeaves?: string;
}

export function failureChoices(q: FailureQuestion): Choice<FailureChoice>[] {
  const choices: Choice<FailureChoice>[] = [
    {
      value: 'retry',
      name: `Retry ${q.stepId}`,
      description: `run ${q.stepId} again (its check comes first: what is already done is not repeated)`,
    },
  ];
  if (q.rollback) {
    choices.push({
      value: 'rollback',
      name: 'Roll back now',
      description: `${q.rollback.title}: runs ${q.rollback.command} now, without further questions`,
    });
  }
  choices.push({
    value: 'stop',
    name: 'Stop',
    description: `end the run here${q.stopLeaves ? `; ${q.stopLeaves}` : ''}; later: ${q.resume}${q.rollback ? ` or ${q.rollback.command}` : ''}`,
  });
  return choices;
}

/** Short: the step's line and its whole error are printed just above the question. */
export function failureQuestion(q: FailureQuestion): string {
  return `${q.stepId} ${q.title} failed (the error is above). What now?`;
}

/** Resolves to the operator's choice; Ctrl-C rejects with an interrupted ConfirmationRefused. */
export function askAfterFailure(q: FailureQuestion, prompter: Prompter): Promise<FailureChoice> {
  return ask(() => prompter.choose(failureQuestion(q), failureChoices(q)));
}
