import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import dotenv from 'dotenv';
import t from 'tap';
import { ConfigError, loadConfig, REPO_ROOT, SETTINGS } from '../../lib/config.ts';
import { formatDuration, parseDuration } from '../../lib/duration.ts';
import { withoutCoverage } from '../helpers/run-cli.ts';

const dir = mkdtempSync(join(tmpdir(), 'config-test-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
function envFile(text: string): string {
  const path = join(dir, `env-${Math.random().toString(36).slice(2)}`);
  writeFileSync(path, text);
  return path;
}

function problemsFor(env: Record<string, string>) {
  try {
    loadConfig({ envFile: envFile(''), env });
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error('expected a ConfigError');
}

t.test(
  '.env.example documents every setting, with the built-in default, each under a comment',
  async (t) => {
    const text = readFileSync(join(REPO_ROOT, '.env.example'), 'utf8');
    const parsed = dotenv.parse(text);
    t.same(Object.keys(parsed).sort(), Object.keys(SETTINGS).sort(), 'same variables');
    for (const [name, setting] of Object.entries(SETTINGS)) {
      t.equal(parsed[name], setting.default, `${name} default`);
    }
    const lines = text.split('\n');
    for (const [i, line] of lines.entries()) {
      if (/^[A-Z_]+=/.test(line))
        t.match(lines[i - 1], /^# \S/, `${line.split('=')[0]} has a comment`);
    }
  },
);

t.test('a valid file loads into a frozen typed object with defaults from the spec', async (t) => {
  const cfg = loadConfig({
    envFile: envFile(
      'KUBE_CONTEXT=homelab\nREDIS_LB_IP=192.168.4.204\nAUDIT_LOG=/var/log/a.jsonl\n',
    ),
    env: { WAIT_TIMEOUT: '90s' },
  });
  t.equal(cfg.kubeContext, 'homelab');
  t.equal(cfg.redis.lbIp, '192.168.4.204');
  t.equal(cfg.redis.namespace, 'redis');
  t.equal(cfg.redis.release, 'redis-shared');
  t.equal(cfg.redis.port, 6379);
  t.equal(cfg.redis.privateCidr, '192.168.4.0/24');
  t.equal(cfg.redis.metallbPool, 'eero-pool');
  t.equal(cfg.oldRedis.deployment, 'redis');
  t.equal(cfg.monitoring.prometheusService, 'kube-prometheus-stack-prometheus');
  t.equal(cfg.validationWindowMs, 24 * 3600_000);
  t.equal(cfg.timeouts.waitMs, 90_000, 'the environment wins over defaults');
  t.equal(cfg.auditLog, '/var/log/a.jsonl');
  t.equal(cfg.backupsDir, join(REPO_ROOT, 'logs/backups'), 'relative paths are the repository’s');
  t.equal(cfg.backupKeep, 7, 'the newest 7 snapshots are kept');
  t.equal(cfg.tofu.bin, 'tofu', 'a bare command name stays a name');
  t.equal(cfg.ipTableFile, join(REPO_ROOT, 'docs/ip-assignments.md'), "07's address table");
  t.equal(cfg.kubeconfig, undefined);
  t.ok(Object.isFrozen(cfg) && Object.isFrozen(cfg.redis), 'frozen, deeply');
});

t.test('the process environment wins over the env file', async (t) => {
  const cfg = loadConfig({
    envFile: envFile('REDIS_NAMESPACE=from-file\n'),
    env: { REDIS_NAMESPACE: 'from-env' },
  });
  t.equal(cfg.redis.namespace, 'from-env');
});

const invalid: Array<[string, string, RegExp]> = [
  ['REDIS_LB_IP', '192.168.4.300', /IPv4 address/],
  ['PRIVATE_CIDR', '192.168.4.0/33', /CIDR/],
  ['REDIS_NAMESPACE', '', /must not be empty/],
  ['BEERSYSTEM_DEPLOYMENT', 'Beer_System', /DNS-1123 label/],
  ['REDIS_PORT', 'abc', /TCP port/],
  ['VALIDATION_WINDOW', '1x', /duration/],
  ['BACKUP_KEEP', '0', /whole number of at least 1/],
];

t.test('a timeout of zero, or too long for a timer, is refused', async (t) => {
  for (const [variable, value] of [
    ['COMMAND_TIMEOUT', '0s'],
    ['WAIT_TIMEOUT', '30d'],
    ['LOCK_TTL', '0m'],
  ] as const) {
    const err = problemsFor({ [variable]: value });
    t.same(err.problems, [
      {
        variable,
        value,
        expected:
          'a duration above zero and at most 24d, such as 90s, 5m, 1h30m (units ms, s, m, h, d)',
      },
    ]);
  }
  t.equal(
    loadConfig({ envFile: envFile(''), env: { COMMAND_TIMEOUT: '24d' } }).timeouts.commandMs,
    24 * 86_400_000,
  );
});
for (const [variable, value, expected] of invalid) {
  t.test(
    `an invalid ${variable} (${JSON.stringify(value)}) is named with its value and the expected form`,
    async (t) => {
      const err = problemsFor({ [variable]: value });
      t.equal(err.problems.length, 1);
      t.equal(err.problems[0]?.variable, variable);
      t.equal(err.problems[0]?.value, value);
      t.match(err.problems[0]?.expected, expected);
      t.match(err.message, `${variable}=${JSON.stringify(value)}: expected`);
    },
  );
}

t.test('an LB IP outside the private CIDR is refused', async (t) => {
  const err = problemsFor({ REDIS_LB_IP: '10.0.0.5' });
  t.same(
    err.problems.map((p) => p.variable),
    ['REDIS_LB_IP'],
  );
  t.match(err.problems[0]?.expected, /inside PRIVATE_CIDR 192\.168\.4\.0\/24/);
});

t.test('REDIS_PORT other than 6379 is refused: the module serves 6379 only', async (t) => {
  const err = problemsFor({ REDIS_PORT: '6380' });
  t.same(
    err.problems.map((p) => p.variable),
    ['REDIS_PORT'],
  );
  t.match(err.message, /6379: terraform\/modules\/redis-shared serves Redis on 6379 only/);
});

t.test('every invalid value is reported at once', async (t) => {
  const err = problemsFor(Object.fromEntries(invalid.map(([k, v]) => [k, v])));
  t.same(err.problems.map((p) => p.variable).sort(), invalid.map(([k]) => k).sort());
  t.match(err.message, /^7 settings are invalid/);
});

t.test(
  'a CIDR with host bits set, a port out of range and an over-long label are refused',
  async (t) => {
    const err = problemsFor({
      PRIVATE_CIDR: '192.168.4.7/24',
      PROMETHEUS_PORT: '70000',
      REDIS_RELEASE: 'a'.repeat(64),
      REDIS_SECRET_KEY: 'no spaces',
    });
    t.same(err.problems.map((p) => p.variable).sort(), [
      'PRIVATE_CIDR',
      'PROMETHEUS_PORT',
      'REDIS_RELEASE',
      'REDIS_SECRET_KEY',
    ]);
  },
);

t.test('a missing --env-file is an error that says how to start one', async (t) => {
  t.throws(() => loadConfig({ envFile: join(dir, 'nope.env'), env: {} }), {
    name: 'ConfigError',
    message: /--env-file.*ENOENT.*\.env\.example/s,
  });
});

t.test('a config error from a runbook exits 2 with every problem and no stack trace', async (t) => {
  const { spawnSync } = await import('node:child_process');
  const bad = envFile('REDIS_PORT=abc\nREDIS_LB_IP=192.168.4.300\n');
  const run = spawnSync(join(REPO_ROOT, 'runbooks/audit.mts'), ['--env-file', bad], {
    encoding: 'utf8',
    env: withoutCoverage(),
  });
  t.equal(run.status, 2);
  t.match(run.stderr, /REDIS_PORT="abc": expected a TCP port/);
  t.match(run.stderr, /REDIS_LB_IP="192\.168\.4\.300": expected an IPv4 address/);
  t.notMatch(run.stderr, /\n\s+at /, 'no stack trace');
});

t.test('durations parse and format', async (t) => {
  t.equal(parseDuration('1h30m'), 5_400_000);
  t.equal(parseDuration('250ms'), 250);
  t.equal(parseDuration('2d'), 172_800_000);
  t.equal(parseDuration('5'), undefined);
  t.equal(parseDuration('m5'), undefined);
  t.equal(formatDuration(250), '250ms');
  t.equal(formatDuration(1234), '1.2s');
  t.equal(formatDuration(95_000), '1m35s');
  t.equal(formatDuration(90_000_000), '25h0m');
});

t.test(
  'item 8: a CIDR or LB address outside the private networks (RFC 1918, loopback) is refused',
  async (t) => {
    const internet = problemsFor({ PRIVATE_CIDR: '0.0.0.0/0', REDIS_LB_IP: '8.8.8.8' });
    t.same(internet.problems.map((p) => p.variable).sort(), ['PRIVATE_CIDR', 'REDIS_LB_IP']);
    t.match(
      internet.problems.find((p) => p.variable === 'PRIVATE_CIDR')?.expected,
      /private network.*10\.0\.0\.0\/8.*172\.16\.0\.0\/12.*192\.168\.0\.0\/16.*127\.0\.0\.0\/8/,
    );
    t.match(internet.message, /PRIVATE_CIDR="0\.0\.0\.0\/0": expected/);
    for (const cidr of ['10.0.0.0/7', '172.16.0.0/11', '192.168.0.0/15', '100.64.0.0/10']) {
      const err = problemsFor({ PRIVATE_CIDR: cidr, REDIS_LB_IP: '192.168.4.203' });
      t.ok(
        err.problems.some((p) => p.variable === 'PRIVATE_CIDR'),
        `${cidr} reaches beyond the private ranges`,
      );
    }
    t.same(
      problemsFor({ REDIS_LB_IP: '8.8.8.8' }).problems.map((p) => p.variable),
      ['REDIS_LB_IP'],
    );
    for (const [cidr, ip] of [
      ['10.0.0.0/8', '10.1.2.3'],
      ['172.16.0.0/12', '172.31.255.254'],
      ['192.168.0.0/16', '192.168.4.203'],
      ['127.0.0.0/8', '127.0.0.203'],
    ]) {
      const cfg = loadConfig({
        envFile: envFile(''),
        env: { PRIVATE_CIDR: cidr, REDIS_LB_IP: ip },
      });
      t.equal(cfg.redis.privateCidr, cidr, `${cidr} with ${ip} is accepted`);
    }
  },
);

t.test(
  'item 8: the network or broadcast address of PRIVATE_CIDR is refused as the LB IP',
  async (t) => {
    for (const ip of ['192.168.4.0', '192.168.4.255']) {
      const err = problemsFor({ REDIS_LB_IP: ip });
      t.same(
        err.problems.map((p) => p.variable),
        ['REDIS_LB_IP'],
      );
      t.match(
        err.problems[0]?.expected,
        /not the network or broadcast address of 192\.168\.4\.0\/24/,
      );
    }
    const cfg = loadConfig({
      envFile: envFile(''),
      env: { PRIVATE_CIDR: '192.168.4.202/31', REDIS_LB_IP: '192.168.4.203' },
    });
    t.equal(cfg.redis.lbIp, '192.168.4.203', 'a /31 has no network or broadcast address');
  },
);

t.test(
  'item 8: a validation window under 24 h is refused; the override is --override-gate',
  async (t) => {
    for (const value of ['0s', '23h59m', '1h']) {
      const err = problemsFor({ VALIDATION_WINDOW: value });
      t.same(
        err.problems.map((p) => p.variable),
        ['VALIDATION_WINDOW'],
        value,
      );
      t.match(err.problems[0]?.expected, /at least 24h.*--override-gate/);
    }
    for (const value of ['24h', '1d', '36h']) {
      t.ok(loadConfig({ envFile: envFile(''), env: { VALIDATION_WINDOW: value } }), value);
    }
  },
);

t.test('item 8: the sandbox settings pass the validation, for every address slot', async (t) => {
  const { runbookNetworkSettings, sandboxNetwork, MAX_SLOT } = await import(
    '../../sandbox/lb-pool.ts'
  );
  const { judgeAddressInCidr } = await import('../../lib/phases/preflight.ts');
  const cliSource = readFileSync(join(REPO_ROOT, 'sandbox/cli.ts'), 'utf8');
  t.match(cliSource, 'runbookNetworkSettings(network)', 'cli.ts writes the pool settings');
  const window = /VALIDATION_WINDOW=([^'`\n]+)/.exec(cliSource)?.[1];
  for (const slot of [0, 16, MAX_SLOT]) {
    const network = sandboxNetwork(slot);
    const cfg = loadConfig({
      envFile: envFile(''),
      env: {
        KUBE_CONTEXT: 'sandbox',
        ...runbookNetworkSettings(network),
        ...(window ? { VALIDATION_WINDOW: window } : {}),
      },
    });
    t.equal(cfg.redis.lbIp, `127.0.${slot}.203`, `slot ${slot}: its own address`);
    t.equal(
      judgeAddressInCidr(network.outsideProbeSource, cfg.redis.privateCidr).ok,
      false,
      `slot ${slot}: the outside probe source is outside PRIVATE_CIDR`,
    );
    t.ok(judgeAddressInCidr('127.0.0.1', cfg.redis.privateCidr).ok, 'the operator is inside');
    t.ok(cfg.validationWindowMs >= 24 * 3600_000);
  }
});
