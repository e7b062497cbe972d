// The commands a run prints — resume, re-run, roll back — made from this run's flags and
// settings, so that each one pastes and acts on the same cluster and log (command-line.ts).
import { type CommandLineOptions, runbookCommandLine } from './command-line.ts';
import type { RunbookArgs } from './runbook-args.ts';
import type { Runbook, SessionInfo, StepDefinition } from './runbook-types.ts';

export class RunCommands {
  constructor(
    private readonly runbook: Runbook,
    private readonly args: RunbookArgs,
    private readonly info: SessionInfo,
  ) {}

  /** This runbook again with this run's settings and flags. */
  line(options: CommandLineOptions = {}): string {
    return runbookCommandLine(
      {
        program: this.info.program,
        args: this.args,
        flags: this.runbook.flags,
        environment: this.info.environment,
      },
      options,
    );
  }

  rollback(mode: string): string {
    return this.line({ mode, dryRun: false });
  }

  /** The command that goes on from `stepId` with the same mode and flags. */
  resume(stepId: string): string {
    // After an --only run, `--from` would also run the steps the operator left out (an
    // irreversible one among them): resume the listed steps that are left, and no others.
    const ids = this.info.steps.map((s) => s.id);
    const rest = ids.slice(ids.indexOf(stepId)).filter((id) => this.info.selected.has(id));
    return this.args.only.length > 0 ? this.line({ only: rest }) : this.line({ from: stepId });
  }

  /** The step is at or after the runbook's rollback point, in a run of the default mode. */
  atOrAfterRollbackPoint(step: StepDefinition): boolean {
    const rollback = this.runbook.rollback;
    if (!rollback || this.args.mode !== 'default') return false;
    const ids = this.info.steps.map((s) => s.id);
    return ids.indexOf(step.id) >= ids.indexOf(rollback.from);
  }
}
