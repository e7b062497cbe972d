// lib/phases/health-prober.ts: beersystem's /healthz asked on its own clock; counts, the moments
// it changed state, the lines said at each change, and the outage its users saw.
import t from 'tap';
import { type HealthAnswer, HealthProber } from '../../lib/phases/health-prober.ts';

const up = (redis: string): HealthAnswer => ({ ok: true, redis, error: undefined });
const down = (error: string): HealthAnswer => ({ ok: false, redis: undefined, error });

t.test('counts, transitions and the outage from scripted answers', async (t) => {
  let now = Date.parse('2026-12-06T02:44:40.000Z');
  const answers = [
    up('redis.beersystem'),
    up('redis.beersystem'),
    down('HTTP 503: no endpoints available for service "beersystem"'),
    down('HTTP 503: no endpoints available for service "beersystem"'),
    up('redis-shared-master.redis.svc.cluster.local'),
  ];
  const lines: string[] = [];
  const prober = new HealthProber(async () => answers.shift()!, {
    onChange: (line) => lines.push(line),
    now: () => now,
  });
  t.match(prober.summary(), /not asked yet/);
  for (let i = 0; i < 5; i++) {
    await prober.once();
    now += 30_000;
  }
  t.same(lines, [
    'beersystem stopped answering at 02:45:40 UTC (HTTP 503: no endpoints available for service "beersystem")',
    'beersystem answers again at 02:46:40 UTC, on redis-shared-master.redis.svc.cluster.local: its users went 1m0s without it',
  ]);
  const record = prober.record();
  t.match(record, { ok: 3, failed: 2, outageMs: 60_000, intervalMs: 250 });
  t.same(
    record.transitions.map((x) => `${x.ok ? 'up' : 'down'} ${x.at.slice(11, 19)}`),
    ['up 02:44:40', 'down 02:45:40', 'up 02:46:40'],
  );
  t.equal(prober.summary(), 'beersystem up (3 ok, 2 failed)');
});

t.test('a probe that throws is a failed answer with its error', async (t) => {
  const prober = new HealthProber(async () => {
    throw new Error('connect ECONNREFUSED\nmore');
  });
  await prober.once();
  t.equal(prober.summary(), 'beersystem DOWN (0 ok, 1 failed, last: connect ECONNREFUSED)');
});

t.test(
  'started, it asks on its interval; stopped, it waits for the answer in flight',
  async (t) => {
    let asked = 0;
    let release!: () => void;
    const prober = new HealthProber(
      () =>
        new Promise<HealthAnswer>((resolve) => {
          asked++;
          if (asked === 3) release = () => resolve(up('x'));
          else resolve(up('x'));
        }),
      { intervalMs: 5 },
    );
    prober.start();
    while (asked < 3) await new Promise((r) => setTimeout(r, 5));
    const stopped = prober.stop();
    let done = false;
    void stopped.then(() => {
      done = true;
    });
    await new Promise((r) => setTimeout(r, 20));
    t.notOk(done, 'stop waits for the answer in flight');
    release();
    const record = await stopped;
    t.equal(record.ok, 3, 'every answer counted');
    await new Promise((r) => setTimeout(r, 20));
    t.equal(asked, 3, 'nothing is asked after stop');
  },
);

t.test('stopped while its last answer was a failure, it asks once more', async (t) => {
  const answers = [up('old'), down('HTTP 503'), up('redis-shared-master:6379')];
  const lines: string[] = [];
  const prober = new HealthProber(async () => answers.shift()!, {
    onChange: (line) => lines.push(line),
  });
  await prober.once();
  await prober.once();
  const record = await prober.stop();
  t.equal(record.transitions.at(-1)?.ok, true, 'the recovery is recorded');
  t.type(record.outageMs, 'number');
  t.match(lines.at(-1), /answers again .* on redis-shared-master:6379/);
  const healthy = new HealthProber(async () => up('x'));
  await healthy.once();
  t.equal((await healthy.stop()).ok, 1, 'a healthy last answer is not asked again');
});
