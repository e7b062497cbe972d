// 06-decommission's gate: VALIDATION_WINDOW since the migration record on beersystem, read from
// the cluster. Closed, it says when it opens ("opens in 3h12m, at …").
import { formatDuration } from '../duration.ts';
import type { GateResult } from '../engine/gates.ts';

export function decommissionWindow(
  migratedAt: string | undefined,
  windowMs: number,
  now: number,
): GateResult {
  if (!migratedAt) {
    return {
      open: false,
      reason:
        'beersystem has no migration record (annotation redis-shared.runbooks/migrated-at): run ./runbooks/05-migrate.mts first',
    };
  }
  const at = Date.parse(migratedAt);
  if (Number.isNaN(at)) {
    return {
      open: false,
      reason: `the migration record "${migratedAt}" is not a time: re-run ./runbooks/05-migrate.mts to write it again`,
    };
  }
  const opens = at + windowMs;
  if (now >= opens) {
    return {
      open: true,
      reason: `beersystem has run on redis-shared for ${formatDuration(now - at)} since ${migratedAt} (window ${formatDuration(windowMs)})`,
    };
  }
  return {
    open: false,
    reason: `the validation window opens in ${formatDuration(opens - now)}, at ${new Date(opens).toISOString()} (${formatDuration(windowMs)} after the migration at ${migratedAt}); run again then`,
  };
}
