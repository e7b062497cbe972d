// What runbooks/rotate-password.mts decides, as pure functions: whether a plan replaces the
// password and touches nothing but its Secret copies, whether restarting a Deployment costs a
// downtime, whether a refusal is the one a wrong password gets, and how the writer's tally is
// told and judged.
import type { TofuChange } from '../cluster/tofu.ts';
import type { EvidenceId } from '../names.ts';

/** the module's password, replaced to make a new one */
export const PASSWORD_ADDRESS = 'module.redis_shared.random_password.redis';
/** the Secret copies that carry it into every namespace (for_each over the namespaces) */
export const SECRET_COPIES_ADDRESS = 'module.redis_shared.kubernetes_secret_v1.credentials';
/** the evidence id under which the rotation's figures are recorded for the report */
export const ROTATION_EVIDENCE: EvidenceId = 'ROTATION';

export interface RotationPlanVerdict {
  ok: boolean;
  /** what is wrong with the plan, one sentence each */
  problems: string[];
  /** the Secret copies the plan updates */
  copies: string[];
}

/**
 * A rotation plan replaces the password and updates its Secret copies in place, nothing else:
 * anything more means the configuration or the cluster drifted from what the state holds, and
 * that belongs to 02-deploy's plan, not to a password change.
 */
export function judgeRotationPlan(changes: readonly TofuChange[]): RotationPlanVerdict {
  const pending = changes.filter((c) => c.action !== 'no-op');
  const problems: string[] = [];
  const password = pending.find((c) => c.address === PASSWORD_ADDRESS);
  if (password?.action !== 'replace') {
    problems.push(
      `the plan does not replace ${PASSWORD_ADDRESS}${password ? ` (it would ${password.action} it)` : ''}`,
    );
  }
  const copies = pending
    .filter((c) => c.address.startsWith(`${SECRET_COPIES_ADDRESS}[`) && c.action === 'update')
    .map((c) => c.address);
  if (copies.length === 0)
    problems.push(`the plan updates no Secret copy (${SECRET_COPIES_ADDRESS})`);
  for (const c of pending) {
    if (c.address === PASSWORD_ADDRESS || copies.includes(c.address)) continue;
    problems.push(`the plan would also ${c.action} ${c.address}`);
  }
  return { ok: problems.length === 0, problems, copies };
}

/** A Deployment's rollout settings as the API returns them. */
export interface RolloutStrategy {
  type?: string;
  rollingUpdate?: { maxUnavailable?: string | number; maxSurge?: string | number };
}

/** An int-or-percent of `replicas`, rounded as the Deployment controller rounds it. */
export function scaledValue(
  value: string | number | undefined,
  replicas: number,
  fallback: string,
  roundUp: boolean,
): number {
  const v = value ?? fallback;
  if (typeof v === 'number') return v;
  const percent = /^(\d+)%$/.exec(v);
  if (!percent) return Number(v);
  const exact = (Number(percent[1]) * replicas) / 100;
  return roundUp ? Math.ceil(exact) : Math.floor(exact);
}

export interface RestartCost {
  downtime: boolean;
  line: string;
}

/**
 * Whether `kubectl rollout restart` leaves a moment with no Ready pod: Recreate stops every pod
 * first; RollingUpdate keeps at least replicas − maxUnavailable (percentages round down, as
 * maxSurge's round up), and with maxUnavailable 0 a new pod must be Ready before an old one goes.
 */
export function restartCost(strategy: RolloutStrategy | undefined, replicas: number): RestartCost {
  const type = strategy?.type ?? 'RollingUpdate';
  if (type === 'Recreate') {
    return {
      downtime: true,
      line: `strategy Recreate: all ${replicas} pod(s) stop before the new ones start, a downtime until they are Ready`,
    };
  }
  const unavailable = scaledValue(strategy?.rollingUpdate?.maxUnavailable, replicas, '25%', false);
  const surge = scaledValue(strategy?.rollingUpdate?.maxSurge, replicas, '25%', true);
  const kept = replicas - unavailable;
  const settings = `strategy RollingUpdate, ${replicas} replica(s), maxUnavailable ${unavailable}, maxSurge ${surge}`;
  return kept >= 1
    ? {
        downtime: false,
        line: `${settings}: at least ${kept} pod(s) stay Ready while new ones start, no downtime`,
      }
    : {
        downtime: true,
        line: `${settings}: every pod may stop before a new one is Ready, a downtime until it is`,
      };
}

/** The refusal a password Redis does not accept gets (AUTH or the connection's handshake). */
export function isWrongPassword(reply: string): boolean {
  return /WRONGPASS|invalid password|invalid username-password/i.test(reply);
}

/** What the writer counted while the password changed. */
export interface WriterTally {
  /** writes sent (INCR of one counter key) */
  writes: number;
  /** writes answered with an error or not answered in time */
  errors: number;
  /** the longest wait for one answer, in ms (the master's restart shows here) */
  longestWaitMs: number;
  /** the counter's value when the writer stopped, read back from redis-shared */
  counterAtEnd: number;
  /** the writes acknowledged with the counter's value */
  acknowledged: number;
  /** the first error, masked */
  firstError?: string;
  startedAt: string;
  stoppedAt: string;
}

/** Acknowledged writes the counter does not hold: writes redis-shared said it took, then lost. */
export function lostWrites(t: Pick<WriterTally, 'acknowledged' | 'counterAtEnd'>): number {
  return Math.max(0, t.acknowledged - t.counterAtEnd);
}

/** No error and nothing lost, and the writer wrote at all. */
export function rotationMet(t: WriterTally): boolean {
  return t.writes > 0 && t.errors === 0 && lostWrites(t) === 0;
}

/** One line for the log and the report: writes, errors, the longest wait, writes lost. */
export function describeWrites(t: WriterTally): string {
  const seconds = (t.longestWaitMs / 1000).toFixed(1);
  const errors =
    t.errors === 0 ? '0 write errors' : `${t.errors} write errors (first: ${t.firstError ?? '?'})`;
  return `${t.writes} writes through the LoadBalancer from ${t.startedAt} to ${t.stoppedAt}: ${errors}, ${lostWrites(t)} acknowledged writes lost, the longest wait for an answer ${seconds} s`;
}
