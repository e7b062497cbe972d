// The text of every runbook's --help: its steps and risks, gates, flags, the confirmation rule
// and the exit codes, built from the definition so it cannot drift from what the engine does.
import type { Runbook } from './runbook.ts';
import { COMMON_FLAGS, usageLine } from './runbook-args.ts';

export function helpText(runbook: Runbook, program: string): string {
  const flags = runbook.flags ?? {};
  const stepRows = runbook.steps.map((s) => [s.id, s.risk, s.title]);
  const idWidth = Math.max(...stepRows.map((r) => r[0]?.length ?? 0));
  const riskWidth = Math.max(...stepRows.map((r) => r[1]?.length ?? 0));
  const options: Array<readonly [string, string]> = [
    ...COMMON_FLAGS,
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
    usageLine(program, flags),
    ...(runbook.description ? ['', runbook.description] : []),
    '',
    'Steps:',
    ...stepRows.map(
      ([id, risk, title]) => `  ${id?.padEnd(idWidth)}  ${risk?.padEnd(riskWidth)}  ${title}`,
    ),
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
    'refused. Without a terminal and without --yes, any step that asks is refused (exit 2).',
    'A dry run asks nothing. Gates open only with --override-gate "<reason>", never with --yes.',
    '',
    'Exit codes: 0 ok, 1 a step failed, 2 usage, settings or confirmation refused,',
    '3 gate closed, 4 locked by another run, 130 interrupted (re-run to resume).',
    'Every run is recorded in the audit log (AUDIT_LOG); review it with ./runbooks/audit.mts.',
    '',
  ].join('\n');
}
