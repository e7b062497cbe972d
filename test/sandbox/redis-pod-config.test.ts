// The redis.conf the sandbox writes for a pod: what the chart includes first, then the sandbox's
// own lines. Its timers go on the alert rules' compressed clock (prometheus-config.ts).
import t from 'tap';
import { SANDBOX_FOR_DIVISOR } from '../../sandbox/workloads/prometheus-config.ts';
import { type RedisPodConfig, renderRedisConfig } from '../../sandbox/workloads/redis-pod.ts';

const base: RedisPodConfig = {
  ip: '127.0.3.10',
  port: 6379,
  dataDir: '/tmp/data',
  disabledCommands: [],
};

const settingOf = (conf: string, name: string) =>
  [...conf.matchAll(new RegExp(`^${name}\\s+(\\S+)$`, 'gm'))].map((m) => m[1]).at(-1);

t.test("a fresh replica's diskless sync waits on the rules' clock, not 5 s", async (t) => {
  // Redis waits 5 s before a diskless sync; with RedisReplicationBroken's 1m `for:` run as 2 s,
  // every fresh replica fired it in the sandbox, never in the cluster.
  t.equal(SANDBOX_FOR_DIVISOR, 30);
  t.equal(settingOf(renderRedisConfig(base), 'repl-diskless-sync-delay'), '0');
});

t.test(
  "a delay the chart's configuration sets is compressed alike, and it is the one in force",
  async (t) => {
    const conf = renderRedisConfig({ ...base, included: 'repl-diskless-sync-delay 90\n' });
    t.equal(settingOf(conf, 'repl-diskless-sync-delay'), '3');
  },
);
