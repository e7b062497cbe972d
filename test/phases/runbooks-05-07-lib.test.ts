// The judgements behind 05-migrate, 06-decommission and the rehearsal, on given inputs.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import type { DeploymentInfo, EnvVar, KubeObject } from '../../lib/cluster/kube.ts';
import { loadConfig } from '../../lib/config.ts';
import { clearSecretsForTests, registerSecret } from '../../lib/mask.ts';
import { decommissionWindow } from '../../lib/phases/decommission.ts';
import {
  backupOf,
  containerOf,
  describeRedisEnv,
  expectedDowntimeLine,
  judgeFunctional,
  LITERAL_PASSWORD,
  pointsAtSharedRedis,
  redisEnvOf,
  redisErrorLines,
  restoreEnvPatch,
  sharedRedisHost,
} from '../../lib/phases/migration.ts';
import { sampleRoundTrips } from '../../lib/redis/latency-histogram.ts';
import {
  parseShellExports,
  REHEARSAL_EXIT,
  RehearsalRefusedError,
  rehearsalStages,
  rehearsalVerdict,
  rehearse,
  runningSandbox,
} from '../../script/rehearsal.ts';
import { startRedisServer } from '../helpers/redis-server.ts';

const cfg = loadConfig({ envFile: '/dev/null', env: {} });
const OLD_ENV: EnvVar[] = [
  { name: 'LOG_LEVEL', value: 'info' },
  { name: 'REDIS_HOST', value: 'redis.beersystem.svc.cluster.local' },
  { name: 'REDIS_PORT', value: '6379' },
  {
    name: 'REDIS_PASSWORD',
    valueFrom: { secretKeyRef: { name: 'beersystem-redis', key: 'redis-password' } },
  },
];
const NEW_ENV: EnvVar[] = [
  { name: 'LOG_LEVEL', value: 'info' },
  { name: 'REDIS_HOST', value: 'redis-shared-master.redis.svc.cluster.local' },
  { name: 'REDIS_PORT', value: '6379' },
  {
    name: 'REDIS_PASSWORD',
    valueFrom: { secretKeyRef: { name: 'redis-credentials', key: 'redis-password' } },
  },
];

t.test(
  'which Redis beersystem names: the master DNS name and the replicated Secret, both',
  async (t) => {
    t.equal(sharedRedisHost(cfg), 'redis-shared-master.redis.svc.cluster.local');
    t.ok(pointsAtSharedRedis(NEW_ENV, cfg));
    t.notOk(pointsAtSharedRedis(OLD_ENV, cfg));
    const halfway = NEW_ENV.map((e) => (e.name === 'REDIS_PASSWORD' ? OLD_ENV[3]! : e));
    t.notOk(pointsAtSharedRedis(halfway, cfg), 'the new host with the old Secret is not a move');
    t.equal(
      describeRedisEnv(OLD_ENV),
      'REDIS_HOST=redis.beersystem.svc.cluster.local, REDIS_PORT=6379, REDIS_PASSWORD from Secret beersystem-redis/redis-password',
    );
    t.equal(
      describeRedisEnv([{ name: 'REDIS_PASSWORD', value: 'x' }]),
      'REDIS_HOST unset, REDIS_PORT unset, REDIS_PASSWORD literal',
    );
  },
);

t.test(
  'the noted environment never holds a literal password; the restore refuses one',
  async (t) => {
    const literal = [...OLD_ENV.slice(0, 3), { name: 'REDIS_PASSWORD', value: 'hunter2-literal' }];
    const noted = redisEnvOf(literal);
    t.same(
      noted.map((e) => e.name),
      ['REDIS_HOST', 'REDIS_PORT', 'REDIS_PASSWORD'],
    );
    t.equal(noted[2]!.value, LITERAL_PASSWORD);
    t.notMatch(JSON.stringify(noted), 'hunter2');
    t.throws(() => restoreEnvPatch(NEW_ENV, noted, 0), /literal value, which was never recorded/);
  },
);

t.test(
  'the rollback patch gives back the noted REDIS_* and keeps every other variable',
  async (t) => {
    const patch = restoreEnvPatch(NEW_ENV, redisEnvOf(OLD_ENV), 1);
    t.same(patch, [
      { op: 'replace', path: '/spec/template/spec/containers/1/env', value: OLD_ENV },
    ]);
    t.equal(restoreEnvPatch([], redisEnvOf(OLD_ENV), 0)[0]!.op, 'add');
  },
);

t.test(
  'a backup keeps the spec, drops status and server fields, and holds no secret',
  async (t) => {
    registerSecret('Backup-Secret-Value-77');
    t.teardown(clearSecretsForTests);
    const raw: KubeObject = {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: {
        name: 'beersystem',
        uid: 'u',
        resourceVersion: '7',
        managedFields: [{}],
        annotations: {
          'kubectl.kubernetes.io/last-applied-configuration': '{}',
          note: 'Backup-Secret-Value-77',
        },
      } as KubeObject['metadata'],
      spec: {
        template: {
          spec: {
            containers: [
              { name: 'beersystem', env: [...OLD_ENV, { name: 'API_TOKEN', value: 'tok' }] },
            ],
            initContainers: [{ name: 'init', env: [{ name: 'DB_PASSWORD', value: 'pw' }] }],
          },
        },
      },
      status: { replicas: 1 },
    };
    const b = backupOf(raw);
    t.equal(b.status, undefined);
    t.same(Object.keys(b.metadata).sort(), ['annotations', 'name']);
    t.same(b.metadata.annotations, { note: '***' });
    const env = b.spec.template.spec.containers[0].env as EnvVar[];
    t.equal(env.find((e) => e.name === 'API_TOKEN')!.value, '<removed>');
    t.equal(env.find((e) => e.name === 'REDIS_HOST')!.value, 'redis.beersystem.svc.cluster.local');
    t.equal(b.spec.template.spec.initContainers[0].env[0].value, '<removed>');
    t.equal(raw.status?.replicas, 1, 'the original is left alone');
  },
);

t.test('containerOf: by name, else the first', async (t) => {
  const d = {
    containers: [
      { name: 'a', image: '', env: [] },
      { name: 'b', image: '', env: [] },
    ],
  } as unknown as DeploymentInfo;
  t.equal(containerOf(d, 'b')?.name, 'b');
  t.equal(containerOf(d, 'x')?.name, 'a');
});

t.test('the functional check: every part named when it fails', async (t) => {
  const good = {
    health: { status: 200, redis: 'redis-shared-master.redis.svc.cluster.local:6379' },
    login: { status: 200, session: 's' },
    session: { status: 200, user: 'u' },
    cacheWrite: { status: 200 },
    cacheRead: { status: 200, value: 'v' },
  };
  t.ok(judgeFunctional(good, 'redis-shared-master.redis.svc.cluster.local', 'u', 'v').ok);
  const bad = judgeFunctional(
    {
      health: { status: 503, redis: 'redis.beersystem.svc.cluster.local:6379' },
      login: { status: 503, session: undefined },
      session: { status: 404, user: undefined },
      cacheWrite: { status: 500 },
      cacheRead: { status: 200, value: undefined },
    },
    'redis-shared-master.redis.svc.cluster.local',
    'u',
    'v',
  );
  t.notOk(bad.ok);
  t.equal(
    bad.line,
    '/healthz answered 503; /healthz names redis.beersystem.svc.cluster.local:6379, not redis-shared-master.redis.svc.cluster.local; login answered 503; the session did not survive a second request (404); cache write answered 500; cache read gave null',
  );
});

t.test("Redis errors in beersystem's log", async (t) => {
  t.same(
    redisErrorLines(
      'ok\n2026 redis error (x:6379): ECONNREFUSED\nconnected to x\nNOAUTH Authentication required\n',
    ),
    ['2026 redis error (x:6379): ECONNREFUSED', 'NOAUTH Authentication required'],
  );
});

t.test(
  "06's gate: closed with the time left, open after the window, closed without a record",
  async (t) => {
    const day = 24 * 3600_000;
    const at = '2026-11-30T12:00:00.000Z';
    const closed = decommissionWindow(at, day, Date.parse(at) + day - (3 * 3600_000 + 12 * 60_000));
    t.notOk(closed.open);
    t.match(closed.reason, /opens in 3h12m, at 2026-12-01T12:00:00\.000Z/);
    const open = decommissionWindow(at, day, Date.parse(at) + day);
    t.ok(open.open, 'exactly 24 h later it opens');
    t.match(open.reason, /for 24h0m since/);
    t.match(decommissionWindow(undefined, day, 0).reason, /no migration record.*05-migrate/);
    t.match(decommissionWindow('yesterday', day, 0).reason, /is not a time/);
  },
);

t.test('sampleRoundTrips: timed SET/GET against a real server, probe key removed', async (t) => {
  const server = await startRedisServer(t, { password: 'Sample-Pw-Distinct-31' });
  const samples = await sampleRoundTrips(server.target, 50);
  t.equal(samples.length, 50);
  t.ok(samples.every((ms) => ms > 0 && ms < 5000));
  const { openRedis } = await import('../../lib/redis/redis-probe.ts');
  const client = await openRedis(server.target);
  t.equal(await client.dbsize(), 0, 'nothing left behind');
  client.disconnect();
});

t.test('the rehearsal: its stages in order, with the exit code each must end with', async (t) => {
  const stages = rehearsalStages('/tmp/r');
  t.same(
    stages.map((s) => [s.title, s.expectExit]),
    [
      ['sandbox up', 0],
      ['01-setup', 0],
      ['02-deploy', 0],
      ['03-access', 0],
      ['04-monitoring', 0],
      ['05-migrate', 0],
      ['06-decommission (before the validation window)', 3],
      ['sandbox age 24h', 0],
      ['06-decommission', 0],
      ['backup', 0],
      ['restore --drill', 0],
      ['rotate-password', 0],
      ['07-polish', 0],
    ],
  );
  const six = stages[8]!.argv;
  t.same(six.slice(-3), ['--yes', '--confirm', 'beersystem/redis']);
  t.ok(six.includes('/tmp/r/.env.sandbox'));
  t.same(stages[7]!.argv.slice(-2), ['age', '24h']);
  t.same(stages[10]!.argv.slice(-4), ['--yes', '--drill', '--confirm', 'redis/redis-shared']);
});

t.test(
  'the rehearsal ends with every criterion not met or not proven, and an exit code of its own',
  async (t) => {
    const short = [
      { id: 'SC-006', verdict: 'not met' as const, why: 'SC-006 NOT met: 8,123 ops/s' },
      { id: 'SC-001', verdict: 'not proven' as const, why: 'no evidence recorded' },
    ];
    const slow = rehearsalVerdict({ ok: true, criteriaShort: short, criteriaCount: 10 }, false);
    t.equal(slow.code, 5, 'the change ran, a criterion is short: 5');
    t.same(slow.lines, [
      'criteria: 8 of 10 met; the change ran, but these are not (exit 5):',
      '  SC-006 not met: SC-006 NOT met: 8,123 ops/s',
      '  SC-001 not proven: no evidence recorded',
    ]);
    const failed = rehearsalVerdict({ ok: false, criteriaShort: short, criteriaCount: 10 }, false);
    t.equal(
      failed.code,
      REHEARSAL_EXIT.stageFailed,
      'a failed stage is a failure, whatever the criteria',
    );
    const good = rehearsalVerdict({ ok: true, criteriaShort: [], criteriaCount: 10 }, false);
    t.same(good, { code: 0, lines: ['criteria: all 10 success criteria met'] });
    t.equal(rehearsalVerdict({ ok: true, criteriaShort: [], criteriaCount: 10 }, true).code, 130);
    const codes = Object.values(REHEARSAL_EXIT);
    t.equal(new Set(codes).size, codes.length, 'every outcome has its own code');
    t.notOk(
      [0, 1, 2, 3, 4].includes(REHEARSAL_EXIT.criteriaShort),
      "not one of the runbooks' codes",
    );
  },
);

t.test("the sandbox shell file becomes the children's environment", async (t) => {
  const env = parseShellExports(
    "# x\nexport KUBECONFIG='/r/kubeconfig'\nexport PATH='/repo/sandbox/bin':\"$PATH\"\nexport TF_VAR_kube_context=sandbox\nnot an export\n",
    { PATH: '/usr/bin' },
  );
  t.equal(env.KUBECONFIG, '/r/kubeconfig');
  t.equal(env.PATH, '/repo/sandbox/bin:/usr/bin');
  t.equal(env.TF_VAR_kube_context, 'sandbox');
});

t.test(
  'a rehearsal refuses a directory it did not make, and one with a sandbox running',
  async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'rehearsal-'));
    t.teardown(() => rm(dir, { recursive: true, force: true }));
    await writeFile(join(dir, 'precious.txt'), 'keep me');
    await t.rejects(rehearse({ runDir: dir, print: () => {} }), RehearsalRefusedError);
    await writeFile(join(dir, 'state.json'), JSON.stringify({ pid: process.pid }));
    t.equal(runningSandbox(dir), process.pid);
    await t.rejects(rehearse({ runDir: dir, print: () => {} }), /already running/);
    t.equal(runningSandbox(join(dir, 'nowhere')), undefined);
  },
);

t.test('the expected downtime is the last measured one, named as such', async (t) => {
  t.equal(
    expectedDowntimeLine({
      value: 7_200,
      run_id: '20261206T024400Z-aaaa11',
      ts: '2026-12-06T02:44:51Z',
    }),
    'expected downtime: about 7.2s, as measured by run 20261206T024400Z-aaaa11 at 2026-12-06T02:44:51Z (T035 to beersystem Ready and healthy)',
  );
  t.match(expectedDowntimeLine(undefined), /^expected downtime: not measured yet/);
});
