// The confirmations of a run: the question each changing step asks (or the flags answer), and
// the confirmed sequences — steps that one answer, given at the first of them, covers through
// its confirmCovers step, so that a downtime is agreed to once, before it starts.
import type { AuditInput } from '../audit/audit.ts';
import {
  type ConfirmDecision,
  type ConfirmRequest,
  confirmStep,
  isInteractiveTerminal,
  refusalWithoutTerminal,
} from './confirm.ts';
import type { InterruptScope } from './interrupt-scope.ts';
import type { Progress } from './progress.ts';
import type { RunbookArgs } from './runbook-args.ts';
import type { EngineOptions, SessionInfo, StepDefinition } from './runbook-types.ts';
import type { StepContext } from './step-context.ts';

/** The answer given at the first step of a sequence, standing for the rest of it. */
interface SequenceAnswer {
  by: string;
  through: string;
  method: ConfirmDecision['method'];
  ids: ReadonlySet<string>;
}

/** The steps from `step` (excluded) through its confirmCovers step (included). */
function stepsCoveredBy(steps: readonly StepDefinition[], step: StepDefinition): Set<string> {
  if (!step.confirmCovers) return new Set();
  const ids = steps.map((s) => s.id);
  const from = ids.indexOf(step.id);
  const to = ids.indexOf(step.confirmCovers);
  return new Set(ids.slice(from + 1, to + 1));
}

export interface ConfirmationsDeps {
  info: SessionInfo;
  args: RunbookArgs;
  options: EngineOptions;
  progress: Progress;
  scope: InterruptScope;
  record: (input: AuditInput) => Promise<unknown>;
}

export class RunConfirmations {
  private answer: SequenceAnswer | undefined;
  private confirmed: ReadonlySet<string> = new Set();

  constructor(private readonly d: ConfirmationsDeps) {}

  /** The step belongs to a sequence confirmed in this run: a failure in it asks what now. */
  inConfirmedSequence(stepId: string): boolean {
    return this.confirmed.has(stepId);
  }

  /**
   * Without a terminal nobody can answer later: the first confirmation of the selected steps
   * that the flags cannot give, found before the first step changes anything.
   */
  refusalWithoutTerminal(
    ctx: StepContext,
  ): { index: number; step: StepDefinition; message: string } | undefined {
    const { info, args, options } = this.d;
    if (args.dryRun || (options.isInteractive ?? isInteractiveTerminal)()) return undefined;
    const covered = new Set<string>();
    for (const [index, step] of info.steps.entries()) {
      if (!info.selected.has(step.id) || step.risk === 'read' || covered.has(step.id)) continue;
      for (const id of stepsCoveredBy(info.steps, step)) {
        if (info.selected.has(id)) covered.add(id);
      }
      let request: ConfirmRequest;
      try {
        request = this.request(step, ctx);
      } catch {
        continue; // a name that depends on earlier steps is checked when the step comes
      }
      const refusal = refusalWithoutTerminal(request, this.flags());
      if (refusal) return { index, step, message: refusal.message };
    }
    return undefined;
  }

  /** Asks (or takes the flags' answer, or the sequence's); resolves to the time spent asking. */
  async confirm(step: StepDefinition, ctx: StepContext): Promise<number> {
    if (step.risk === 'read') return 0;
    const { args, options, progress, scope, record } = this.d;
    const base = { step: step.id, risk: step.risk };
    const answer = this.answer;
    if (answer?.ids.has(step.id)) {
      if (step.id === answer.through) this.answer = undefined;
      await record({
        ...base,
        event: 'confirm',
        outcome: args.dryRun ? 'would-ask' : 'confirmed',
        detail: { method: 'covered', covered_by: answer.by, answer: answer.method },
      });
      return 0;
    }
    const request = this.request(step, ctx);
    progress.stop();
    if (args.dryRun) {
      const ask = request.resourceName ? `the name "${request.resourceName}" typed` : 'a yes';
      const sequence = request.covers ? ` for ${step.id}–${request.covers.through}` : '';
      progress.log(`${step.id} (${step.risk} risk) would ask for ${ask}${sequence} before running`);
    }
    const asked = Date.now();
    const recovery = options.recoveryOf;
    const decision: ConfirmDecision =
      recovery && step.risk !== 'irreversible' && !args.dryRun
        ? { method: 'rollback-chosen' }
        : await scope.until(
            confirmStep(request, this.flags(), {
              ...(options.prompter ? { prompter: options.prompter } : {}),
              ...(options.isInteractive ? { isInteractive: options.isInteractive } : {}),
            }),
          );
    const waited = decision.method === 'prompt' ? Date.now() - asked : 0;
    const sequence = request.covers ? this.sequenceOf(step).ids : [];
    await record({
      ...base,
      event: 'confirm',
      // a dry run asks nothing, so nothing was confirmed
      outcome: decision.method === 'dry-run' ? 'would-ask' : 'confirmed',
      detail: {
        method: decision.method,
        ...(request.resourceName ? { name: request.resourceName } : {}),
        ...(request.covers ? { covers: sequence } : {}),
        ...(waited > 0 ? { waited_ms: waited } : {}),
        ...(decision.method === 'rollback-chosen' && recovery
          ? { failed_run: recovery.runId, failed_step: recovery.step }
          : {}),
      },
    });
    if (request.covers) {
      this.answer = {
        by: step.id,
        through: request.covers.through,
        method: decision.method,
        ids: new Set(sequence),
      };
      this.confirmed = new Set([step.id, ...sequence]);
    }
    progress.stepStarted(step.id, step.title);
    return waited;
  }

  private flags() {
    const { args } = this.d;
    return { yes: args.yes, confirmNames: args.confirmNames, dryRun: args.dryRun };
  }

  private request(step: StepDefinition, ctx: StepContext): ConfirmRequest {
    const resourceName =
      typeof step.confirmName === 'function' ? step.confirmName(ctx) : step.confirmName;
    const impact = typeof step.impact === 'function' ? step.impact(ctx) : step.impact;
    const { head, ids: covered } = this.sequenceOf(step);
    return {
      stepId: step.id,
      title: step.title,
      risk: step.risk,
      ...(impact !== undefined ? { impact } : {}),
      ...(resourceName !== undefined ? { resourceName } : {}),
      ...(covered.length > 0
        ? {
            covers: {
              through: covered.at(-1) as string,
              ...(head.coverText !== undefined ? { text: head.coverText } : {}),
            },
          }
        : {}),
    };
  }

  /**
   * The steps this step's answer covers in this run (an --only run may leave some out), and
   * the step whose confirmCovers made the sequence. When that step did not ask (it was already
   * done, or --from started later), the first step of the sequence that asks covers the rest:
   * a resumed downtime still has one question, before it.
   */
  private sequenceOf(step: StepDefinition): { head: StepDefinition; ids: string[] } {
    const { steps, selected } = this.d.info;
    const inRun = (ids: Iterable<string>) => [...ids].filter((id) => selected.has(id));
    if (step.confirmCovers) return { head: step, ids: inRun(stepsCoveredBy(steps, step)) };
    const head = steps.find((s) => stepsCoveredBy(steps, s).has(step.id));
    if (!head) return { head: step, ids: [] };
    const sequence = [...stepsCoveredBy(steps, head)];
    return { head, ids: inRun(sequence.slice(sequence.indexOf(step.id) + 1)) };
  }
}
