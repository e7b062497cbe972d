// lib/lock/lease-lock.ts against the sandbox API: one holder at a time, optimistic concurrency when
// runs race for a stale lease, renewal, and a lost lock when a renewal fails.
import t from 'tap';
import { createKube } from '../../lib/cluster/kube.ts';
import { createKubeApi } from '../../lib/cluster/kube-api.ts';
import { holderIdentity, type LeaseObject, LeaseRunLock } from '../../lib/lock/lease-lock.ts';
import type { LockOwner } from '../../lib/lock/lock.ts';
import { sandboxConfig } from '../helpers/kube-config.ts';
import { startTestSandbox } from '../helpers/sandbox.ts';

const owner = (runId: string, extra: Partial<LockOwner> = {}): LockOwner => ({
  runId,
  runbook: '05-migrate',
  operator: 'alice',
  host: 'laptop-a',
  pid: 4242,
  ...extra,
});

const LEASE_PATH = '/apis/coordination.k8s.io/v1/namespaces/default/leases/redis-shared-runbooks';

t.test(
  'one holder at a time; the second learns who, where, which runbook and since when',
  async (t) => {
    const fx = await startTestSandbox(t);
    const cfg = sandboxConfig(fx);
    const first = new LeaseRunLock(cfg);
    const second = new LeaseRunLock(cfg);
    t.teardown(() => Promise.all([first.release(), second.release()]));

    const got = await first.acquire(owner('run-1'));
    t.equal(got.acquired, true);
    const lease = JSON.parse(
      await fx.kubectlOk(['get', 'lease', 'redis-shared-runbooks', '-n', 'default', '-o', 'json']),
    );
    t.equal(lease.spec.holderIdentity, 'alice@laptop-a/run-1/05-migrate');
    t.equal(
      lease.spec.leaseDurationSeconds,
      15,
      'LOCK_TTL 15s by default, as client-go leader election',
    );
    t.match(lease.spec.renewTime, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/, 'MicroTime');

    const refused = await second.acquire(owner('run-2', { operator: 'bob', host: 'ci' }));
    t.equal(refused.acquired, false);
    t.match(refused.holder, {
      runId: 'run-1',
      runbook: '05-migrate',
      operator: 'alice',
      host: 'laptop-a',
    });
    t.match(await second.peek(), { runId: 'run-1' }, 'peek says who holds it without taking it');
    t.equal(second.location, 'Lease default/redis-shared-runbooks (context sandbox)');

    await first.release();
    t.equal(await second.peek(), undefined, 'released: free');
    const after = await second.acquire(owner('run-2', { operator: 'bob', host: 'ci' }));
    t.equal(after.acquired, true);
    t.notOk('takenOverFrom' in after && after.takenOverFrom, 'a released lease is no takeover');

    // The run ends but a process it started survives: the lease stays, in that process's name.
    await second.keepFor([process.pid]);
    const kept = await first.acquire(owner('run-3'));
    t.equal(kept.acquired, false);
    t.match(kept.holder, { runId: 'run-2', pid: process.pid, survivors: [process.pid] });
  },
);

t.test(
  'a lease not renewed past its duration is taken over; of two racers exactly one wins',
  async (t) => {
    const fx = await startTestSandbox(t);
    const cfg = sandboxConfig(fx);
    const api = createKubeApi(cfg);
    const stale = (i: number): LeaseObject => ({
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: { name: 'redis-shared-runbooks', namespace: 'default' },
      spec: {
        holderIdentity: holderIdentity(owner(`crashed-${i}`, { host: 'elsewhere' })),
        leaseDurationSeconds: 60,
        renewTime: '2026-01-01T00:00:00.000000Z',
        acquireTime: '2026-01-01T00:00:00.000000Z',
      },
    });
    const created = await api.request('POST', LEASE_PATH.replace(/\/[^/]+$/, ''), {
      body: stale(0),
    });
    t.equal(created.status, 201);

    for (let i = 1; i <= 20; i++) {
      const put = await api.request('PUT', LEASE_PATH, { body: stale(i) });
      t.equal(put.status, 200, `round ${i}: a stale lease`);
      const racers = [new LeaseRunLock(cfg), new LeaseRunLock(cfg)];
      const results = await Promise.all(
        racers.map((lock, n) => lock.acquire(owner(`racer-${i}-${n}`, { host: `host-${n}` }))),
      );
      const winners = results.filter((r) => r.acquired);
      t.equal(winners.length, 1, `round ${i}: exactly one wins`);
      const winner = winners[0];
      t.match(winner, {
        takenOverFrom: { runId: `crashed-${i}`, host: 'elsewhere' },
        takeoverReason: /last renewed at 2026-01-01T00:00:00\.000Z and expired after 60s/,
      });
      const loser = results.find((r) => !r.acquired);
      t.equal(loser?.holder.runId, winner?.holder.runId, 'the loser names the winner');
      await Promise.all(racers.map((l) => l.release()));
    }
  },
);

async function fault(fx: { sandbox: { url: string } }, args: string[]): Promise<number> {
  const res = await fetch(`${fx.sandbox.url}/sandbox/fault`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ args }),
  });
  return res.status;
}

t.test(
  'renewal keeps the lease alive; a passing error is retried, errors past the renew deadline lose the lock',
  async (t) => {
    const fx = await startTestSandbox(t);
    const cfg = sandboxConfig(fx, { LOCK_TTL: '3s' });
    const kube = createKube(cfg);
    let onLost: (reason: string) => void = () => undefined;
    const lost = new Promise<string>((resolve) => {
      onLost = resolve;
    });
    const lock = new LeaseRunLock(cfg, { renewEveryMs: 300, onLost });
    t.teardown(() => lock.release());
    t.equal((await lock.acquire(owner('run-1'))).acquired, true);
    const stop = new AbortController();
    t.teardown(() => stop.abort());
    const renewedPast = async (ms: number) => {
      const lease = JSON.parse(
        await fx.kubectlOk([
          'get',
          'lease',
          'redis-shared-runbooks',
          '-n',
          'default',
          '-o',
          'json',
        ]),
      );
      await kube.watchUntil(
        '/apis/coordination.k8s.io/v1/namespaces/default/leases',
        {},
        (objs) =>
          objs.some((o) => Date.parse(o.spec?.renewTime) >= Date.parse(lease.spec.renewTime) + ms),
        stop.signal,
      );
    };
    // Renewed well past the 3 s duration: still held, by us.
    await renewedPast(3500);
    const other = await new LeaseRunLock(cfg).acquire(owner('run-2', { host: 'elsewhere' }));
    t.equal(other.acquired, false, 'a renewed lease is not stale');

    t.equal(await fault(fx, ['api-error', '1', '500']), 200);
    await renewedPast(1000);
    t.equal(lock.lostReason(), undefined, 'one failed renewal is retried, the lock is kept');

    // Failing for longer than the renew deadline (2 s of 3 s): lost, before the lease expires.
    t.equal(await fault(fx, ['api-error', '1000', '500']), 200);
    const reason = await lost;
    t.teardown(() => fault(fx, ['heal']));
    t.match(
      reason,
      /renewing Lease default\/redis-shared-runbooks \(context sandbox\) failed for \d+s: .*500/,
    );
    t.equal(lock.lostReason(), reason);
  },
);

t.test(
  'the release is retried: one API error on the way out does not keep the lease',
  async (t) => {
    const fx = await startTestSandbox(t);
    const cfg = sandboxConfig(fx);
    const lock = new LeaseRunLock(cfg, { renewEveryMs: 60_000 });
    t.equal((await lock.acquire(owner('run-1'))).acquired, true);
    t.equal(await fault(fx, ['api-error', '1', '500']), 200);
    await lock.release();
    t.equal(await new LeaseRunLock(cfg).peek(), undefined, 'free after the retry');
  },
);
