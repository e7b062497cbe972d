// `npm run bench:rehearse`: the whole rehearsal (sandbox up → 01…07 → down) timed, target ≤ 90 s
// on this machine, and the migration's downtime taken apart: how much of it is beyond the pod
// stop (T035 + T036) and the pod start (T040), target ≤ 2 s. The tofu apply (T039) is inside
// that overhead and is shown on its own. Run a few times: the machine is shared.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readAuditEntries } from '../lib/audit/audit.ts';
import { formatDuration } from '../lib/duration.ts';
import { readNotes } from '../lib/engine/notes.ts';
import { migrationAttempts, type TimelineStep } from '../lib/phases/report.ts';
import { rehearse } from '../script/rehearsal.ts';

const TOTAL_TARGET_MS = 90_000;
const OVERHEAD_TARGET_MS = 2_000;

function took(steps: TimelineStep[], id: string): number {
  const s = steps.filter((x) => x.step === id).at(-1);
  return s?.endedAt ? Date.parse(s.endedAt) - Date.parse(s.startedAt) : 0;
}

const runDir = mkdtempSync(join(tmpdir(), 'bench-rehearse-'));
rmSync(runDir, { recursive: true });
const lines: string[] = [];
const result = await rehearse({ runDir, print: (l) => lines.push(l), stdio: 'pipe' });
if (!result.ok) {
  console.error(lines.join('\n'));
  console.error(
    `bench:rehearse: the rehearsal failed at ${result.failed?.stage.title ?? '?'}; its sandbox dir: ${runDir}`,
  );
  process.exit(1);
}
const auditLog = join(runDir, 'audit.jsonl');
const timeline = migrationAttempts(await readAuditEntries(auditLog), await readNotes(auditLog)).at(
  -1,
);
const steps = timeline?.steps ?? [];
const downtime = timeline?.downtime?.ms ?? Number.NaN;
const stop = took(steps, 'T035') + took(steps, 'T036');
const start = took(steps, 'T040');
const apply = took(steps, 'T039');
const overhead = downtime - stop - start;

console.log('stage                                              time');
for (const s of result.stages) console.log(`${s.stage.title.padEnd(50)} ${formatDuration(s.ms)}`);
console.log('');
const verdict = (ok: boolean) => (ok ? 'met' : 'NOT met');
console.log(
  `rehearsal total ${formatDuration(result.totalMs)} (target ≤ ${formatDuration(TOTAL_TARGET_MS)}): ${verdict(result.totalMs <= TOTAL_TARGET_MS)}`,
);
console.log(
  `downtime ${formatDuration(downtime)} = pod stop ${formatDuration(stop)} (T035+T036) + pod start ${formatDuration(start)} (T040) + overhead ${formatDuration(overhead)}, of which tofu apply ${formatDuration(apply)} (T039)`,
);
console.log(
  `overhead beyond pod stop and start (target ≤ ${formatDuration(OVERHEAD_TARGET_MS)}): ${verdict(overhead <= OVERHEAD_TARGET_MS)}`,
);
console.log(
  `overhead without the tofu apply: ${formatDuration(overhead - apply)}: ${verdict(overhead - apply <= OVERHEAD_TARGET_MS)}`,
);
rmSync(runDir, { recursive: true, force: true });
