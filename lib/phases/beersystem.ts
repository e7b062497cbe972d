// beersystem as 05-migrate, 06-decommission and 07-polish see it: its Deployment and pods, its
// health and functions through the API server's service proxy (or BEERSYSTEM_URL), and the two
// Redis servers it may be using, reached from the operator's machine.
import type { DeploymentInfo, EnvVar, Kube } from '../cluster/kube.ts';
import { requireRedisPassword } from '../cluster/secrets.ts';
import type { StepContext } from '../engine/step-context.ts';
import type { RedisTarget } from '../redis/redis-probe.ts';
import {
  containerOf,
  type FunctionalCheck,
  judgeFunctional,
  pointsAtSharedRedis,
  sharedRedisHost,
} from './migration.ts';

/** beersystem's HTTP port: the Service `beersystem:8080`. */
export const BEERSYSTEM_PORT = 8080;

export interface BeersystemState {
  deployment: DeploymentInfo;
  env: EnvVar[];
  containerIndex: number;
  onShared: boolean;
}

export async function beersystemState(
  ctx: StepContext,
  kube: Kube = ctx.kube,
): Promise<BeersystemState> {
  const { namespace, deployment: name, container } = ctx.cfg.beersystem;
  const deployment = await kube.deployment(namespace, name);
  if (!deployment) {
    throw new Error(
      `Deployment ${namespace}/${name} not found: check BEERSYSTEM_NAMESPACE and BEERSYSTEM_DEPLOYMENT in your settings`,
    );
  }
  const c = containerOf(deployment, container);
  const env = c?.env ?? [];
  return {
    deployment,
    env,
    containerIndex: Math.max(0, deployment.containers.indexOf(c!)),
    onShared: pointsAtSharedRedis(env, ctx.cfg),
  };
}

export async function beersystemPods(ctx: StepContext, selector: string) {
  return ctx.kube.pods(ctx.cfg.beersystem.namespace, selector);
}

interface HttpAnswer {
  status: number;
  body: Record<string, unknown>;
}

/** GET a beersystem path: BEERSYSTEM_URL when set, else through the API's service proxy. */
export async function beersystemGet(ctx: StepContext, path: string): Promise<HttpAnswer> {
  const base = process.env.BEERSYSTEM_URL;
  let status: number;
  let text: string;
  if (base) {
    const res = await fetch(new URL(path, base), { signal: AbortSignal.timeout(5000) });
    status = res.status;
    text = await res.text();
  } else {
    const res = await ctx.kube.proxyGet(
      ctx.cfg.beersystem.namespace,
      `${ctx.cfg.beersystem.deployment}:${BEERSYSTEM_PORT}`,
      path,
    );
    status = res.status;
    text = res.body;
  }
  let body: Record<string, unknown> = {};
  try {
    body = JSON.parse(text) as Record<string, unknown>;
  } catch {
    body = { text };
  }
  return { status, body };
}

/** /healthz answers 200 and names the Redis it uses (host:port). */
export async function beersystemHealth(
  ctx: StepContext,
): Promise<{ ok: boolean; redis: string | undefined; status: number }> {
  try {
    const res = await beersystemGet(ctx, '/healthz');
    const redis = typeof res.body.redis === 'string' ? res.body.redis : undefined;
    return { ok: res.status === 200, redis, status: res.status };
  } catch {
    return { ok: false, redis: undefined, status: 0 };
  }
}

/** Login, the session on a second request, a cache write and read (US4 AS-4, SC-009). */
export async function functionalCheck(
  ctx: StepContext,
  expectedRedis: string,
): Promise<{ ok: boolean; line: string; check: FunctionalCheck }> {
  const user = `runbook-${ctx.runId.slice(-6)}`;
  const value = `v-${Date.now()}`;
  const health = await beersystemGet(ctx, '/healthz');
  const login = await beersystemGet(ctx, `/login?user=${encodeURIComponent(user)}`);
  const session = typeof login.body.session === 'string' ? login.body.session : undefined;
  const again = await beersystemGet(ctx, `/session?id=${encodeURIComponent(session ?? '')}`);
  const key = `runbook-check-${ctx.runId.slice(-6)}`;
  const write = await beersystemGet(ctx, `/cache?key=${key}&value=${encodeURIComponent(value)}`);
  const read = await beersystemGet(ctx, `/cache?key=${key}`);
  const check: FunctionalCheck = {
    health: {
      status: health.status,
      redis: typeof health.body.redis === 'string' ? health.body.redis : undefined,
    },
    login: { status: login.status, session },
    session: {
      status: again.status,
      user: typeof again.body.user === 'string' ? again.body.user : undefined,
    },
    cacheWrite: { status: write.status },
    cacheRead: {
      status: read.status,
      value: typeof read.body.value === 'string' ? read.body.value : undefined,
    },
  };
  return { ...judgeFunctional(check, expectedRedis, user, value), check };
}

/** redis-shared through its LoadBalancer, with the replicated password (registered for masking). */
export async function sharedRedisTarget(ctx: StepContext, name: string): Promise<RedisTarget> {
  const { lbIp, port } = ctx.cfg.redis;
  const password = await requireRedisPassword(ctx.kube, ctx.cfg);
  return { host: lbIp, port, password, name };
}

/**
 * One connection to redis-shared through its LoadBalancer for `use`, closed afterwards. ioredis
 * loads here, in the step that needs it, not when the runbook starts (`--help` stays light).
 */
export async function withSharedRedis<T>(
  ctx: StepContext,
  name: string,
  use: (client: import('ioredis').Redis) => Promise<T>,
): Promise<T> {
  const { openRedis } = await import('../redis/redis-probe.ts');
  const client = await openRedis(await sharedRedisTarget(ctx, name));
  try {
    return await use(client);
  } finally {
    client.disconnect();
  }
}

/**
 * The old Redis, reached at its pod's address from this machine (it has no LoadBalancer), with
 * the password beersystem's noted environment named. Undefined when it has no running pod.
 */
export async function oldRedisTarget(
  ctx: StepContext,
  oldEnv: readonly EnvVar[],
  name: string,
): Promise<RedisTarget | undefined> {
  const { namespace, deployment } = ctx.cfg.oldRedis;
  const kube = ctx.kube;
  const dep = await kube.deployment(namespace, deployment);
  if (!dep) return undefined;
  const pod = (await kube.pods(namespace, dep.selector)).find((p) => p.ready && p.podIP);
  if (!pod?.podIP) return undefined;
  const ref = oldEnv.find((e) => e.name === 'REDIS_PASSWORD')?.valueFrom?.secretKeyRef;
  const password = ref
    ? await kube.secretValue(ctx.cfg.beersystem.namespace, ref.name, ref.key)
    : undefined;
  const port = Number(oldEnv.find((e) => e.name === 'REDIS_PORT')?.value ?? 6379);
  return { host: pod.podIP, port, ...(password ? { password } : {}), name };
}

export function expectedSharedRedis(ctx: StepContext): string {
  return `${sharedRedisHost(ctx.cfg)}:${ctx.cfg.redis.port}`;
}
