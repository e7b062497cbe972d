// What 05-migrate and 06-decommission judge about beersystem, as plain functions of what the
// cluster answered: which Redis its environment names, the environment to restore on rollback
// (as a JSON patch), backups without secret values, and the functional check's verdict.

import type { DeploymentInfo, EnvVar, KubeObject } from '../cluster/kube.ts';
import type { Config } from '../config.ts';
import { formatDuration } from '../duration.ts';
import { maskDeep } from '../mask.ts';

export const REDIS_ENV_NAMES = ['REDIS_HOST', 'REDIS_PORT', 'REDIS_PASSWORD'] as const;

/** beersystem's Redis environment with no secret value in it: what a note may hold. */
export type RedisEnv = EnvVar[];

export function sharedRedisHost(cfg: Pick<Config, 'redis'>): string {
  return `${cfg.redis.release}-master.${cfg.redis.namespace}.svc.cluster.local`;
}

export function containerOf(
  deployment: DeploymentInfo,
  name: string,
): DeploymentInfo['containers'][number] | undefined {
  return deployment.containers.find((c) => c.name === name) ?? deployment.containers[0];
}

/** REDIS_* entries; a literal password value is replaced, so the result can be noted. */
export function redisEnvOf(env: readonly EnvVar[]): RedisEnv {
  return env
    .filter((e) => (REDIS_ENV_NAMES as readonly string[]).includes(e.name))
    .map((e) =>
      e.name === 'REDIS_PASSWORD' && e.value !== undefined
        ? { name: e.name, value: LITERAL_PASSWORD }
        : { ...e },
    );
}

/** stands for a literal password that was not recorded (it would be a secret in a note) */
export const LITERAL_PASSWORD = '<literal value, not recorded>';

/** The env names redis-shared: its master's DNS name and the replicated Secret by reference. */
export function pointsAtSharedRedis(env: readonly EnvVar[], cfg: Pick<Config, 'redis'>): boolean {
  const get = (name: string) => env.find((e) => e.name === name);
  const ref = get('REDIS_PASSWORD')?.valueFrom?.secretKeyRef;
  return (
    get('REDIS_HOST')?.value === sharedRedisHost(cfg) &&
    ref?.name === cfg.redis.secretName &&
    ref.key === cfg.redis.secretKey
  );
}

export function describeRedisEnv(env: readonly EnvVar[]): string {
  return REDIS_ENV_NAMES.map((name) => {
    const e = env.find((x) => x.name === name);
    if (!e) return `${name} unset`;
    const ref = e.valueFrom?.secretKeyRef;
    if (ref) return `${name} from Secret ${ref.name}/${ref.key}`;
    return name === 'REDIS_PASSWORD' ? `${name} literal` : `${name}=${e.value}`;
  }).join(', ');
}

/**
 * JSON patch ops that give container `index` exactly `wanted` for the REDIS_* variables,
 * leaving every other variable alone (disabling the tofu module does not restore them).
 */
export function restoreEnvPatch(
  current: readonly EnvVar[],
  wanted: RedisEnv,
  index: number,
): { op: string; path: string; value?: unknown }[] {
  if (wanted.some((e) => e.value === LITERAL_PASSWORD)) {
    throw new Error(
      'the noted REDIS_PASSWORD was a literal value, which was never recorded: restore it from your own records with kubectl set env',
    );
  }
  const base = `/spec/template/spec/containers/${index}/env`;
  const kept = current.filter((e) => !(REDIS_ENV_NAMES as readonly string[]).includes(e.name));
  const env = [...kept, ...wanted.map((e) => ({ ...e }))];
  return [{ op: current.length ? 'replace' : 'add', path: base, value: env }];
}

const VOLATILE_METADATA = [
  'managedFields',
  'resourceVersion',
  'uid',
  'generation',
  'creationTimestamp',
  'selfLink',
];

/**
 * An object as a backup keeps it: no status, no server-set metadata, literal env values of
 * anything that looks like a secret replaced, and every registered secret masked.
 */
export function backupOf(obj: KubeObject): KubeObject {
  const copy = JSON.parse(JSON.stringify(obj)) as KubeObject;
  delete copy.status;
  for (const key of VOLATILE_METADATA) delete (copy.metadata as Record<string, unknown>)[key];
  const annotations = copy.metadata.annotations;
  if (annotations) delete annotations['kubectl.kubernetes.io/last-applied-configuration'];
  const containers = [
    ...(copy.spec?.template?.spec?.containers ?? []),
    ...(copy.spec?.template?.spec?.initContainers ?? []),
  ] as { env?: EnvVar[] }[];
  for (const c of containers) {
    for (const e of c.env ?? []) {
      if (e.value !== undefined && /PASS|SECRET|TOKEN|KEY/i.test(e.name)) e.value = '<removed>';
    }
  }
  return maskDeep(copy);
}

export interface FunctionalCheck {
  health: { status: number; redis: string | undefined };
  login: { status: number; session: string | undefined };
  session: { status: number; user: string | undefined };
  cacheWrite: { status: number };
  cacheRead: { status: number; value: string | undefined };
}

export function judgeFunctional(
  check: FunctionalCheck,
  expectedRedis: string,
  user: string,
  value: string,
): { ok: boolean; line: string } {
  const problems: string[] = [];
  if (check.health.status !== 200) problems.push(`/healthz answered ${check.health.status}`);
  if (!check.health.redis?.startsWith(expectedRedis)) {
    problems.push(`/healthz names ${check.health.redis ?? 'no Redis'}, not ${expectedRedis}`);
  }
  if (check.login.status !== 200 || !check.login.session)
    problems.push(`login answered ${check.login.status}`);
  if (check.session.status !== 200 || check.session.user !== user) {
    problems.push(`the session did not survive a second request (${check.session.status})`);
  }
  if (check.cacheWrite.status !== 200)
    problems.push(`cache write answered ${check.cacheWrite.status}`);
  if (check.cacheRead.status !== 200 || check.cacheRead.value !== value) {
    problems.push(`cache read gave ${JSON.stringify(check.cacheRead.value ?? null)}`);
  }
  return problems.length
    ? { ok: false, line: problems.join('; ') }
    : {
        ok: true,
        line: `health 200 on ${check.health.redis}; login → session kept on a second request; cache write/read matched`,
      };
}

/** Lines of a beersystem log that report a Redis error (the app logs `redis error (…)`). */
export function redisErrorLines(log: string): string[] {
  return log.split('\n').filter((l) => /redis error|ECONNREFUSED|NOAUTH|WRONGPASS/i.test(l));
}

/**
 * When beersystem became Ready, as the cluster recorded it: the latest Ready transition among
 * its pods, once all `replicas` of them are Ready. A pod that restarted later moves it later,
 * never earlier, so a record taken from it can only keep 06's 24 h gate closed longer.
 * Undefined, with why, when the cluster cannot say.
 */
export function readyTimeOf(
  pods: readonly {
    name: string;
    ready: boolean;
    readySince: string | undefined;
    deleting: boolean;
  }[],
  replicas: number,
): { at: string } | { at: undefined; why: string } {
  const live = pods.filter((p) => !p.deleting);
  const ready = live.filter((p) => p.ready);
  if (replicas < 1 || ready.length < replicas) {
    return { at: undefined, why: `${ready.length}/${replicas} pods are Ready` };
  }
  const times = ready.map((p) => Date.parse(p.readySince ?? ''));
  if (times.some((t) => !Number.isFinite(t))) {
    const without = ready.filter((p) => !Number.isFinite(Date.parse(p.readySince ?? '')));
    return {
      at: undefined,
      why: `the Ready condition of ${without.map((p) => p.name).join(', ')} carries no lastTransitionTime`,
    };
  }
  return { at: new Date(Math.max(...times)).toISOString() };
}

/** A time as Kubernetes records a condition's transition: whole seconds, no fraction. */
export function recordedToTheSecond(at: string): boolean {
  return Date.parse(at) % 1000 === 0;
}

/** A downtime in ms; `atMost` when counted to the end of the second Ready was recorded in. */
export interface Downtime {
  ms: number;
  atMost: boolean;
}

/**
 * The downtime from its start to the Ready time the cluster recorded. Kubernetes keeps a
 * condition's lastTransitionTime to the second (metav1.Time), so beersystem became Ready somewhere
 * within that second: the downtime is counted to its end, an upper bound that cannot fall below
 * zero when the whole outage fits inside one second. A time with a fraction is taken as it is.
 */
export function downtimeUntilReady(startedAt: string, readyAt: string): Downtime {
  const ready = Date.parse(readyAt);
  const atMost = recordedToTheSecond(readyAt);
  return { ms: (atMost ? ready + 1000 : ready) - Date.parse(startedAt), atMost };
}

/** `1.9s`, or `1.9s at most` when counted to the end of the second the cluster recorded. */
export function formatDowntime(d: Downtime): string {
  return `${formatDuration(d.ms)}${d.atMost ? ' at most' : ''}`;
}

/**
 * The downtime to expect, said before the question at T035 and in a dry run: the last measured
 * one (a rehearsal's in the sandbox, the last real run's otherwise), named as such.
 */
export function expectedDowntimeLine(
  measured: { value: unknown; run_id: string; ts: string } | undefined,
): string {
  if (!measured || typeof measured.value !== 'number')
    return 'expected downtime: not measured yet (no earlier run reached T040); the rehearsal (npm run rehearse) measures it';
  return `expected downtime: about ${formatDuration(measured.value)}, as measured by run ${measured.run_id} at ${measured.ts} (T035 to beersystem Ready and healthy)`;
}
