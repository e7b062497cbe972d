// The text of every runbook's --help: its steps and risks (and those of each mode), gates,
// flags, the confirmation rule and the exit codes, built from the definition so it cannot drift
// from what the engine does.

import { COMMON_FLAGS, usageLine } from './runbook-args.ts';
import type { Runbook, StepDefinition } from './runbook-types.ts';

function stepLines(steps: readonly StepDefinition[]): string[] {
  const rows = steps.map((s) => [s.id, s.risk, s.title]);
  const idWidth = Math.max(...rows.map((r) => r[0]?.length ?? 0));
  const riskWidth = Math.max(...rows.map((r) => r[1]?.length ?? 0));
  const lines: string[] = [];
  for (const [index, [id, risk, title]] of rows.entries()) {
    lines.push(`  ${id?.padEnd(idWidth)}  ${risk?.padEnd(riskWidth)}  ${title}`);
    const covers = steps[index]?.confirmCovers;
    if (covers) {
      lines.push(`  ${''.padEnd(idWidth + riskWidth + 2)}  (one confirmation for ${id}–${covers})`);
    }
  }
  return lines;
}

/** When the run asks what now after a failed step (lib/engine/failure-choice.ts). */
function afterFailure(runbook: Runbook): string[] {
  const rollback = runbook.rollback;
  const where = rollback
    ? `inside such a sequence, or at ${rollback.from} or later,`
    : 'inside such a sequence';
  const offer = rollback
    ? `retry it, roll back now (--${rollback.mode}), or stop`
    : 'retry it or stop';
  const hasSequence =
    runbook.steps.some((s) => s.confirmCovers) ||
    Object.values(runbook.modes ?? {}).some((m) => m.steps.some((s) => s.confirmCovers));
  if (!rollback && !hasSequence) return [];
  return [`On a terminal without --yes, when a step fails ${where}`, `you choose: ${offer}.`];
}

export function helpText(runbook: Runbook, program: string): string {
  const flags = runbook.flags ?? {};
  const modes = Object.entries(runbook.modes ?? {});
  const options: Array<readonly [string, string]> = [
    ...COMMON_FLAGS,
    ...modes.map(([name, mode]) => [`--${name}`, `run the ${name} steps: ${mode.title}`] as const),
    ...Object.entries(flags).map(
      ([name, f]) =>
        [f.type === 'string' ? `--${name} <value>` : `--${name}`, f.description] as const,
    ),
  ];
  const optionWidth = Math.max(...options.map(([flag]) => flag.length));
  const gates = [
    ...(runbook.requires?.length ? [`requires: ${runbook.requires.join(', ')} completed`] : []),
    ...(runbook.gates ?? []).map((g) => `${g.id}: ${g.describe}`),
  ];
  return [
    `${runbook.id}: ${runbook.title}`,
    '',
    usageLine(
      program,
      flags,
      modes.map(([name]) => name),
    ),
    ...(runbook.description ? ['', runbook.description] : []),
    '',
    'Steps:',
    ...stepLines(runbook.steps),
    ...modes.flatMap(([name, mode]) => [
      '',
      `Steps with --${name} (${mode.title}):`,
      ...(mode.description ? [`  ${mode.description}`] : []),
      ...stepLines(mode.steps),
    ]),
    ...(gates.length
      ? ['', 'Gates (checked before the first step):', ...gates.map((g) => `  ${g}`)]
      : []),
    '',
    'Options:',
    ...options.map(([flag, text]) => `  ${flag.padEnd(optionWidth)}  ${text}`),
    '',
    'Confirmation: read steps never ask. change and high steps ask yes/no (default no); --yes',
    'answers them. An irreversible step asks you to type the resource name; without a terminal',
    'it passes only with --yes --confirm <name> naming exactly that resource: --yes alone is',
    'refused. Without a terminal, every confirmation the run needs is checked before the first',
    'step, and one that would be refused stops the run there (exit 2, nothing changed). A step',
    'marked "one confirmation for A–B" asks once for the whole sequence before A starts.',
    'A dry run asks nothing. Gates open only with --override-gate "<reason>", never with --yes.',
    ...afterFailure(runbook),
    ...(modes.length
      ? ['A run with a mode flag never counts as this runbook having completed.']
      : []),
    '',
    'Exit codes: 0 ok, 1 a step failed, 2 usage, settings or confirmation refused,',
    '3 gate closed, 4 locked by another run, 130 interrupted (re-run to resume).',
    'Every run is recorded in the audit log (AUDIT_LOG); review it with ./runbooks/audit.mts.',
    '',
  ].join('\n');
}
