// npm run rehearse: the whole change against the sandbox (see script/rehearsal.ts). Exit 0 when every
// stage went as planned and every success criterion is met; 5 when the stages went as planned but
// a criterion is not met or not proven (listed last); 1 when a stage failed; 4 when refused to
// start; 130 when interrupted. The sandbox is down either way.
import { join } from 'node:path';
import { REPO_ROOT } from '../lib/config.ts';
import { formatDuration } from '../lib/duration.ts';
import { formatDowntime } from '../lib/phases/migration.ts';
import { REHEARSAL_EXIT, RehearsalRefusedError, rehearsalVerdict, rehearse } from './rehearsal.ts';

const runDir = process.env.SANDBOX_RUN_DIR ?? join(REPO_ROOT, 'sandbox', '.run', 'rehearsal');
const print = (line: string) => process.stderr.write(`${line}\n`);
const controller = new AbortController();
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    print(`\nrehearse: ${sig}, stopping the current runbook and taking the sandbox down…`);
    controller.abort();
  });
}

print(`rehearse: the sandbox runs in ${runDir}`);
const result = await rehearse({ runDir, print, signal: controller.signal }).catch((err) => {
  if (!(err instanceof RehearsalRefusedError)) throw err;
  print(`rehearse: ${err.message}`);
  process.exit(REHEARSAL_EXIT.refused);
});
print('');
if (result.reportMarkdown) print(`report:   ${result.reportMarkdown}`);
if (result.reportHtml) print(`          ${result.reportHtml}  (open it in a browser)`);
const downtime =
  result.downtimeMs === undefined
    ? 'not measured (05 did not finish)'
    : `${formatDowntime({ ms: result.downtimeMs, atMost: result.downtimeAtMost })}${result.downtimeAtMost ? ' (Ready is recorded to the second)' : ''}`;
print(`downtime: ${downtime}`);
print(`audit:    ./runbooks/audit.mts --env-file ${join(runDir, '.env.sandbox')}`);
print(
  `total:    ${formatDuration(result.totalMs)}${result.ok ? '' : ' — the rehearsal did NOT pass'}`,
);
if (result.downExit !== undefined && result.downExit !== 0) {
  print('rehearse: `sandbox down` reported a problem (see above)');
}
// The criteria come last: what a tired reader sees is whether the change did what it promised.
const verdict = rehearsalVerdict(result, controller.signal.aborted);
for (const line of verdict.lines) print(line);
process.exitCode = verdict.code;
