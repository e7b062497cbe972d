// Names the runbooks and the sandbox must spell the same way: the migration record on
// beersystem's Deployment (written by 05-migrate, read by 06-decommission's 24 h gate) and the
// ConfigMap where each completed runbook leaves its record.

/** ISO time of the migration (T040), on Deployment beersystem/beersystem. */
export const MIGRATION_ANNOTATION = 'redis-shared.runbooks/migrated-at';
/** the run id of the migration that wrote MIGRATION_ANNOTATION */
export const MIGRATED_BY_RUN_ANNOTATION = 'redis-shared.runbooks/migrated-by-run';

/** The migration record on beersystem's Deployment, from its annotations. */
export function migrationRecordOf(
  annotations: Readonly<Record<string, string>>,
): { at: string; runId: string | undefined } | undefined {
  const at = annotations[MIGRATION_ANNOTATION];
  return at ? { at, runId: annotations[MIGRATED_BY_RUN_ANNOTATION] } : undefined;
}

/** where beersystem runs */
export const BEERSYSTEM = { namespace: 'beersystem', deployment: 'beersystem' } as const;

/** defaults of RUNBOOKS_RECORD_NAME / RUNBOOKS_NAMESPACE: one key per completed runbook */
export const RUNBOOKS_RECORD = { name: 'redis-shared-runbooks', namespace: 'default' } as const;

/**
 * Every id evidence is recorded under: the success criteria (SC-…) and the user stories'
 * acceptance scenarios (US<story>-AS-<n>) of the specification, then the figures of the day-2
 * runbooks. A typo is a compile error, and the report finds each under the one spelling.
 */
export const EVIDENCE_IDS = [
  'SC-001',
  'SC-002',
  'SC-003',
  'SC-004',
  'SC-005',
  'SC-006',
  'SC-007',
  'SC-008',
  'SC-009',
  'SC-010',
  'US1-AS-1',
  'US1-AS-2',
  'US1-AS-3',
  'US2-AS-1',
  'US2-AS-2',
  'US2-AS-3',
  'US3-AS-1',
  'US3-AS-2',
  'US3-AS-3',
  'US4-AS-1',
  'US4-AS-2',
  'US4-AS-3',
  'US4-AS-4',
  'US4-AS-5',
  'US4-AS-6',
  'BACKUP',
  'RESTORE-RPO',
  'RESTORE-RTO',
  'ROTATION',
] as const;
export type EvidenceId = (typeof EVIDENCE_IDS)[number];

/**
 * The objects named after redis-shared's release: the chart's StatefulSets, pods, PVCs and
 * Services (as it renders them), and the module's own (external Service, metrics, rules,
 * dashboard).
 */
export function releaseNames(redis: { release: string; namespace: string }) {
  const r = redis.release;
  const host = (service: string) => `${service}.${redis.namespace}.svc.cluster.local`;
  const role = (name: string) => ({
    set: name,
    pod: `${name}-0`,
    pvc: `redis-data-${name}-0`,
    service: name,
    host: host(name),
  });
  const master = role(`${r}-master`);
  const replica = role(`${r}-replicas`);
  return {
    master,
    replica,
    pods: [master.pod, replica.pod],
    external: `${r}-external`,
    metricsService: `${r}-metrics`,
    serviceMonitor: r,
    rule: r,
    dashboard: `${r}-dashboard`,
  };
}
