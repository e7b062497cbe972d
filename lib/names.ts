// Names the runbooks and the sandbox must spell the same way: the migration record on
// beersystem's Deployment (written by 05-migrate, read by 06-decommission's 24 h gate) and the
// ConfigMap where each completed runbook leaves its record.

/** ISO time of the migration (T040), on Deployment beersystem/beersystem. */
export const MIGRATION_ANNOTATION = 'redis-shared.runbooks/migrated-at';
/** the run id of the migration that wrote MIGRATION_ANNOTATION */
export const MIGRATED_BY_RUN_ANNOTATION = 'redis-shared.runbooks/migrated-by-run';

/** where beersystem runs */
export const BEERSYSTEM = { namespace: 'beersystem', deployment: 'beersystem' } as const;

/** defaults of RUNBOOKS_RECORD_NAME / RUNBOOKS_NAMESPACE: one key per completed runbook */
export const RUNBOOKS_RECORD = { name: 'redis-shared-runbooks', namespace: 'default' } as const;
