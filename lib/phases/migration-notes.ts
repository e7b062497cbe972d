// The notes 05-migrate writes that other phases read: 06's validation window, 07's report and
// the rehearsal's summary find the downtime by these keys, so they are named in one place.
export const MIGRATE_RUNBOOK = '05-migrate';
export const DOWNTIME_START_NOTE = 'downtime.start';
export const DOWNTIME_END_NOTE = 'downtime.end';
export const DOWNTIME_MS_NOTE = 'downtime.ms';
