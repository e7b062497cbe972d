// The run lock every operator shares: a coordination.k8s.io/v1 Lease in the cluster the
// runbooks change (RUNBOOKS_NAMESPACE/RUNBOOKS_LEASE_NAME), so two laptops, or a laptop and a CI
// job, cannot run at once. Acquire, takeover, renewal and release are all updates carrying the
// resourceVersion that was read, so of two runs racing for the same lease exactly one wins
// (the other gets 409 Conflict and reads again). A crashed run leaves its lease behind; it is
// taken over once it has not been renewed for leaseDurationSeconds (LOCK_TTL).
//
// Timing as client-go's leader election (k8s.io/client-go/tools/leaderelection, the defaults
// kube-controller-manager uses: LeaseDuration 15 s, RenewDeadline 10 s, RetryPeriod 2 s): the
// lease is short and renewed every retry period; a renewal that fails is retried until the renew
// deadline (two thirds of the duration) has passed since the last good one, and only then is the
// lock lost, before anyone else could take the lease. A killed run's lease is free within
// LOCK_TTL, from any host.
import { hostname } from 'node:os';
import { createKubeApi, type KubeApi, KubeError } from '../cluster/kube-api.ts';
import type { Config } from '../config.ts';
import {
  type LockHolder,
  type LockOwner,
  type LockResult,
  processIsAlive,
  type RunLock,
} from './lock.ts';
import { RenewLoop } from './renew-loop.ts';

export const HOLDER_ANNOTATION = 'redis-shared.runbooks/holder';
const MAX_PASSES = 10;
/** client-go's RetryPeriod: how often a held lease is renewed (less for a very short lease) */
export const LEASE_RETRY_MS = 2_000;
/** the release on the way out: a few quick tries, so a passing API error does not keep it held */
const RELEASE_TRIES = 3;
const RELEASE_PAUSE_MS = 200;

export interface LeaseObject {
  apiVersion: 'coordination.k8s.io/v1';
  kind: 'Lease';
  metadata: {
    name: string;
    namespace: string;
    resourceVersion?: string;
    annotations?: Record<string, string>;
  };
  spec: {
    holderIdentity?: string | null;
    leaseDurationSeconds?: number;
    acquireTime?: string;
    renewTime?: string;
    leaseTransitions?: number;
  };
}

/** A RunLock that can also be lost while held, and looked at without taking it. */
export interface ClusterRunLock extends RunLock {
  /** undefined while the lock is held (or was never taken); why it was lost otherwise */
  lostReason(): string | undefined;
  /** the live holder, if any, without taking the lock (a dry run says who holds it) */
  peek(): Promise<LockHolder | undefined>;
}

export interface LeaseRunLockOptions {
  /** how often the lease is renewed; LEASE_RETRY_MS (or a third of a shorter LOCK_TTL) by default */
  renewEveryMs?: number;
  now?: () => number;
  api?: KubeApi;
  /** called once, when a renewal fails or another run took the lease */
  onLost?: (reason: string) => void;
}

/** `operator@host/run-id/runbook`: who, where, which run, which runbook, readable in kubectl. */
export function holderIdentity(owner: LockOwner): string {
  return `${owner.operator}@${owner.host}/${owner.runId}/${owner.runbook}`;
}

// Lease times are MicroTime: RFC 3339 with exactly six fractional digits.
function microTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

export class LeaseRunLock implements ClusterRunLock {
  readonly location: string;
  private readonly api: KubeApi;
  private readonly path: string;
  private readonly now: () => number;
  private readonly durationSeconds: number;
  private held: { lease: LeaseObject; holder: LockHolder } | undefined;
  private lost: string | undefined;
  private readonly renewal = new RenewLoop();
  /** when the lease was last written by this run (acquired or renewed) */
  private lastRenewedMs = 0;

  constructor(
    private readonly cfg: Config,
    private readonly options: LeaseRunLockOptions = {},
  ) {
    const { namespace, leaseName } = cfg.runbooks;
    this.location = `Lease ${namespace}/${leaseName} (context ${cfg.kubeContext})`;
    this.api = options.api ?? createKubeApi(cfg);
    this.path = `/apis/coordination.k8s.io/v1/namespaces/${namespace}/leases/${leaseName}`;
    this.now = options.now ?? Date.now;
    this.durationSeconds = Math.max(1, Math.ceil(cfg.timeouts.lockTtlMs / 1000));
  }

  lostReason(): string | undefined {
    return this.lost;
  }

  async peek(): Promise<LockHolder | undefined> {
    const lease = await this.read();
    if (!lease) return undefined;
    const holder = holderOf(lease);
    return holder && !this.staleReason(lease, holder) ? holder : undefined;
  }

  async acquire(owner: LockOwner): Promise<LockResult> {
    for (let pass = 0; pass < MAX_PASSES; pass++) {
      const current = await this.read();
      // Timed at the write, not when acquire began: the first call may wait on a slow API, and a
      // short lease written with an old renewTime would be stale the moment it exists.
      const nowMs = this.now();
      const holder: LockHolder = {
        ...owner,
        acquiredAt: new Date(nowMs).toISOString(),
        expiresAt: new Date(nowMs + this.durationSeconds * 1000).toISOString(),
      };
      if (!current) {
        const created = await this.write('POST', this.leaseFor(holder, undefined));
        if (created) return this.granted(created, holder);
        continue;
      }
      const previous = holderOf(current);
      const staleBecause = previous ? this.staleReason(current, previous) : undefined;
      if (previous && !staleBecause) return { acquired: false, holder: previous };
      const taken = await this.write('PUT', this.leaseFor(holder, current));
      if (!taken) continue;
      const result = this.granted(taken, holder);
      return previous && staleBecause
        ? { ...result, takenOverFrom: previous, takeoverReason: staleBecause }
        : result;
    }
    const winner = await this.read();
    const holderNow = winner && holderOf(winner);
    if (holderNow) return { acquired: false, holder: holderNow };
    throw new Error(`could not take ${this.location}: it kept changing under this run; re-run`);
  }

  async release(): Promise<void> {
    await this.renewal.stop();
    const held = this.held;
    this.held = undefined;
    if (!held || this.lost) return;
    const annotations = { ...held.lease.metadata.annotations };
    delete annotations[HOLDER_ANNOTATION];
    const freed: LeaseObject = {
      ...held.lease,
      metadata: { ...held.lease.metadata, annotations },
      spec: { ...held.lease.spec, holderIdentity: null },
    };
    for (let attempt = 1; attempt <= RELEASE_TRIES; attempt++) {
      try {
        // Never clear a lease someone else holds: the resourceVersion makes that a 409.
        await this.write('PUT', freed);
        return;
      } catch {
        if (attempt < RELEASE_TRIES) {
          await new Promise((done) => setTimeout(done, RELEASE_PAUSE_MS * attempt));
        }
      }
    }
    // Not released: it expires LOCK_TTL after its last renewal, as a killed run's would.
  }

  /**
   * The run ends but processes it started survive: stop renewing and leave the lease in their
   * name, so it is not taken over while they may still change the cluster (until it expires).
   */
  async keepFor(pids: readonly number[]): Promise<void> {
    await this.renewal.stop();
    const held = this.held;
    this.held = undefined;
    const pid = pids[0];
    if (!held || this.lost || pid === undefined) return;
    const holder = { ...held.holder, pid, survivors: [...pids] };
    await this.write('PUT', recordingHolder(held.lease, holder)).catch(() => undefined);
  }

  private leaseFor(holder: LockHolder, current: LeaseObject | undefined): LeaseObject {
    const { namespace, leaseName } = this.cfg.runbooks;
    const at = microTime(Date.parse(holder.acquiredAt));
    return {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: {
        name: leaseName,
        namespace,
        ...(current?.metadata.resourceVersion
          ? { resourceVersion: current.metadata.resourceVersion }
          : {}),
        annotations: {
          ...current?.metadata.annotations,
          [HOLDER_ANNOTATION]: JSON.stringify(holder),
        },
      },
      spec: {
        holderIdentity: holderIdentity(holder),
        leaseDurationSeconds: this.durationSeconds,
        acquireTime: at,
        renewTime: at,
        leaseTransitions: (current?.spec.leaseTransitions ?? 0) + (current ? 1 : 0),
      },
    };
  }

  private granted(lease: LeaseObject, holder: LockHolder): { acquired: true; holder: LockHolder } {
    this.held = { lease, holder };
    this.lost = undefined;
    this.lastRenewedMs = this.now();
    const every =
      this.options.renewEveryMs ??
      Math.min(LEASE_RETRY_MS, Math.max(500, Math.floor((this.durationSeconds * 1000) / 3)));
    this.renewal.start(every, () => this.renew());
    return { acquired: true, holder };
  }

  private async renew(): Promise<void> {
    const held = this.held;
    if (!held || this.lost) return;
    const nowMs = this.now();
    const holder = {
      ...held.holder,
      expiresAt: new Date(nowMs + this.durationSeconds * 1000).toISOString(),
    };
    const recorded = recordingHolder(held.lease, holder);
    const next: LeaseObject = {
      ...recorded,
      spec: { ...recorded.spec, renewTime: microTime(nowMs) },
    };
    try {
      const renewed = await this.write('PUT', next);
      if (renewed) {
        this.held = { lease: renewed, holder };
        this.lastRenewedMs = nowMs;
        return;
      }
      const other = await this.read()
        .then((l) => l && holderOf(l))
        .catch(() => undefined);
      this.loseLock(
        other
          ? `run ${other.runId} of ${other.runbook} by ${other.operator}@${other.host} took ${this.location} over`
          : `${this.location} was changed or removed by someone else`,
      );
    } catch (err) {
      // Retried at the next tick until the renew deadline: the lease is still ours until then.
      const failingForMs = this.now() - this.lastRenewedMs;
      if (failingForMs < this.renewDeadlineMs()) return;
      this.loseLock(
        `renewing ${this.location} failed for ${Math.round(failingForMs / 1000)}s: ${(err as Error).message}`,
      );
    }
  }

  /** client-go's RenewDeadline: two thirds of the lease duration (10 s of 15 s) */
  private renewDeadlineMs(): number {
    return Math.floor((this.durationSeconds * 1000 * 2) / 3);
  }

  private loseLock(reason: string): void {
    if (this.lost) return;
    this.lost = reason;
    this.renewal.stopTimer();
    this.options.onLost?.(reason);
  }

  private staleReason(lease: LeaseObject, holder: LockHolder): string | undefined {
    const renewed = Date.parse(lease.spec.renewTime ?? lease.spec.acquireTime ?? '');
    const seconds = lease.spec.leaseDurationSeconds ?? this.durationSeconds;
    if (!Number.isFinite(renewed)) return 'it carries no renewTime';
    const expires = renewed + seconds * 1000;
    if (expires <= this.now()) {
      return `it was last renewed at ${new Date(renewed).toISOString()} and expired after ${seconds}s`;
    }
    if (holder.host === hostname() && holder.pid > 0 && !processIsAlive(holder.pid)) {
      return `its process ${holder.pid} on ${holder.host} no longer exists`;
    }
    return undefined;
  }

  private async read(): Promise<LeaseObject | undefined> {
    return this.api.json<LeaseObject>('GET', this.path);
  }

  /** The lease as written; undefined when another writer got there first (409). */
  private async write(
    method: 'POST' | 'PUT',
    lease: LeaseObject,
  ): Promise<LeaseObject | undefined> {
    const path = method === 'POST' ? this.path.replace(/\/[^/]+$/, '') : this.path;
    const { status, body } = await this.api.request(method, path, { body: lease });
    if (status === 409) return undefined;
    if (status < 200 || status > 299) {
      let message = body.slice(0, 300);
      try {
        message = (JSON.parse(body) as { message?: string }).message ?? message;
      } catch {
        // not a Status object
      }
      throw new KubeError(
        `${method} ${path} answered ${status}: ${message}. The run lock lives in ${this.location}; check that RUNBOOKS_NAMESPACE exists and that you may write Leases there`,
        status,
        undefined,
      );
    }
    return JSON.parse(body) as LeaseObject;
  }
}

/** `lease` with `holder` recorded in its annotation, everything else as it was. */
function recordingHolder(lease: LeaseObject, holder: LockHolder): LeaseObject {
  return {
    ...lease,
    metadata: {
      ...lease.metadata,
      annotations: { ...lease.metadata.annotations, [HOLDER_ANNOTATION]: JSON.stringify(holder) },
    },
  };
}

/** The holder recorded on a lease; undefined when it is free (released, never taken). */
export function holderOf(lease: LeaseObject): LockHolder | undefined {
  if (!lease.spec.holderIdentity) return undefined;
  const recorded = lease.metadata.annotations?.[HOLDER_ANNOTATION];
  if (recorded) {
    try {
      return JSON.parse(recorded) as LockHolder;
    } catch {
      // fall through to what holderIdentity says
    }
  }
  // No annotation (written by hand or by another tool): what holderIdentity says, if it is ours.
  const identity = lease.spec.holderIdentity;
  const parts = /^(.+)@([^/]+)\/([^/]+)\/(.+)$/.exec(identity);
  const renewed = Date.parse(lease.spec.renewTime ?? '');
  const seconds = lease.spec.leaseDurationSeconds ?? 0;
  return {
    runId: parts?.[3] ?? identity,
    runbook: parts?.[4] ?? 'unknown',
    operator: parts?.[1] ?? identity,
    host: parts?.[2] ?? 'unknown',
    pid: 0,
    acquiredAt: lease.spec.acquireTime ?? 'unknown',
    expiresAt: Number.isFinite(renewed)
      ? new Date(renewed + seconds * 1000).toISOString()
      : 'unknown',
  };
}

/**
 * The engine's default lock: the Lease, or — only when no cluster can be reached at all (the
 * kubeconfig points nowhere that answers) — the lock file beside the audit log, so a run that
 * cannot touch the cluster still cannot run twice on this machine. `fallback` says why.
 */
export class ClusterOrFileRunLock implements ClusterRunLock {
  private active: RunLock;
  fallback: string | undefined;

  constructor(
    private readonly lease: LeaseRunLock,
    private readonly file: RunLock,
  ) {
    this.active = lease;
  }

  get location(): string {
    return this.active.location;
  }

  async acquire(owner: LockOwner): Promise<LockResult> {
    try {
      return await this.lease.acquire(owner);
    } catch (err) {
      if (!(err instanceof KubeError) || err.status !== 0) throw err;
      this.fallback = `the cluster cannot be reached (${err.message}), so the lock is ${this.file.location} on this machine only`;
      this.active = this.file;
      return this.file.acquire(owner);
    }
  }

  release(): Promise<void> {
    return this.active.release();
  }

  async keepFor(pids: readonly number[]): Promise<void> {
    await this.active.keepFor?.(pids);
  }

  lostReason(): string | undefined {
    return this.active === this.lease ? this.lease.lostReason() : undefined;
  }

  peek(): Promise<LockHolder | undefined> {
    return this.lease.peek();
  }

  /** the Lease is the lock (not the fallback file): the cluster can take the run's records */
  get inCluster(): boolean {
    return this.active === this.lease;
  }
}
