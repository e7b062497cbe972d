// runbooks/backup.mts against the sandbox after 01-setup and 02-deploy: a real redis-server
// behind the LoadBalancer address, real redis-cli --rdb (SYNC) from this machine, a real scratch
// redis-server to verify the snapshot. A dry run writes nothing; real runs leave 0600 snapshots
// with their metadata, verified, the oldest removed beyond BACKUP_KEEP; a snapshot that does not
// match the live server fails its check; the password appears in no output, no audit line and
// no metadata. The operations guide's kubectl lines and its redis-cli block run here as written.
import { execFile } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import { openRedis } from '../../lib/redis/redis-probe.ts';
import { redisCli, startRedisServer } from '../helpers/redis-server.ts';
import { REPO } from '../helpers/run-cli.ts';
import { runbookSandbox, stepStatuses } from '../helpers/runbook-sandbox.ts';
import { secretPassword } from '../helpers/secret.ts';
import { type SandboxFixture, startWholeSandbox } from '../helpers/workloads-sandbox.ts';

t.setTimeout(900_000);

const KEYS = 200;
const runProcess = promisify(execFile);

t.test('backup of redis-shared in the sandbox', async (t) => {
  let fx: SandboxFixture | undefined;
  t.teardown(async () => {
    await fx?.close();
  });
  fx = await startWholeSandbox();
  await fx.sandbox.settled(30_000);
  const { sandbox, kubectl, runDir } = fx;
  const rb = runbookSandbox(runDir, sandbox, { BACKUP_KEEP: '2' });
  const backups = join(runDir, 'backups');
  const snapshots = () =>
    existsSync(backups)
      ? readdirSync(backups)
          .filter((f) => f.endsWith('.rdb'))
          .sort()
      : [];

  for (const phase of ['01-setup', '02-deploy']) {
    const run = await rb.run(phase, ['--yes', '--json']);
    t.equal(run.code, 0, `${phase} completed`, run.code === 0 ? {} : { stderr: run.stderr });
  }

  const password = await secretPassword(kubectl, 'redis');
  t.ok(password.length >= 32, 'the generated password was read for the scan');
  const live = await openRedis({
    host: sandbox.network.redisLbIp,
    port: 6379,
    password,
    name: 'backup-e2e',
  });
  t.teardown(() => live.disconnect());
  const write = live.pipeline();
  for (let i = 0; i < KEYS; i++) {
    if (i % 4 === 0) write.hset(`backup:e2e:h:${i}`, 'f', String(i));
    else if (i % 4 === 1) write.rpush(`backup:e2e:l:${i}`, 'a', 'b');
    else write.set(`backup:e2e:s:${i}`, String(i));
  }
  await write.exec();

  await t.test('--dry-run says what it would do and writes no file', async (t) => {
    const run = await rb.run('backup', ['--dry-run', '--json']);
    t.equal(run.code, 0, 'exit 0', run.code === 0 ? {} : { stderr: run.stderr });
    t.equal(run.summary?.outcome, 'ok');
    t.match(
      run.stderr,
      /would run: redis-cli -h \S+ -p 6379 --rdb \S+redis-shared-\d{8}T\d{6}Z\.rdb\.partial/,
    );
    t.match(run.stderr, /would load the new snapshot into a scratch redis-server/);
    t.notOk(existsSync(backups), 'BACKUP_DIR was not even created');
  });

  const taken: string[] = [];
  for (const n of [1, 2, 3]) {
    await t.test(`backup ${n} runs for real and is verified`, async (t) => {
      const liveKeys = await live.dbsize();
      const run = await rb.run('backup', ['--yes', '--json']);
      t.equal(run.code, 0, 'exit 0', run.code === 0 ? {} : { stderr: run.stderr });
      t.equal(run.summary?.outcome, 'ok');
      t.same(
        stepStatuses(run).map((s) => s.split(' ')[0]),
        ['P01', 'B01', 'B02', 'B03'],
      );
      t.notMatch(
        stepStatuses(run).join('\n'),
        /failed|skipped|not-run/,
        stepStatuses(run).join(', '),
      );
      t.match(
        run.stderr,
        /evidence BACKUP: redis-shared-\d{8}T\d{6}Z\.rdb: \d+ keys, .*agree with the live server/,
      );

      const newest = snapshots().at(-1);
      t.ok(newest && !taken.includes(newest), `a new snapshot: ${newest}`);
      if (!newest) return;
      taken.push(newest);
      const file = join(backups, newest);
      t.equal(statSync(file).mode & 0o777, 0o600, 'the snapshot is 0600');
      t.equal(statSync(backups).mode & 0o777, 0o700, 'BACKUP_DIR is 0700');
      const metaFile = file.replace(/\.rdb$/, '.json');
      t.equal(statSync(metaFile).mode & 0o777, 0o600, 'the metadata is 0600');
      const meta = JSON.parse(readFileSync(metaFile, 'utf8'));
      t.equal(meta.keys, liveKeys, 'the metadata counts the keys the live server had');
      t.ok(meta.keys >= KEYS);
      t.equal(meta.sizeBytes, statSync(file).size, 'size');
      t.match(meta.sha256, /^[0-9a-f]{64}$/, 'checksum');
      t.ok(Date.parse(meta.finishedAt) >= Date.parse(meta.startedAt), 'time');
      t.equal(meta.verification.ok, true, 'the verification passed');
      t.ok(meta.verification.sampled > 0, 'keys were sampled');
      t.same(
        readdirSync(backups).filter((f) => f.endsWith('.partial')),
        [],
        'no partial file',
      );
    });
  }

  await t.test('retention keeps the newest BACKUP_KEEP=2, with their metadata', async (t) => {
    t.same(snapshots(), taken.slice(-2), 'the oldest snapshot was removed');
    t.notOk(
      existsSync(join(backups, (taken[0] ?? '').replace(/\.rdb$/, '.json'))),
      'and its metadata',
    );
  });

  await t.test('a snapshot that disagrees with the live server fails B02', async (t) => {
    const newest = taken.at(-1);
    if (!newest) return t.fail('no snapshot to replace');
    const empty = await startRedisServer(t, { persistence: 'none' });
    await redisCli(empty, ['--rdb', join(backups, newest)]);
    const run = await rb.run('backup', ['--only', 'B02', '--yes', '--json']);
    t.equal(run.code, 1, 'exit 1: a step failed');
    t.same(stepStatuses(run), ['P01 skipped', 'B01 skipped', 'B02 failed', 'B03 not-run']);
    t.match(
      run.stderr,
      /the snapshot does not agree with the live server: the snapshot holds 0 keys/,
    );
    const meta = JSON.parse(readFileSync(join(backups, newest.replace(/\.rdb$/, '.json')), 'utf8'));
    t.equal(meta.verification.ok, false, 'the metadata says so');
    t.equal(meta.keys, 0);
  });

  await t.test('the password appears in no output, audit line or metadata', async (t) => {
    for (const run of rb.runs) {
      t.notOk(
        run.stdout.includes(password) || run.stderr.includes(password),
        `not in the output of ${run.args.join(' ')}`,
      );
    }
    t.notOk(readFileSync(rb.auditLog, 'utf8').includes(password), 'not in the audit log');
    for (const f of readdirSync(backups).filter((f) => f.endsWith('.json'))) {
      t.notOk(readFileSync(join(backups, f), 'utf8').includes(password), `not in ${f}`);
    }
    const audit = readFileSync(rb.auditLog, 'utf8');
    t.match(audit, /redis-cli -h \S+ -p 6379 --rdb/, 'the command is audited, without a password');
  });

  // Last: the guide's own lines may restart a pod.
  await t.test("the operations guide's kubectl lines run as written after 02", async (t) => {
    const guide = readFileSync(join(REPO, 'docs', 'operations.md'), 'utf8');
    const lines = [...guide.matchAll(/`(kubectl [^`<]+)`/g)].map((m) =>
      (m[1] as string).replace(/\s+/g, ' ').trim(),
    );
    t.ok(lines.length >= 4, `${lines.length} kubectl lines`);
    for (const line of lines) {
      const out = await kubectl(line.split(' ').slice(1), 60_000).then(
        () => 'ok',
        (err: { stderr?: string; killed?: boolean }) =>
          err.killed ? 'still waiting after 60 s' : (err.stderr ?? String(err)),
      );
      // A pod that never restarted has no previous container: the API says so, as on K3s.
      const expected = line.includes('--previous') ? /^ok$|previous terminated container/ : /^ok$/;
      t.match(out, expected, line);
    }
  });

  await t.test(
    "the guide's redis-cli block runs as written from the repository's directory",
    async (t) => {
      const guide = readFileSync(join(REPO, 'docs', 'operations.md'), 'utf8');
      const block = [...guide.matchAll(/```sh\n([\s\S]*?)```/g)]
        .map((m) => m[1] as string)
        .find((b) => b.includes('REDISCLI_AUTH='));
      if (!block) return t.fail('the guide has a block that sets REDISCLI_AUTH');
      // The repository's directory as an operator has it: .env with this cluster's settings.
      const cwd = mkdtempSync(join(tmpdir(), 'guide-redis-cli-'));
      t.teardown(() => rmSync(cwd, { recursive: true, force: true }));
      copyFileSync(rb.envFile, join(cwd, '.env'));
      const result = await runProcess('bash', ['-euo', 'pipefail', '-c', block], {
        cwd,
        env: { PATH: process.env.PATH ?? '', HOME: cwd },
        timeout: 60_000,
      }).then(
        (r) => ({ code: 0, ...r }),
        (err: { code?: number; stdout?: string; stderr?: string }) => ({
          code: err.code ?? -1,
          stdout: err.stdout ?? '',
          stderr: err.stderr ?? '',
        }),
      );
      t.equal(result.code, 0, 'every line succeeded', { stderr: result.stderr });
      t.match(result.stdout, /^used_memory:\d+/m, 'INFO memory answers through the LoadBalancer');
      t.match(result.stdout, /^maxmemory:\d+/m, 'with maxmemory beside it');
      t.match(result.stdout, /Sampled \d+ keys in the keyspace/, '--bigkeys scanned the keys');
      t.match(
        result.stdout,
        /^\d+ \d+ \d+(\.\d+)? \d+$/m,
        '--latency printed min, max, avg and samples',
      );
      t.notMatch(result.stderr, /NOAUTH|WRONGPASS|AUTH failed/, 'REDISCLI_AUTH was the password');
      t.notOk(
        `${result.stdout}${result.stderr}`.includes(password),
        'the password was not printed',
      );
    },
  );
});
