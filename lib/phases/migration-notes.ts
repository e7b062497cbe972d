// The notes one runbook writes and others read: 06's validation window, 07's report and the
// rehearsal's summary find 05's downtime by these keys, the report 07's figures, so they are
// named in one place.
export const MIGRATE_RUNBOOK = '05-migrate';
export const DOWNTIME_START_NOTE = 'downtime.start';
export const DOWNTIME_END_NOTE = 'downtime.end';
export const DOWNTIME_MS_NOTE = 'downtime.ms';
/** What beersystem's users saw in the window (lib/phases/health-prober.ts HealthRecord). */
export const USER_HEALTH_NOTE = 'beersystem.health';
/** 07's note with the figures for the report's plots. */
export const BENCHMARK_NOTE = 'benchmark.figures';
