// The Redis password lives in one Secret replicated into the Redis namespace and into
// beersystem's (a secretKeyRef cannot cross namespaces, FR-012a). This reads both copies,
// registers the value for masking before anything else sees it, and compares them without
// ever printing either.
import type { Config } from '../config.ts';
import type { Kube } from './kube.ts';

export interface SecretCopy {
  namespace: string;
  present: boolean;
}

export interface ReplicatedSecret {
  /** the Secret's name and key, as configured */
  name: string;
  key: string;
  copies: SecretCopy[];
  /** the value in the Redis namespace (registered for masking); undefined when absent */
  password: string | undefined;
  /** every copy is present and holds the same value */
  matches: boolean;
  /** one sentence that names what differs, never a value */
  summary: string;
}

export async function readReplicatedSecret(
  kube: Pick<Kube, 'secretValue'>,
  cfg: Pick<Config, 'redis' | 'beersystem'>,
): Promise<ReplicatedSecret> {
  const { secretName: name, secretKey: key } = cfg.redis;
  const namespaces = [cfg.redis.namespace, cfg.beersystem.namespace];
  // secretValue registers each value for masking before it returns.
  const values = await Promise.all(namespaces.map((ns) => kube.secretValue(ns, name, key)));
  const copies = namespaces.map((namespace, i) => ({
    namespace,
    present: values[i] !== undefined,
  }));
  const missing = copies.filter((c) => !c.present).map((c) => c.namespace);
  const matches = missing.length === 0 && values.every((v) => v === values[0]);
  const where = namespaces.join(' and ');
  const summary =
    missing.length > 0
      ? `Secret ${name} (key ${key}) is missing in ${missing.join(' and ')}: apply module.redis_shared (02-deploy), which creates every copy`
      : matches
        ? `Secret ${name} (key ${key}) holds the same password in ${where}`
        : `Secret ${name} (key ${key}) differs between ${where}: apply module.redis_shared (02-deploy) again so every copy comes from the same random_password`;
  return { name, key, copies, password: values[0], matches, summary };
}

/**
 * redis-shared's password from its Secret (in the Redis namespace unless another copy is
 * named), registered for masking; undefined when the Secret or its key is missing.
 */
export function redisPassword(
  kube: Pick<Kube, 'secretValue'>,
  cfg: Pick<Config, 'redis'>,
  namespace = cfg.redis.namespace,
): Promise<string | undefined> {
  return kube.secretValue(namespace, cfg.redis.secretName, cfg.redis.secretKey);
}

/** The same, or an error that says how the Secret comes to be. */
export async function requireRedisPassword(
  kube: Pick<Kube, 'secretValue'>,
  cfg: Pick<Config, 'redis'>,
): Promise<string> {
  const password = await redisPassword(kube, cfg);
  if (password) return password;
  const { namespace, secretName, secretKey } = cfg.redis;
  throw new Error(
    `Secret ${namespace}/${secretName} has no key ${secretKey}: run ./runbooks/02-deploy.mts first (its apply creates it)`,
  );
}
