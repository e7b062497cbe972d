// runbooks/restore.mts against the sandbox after 01-setup and 02-deploy, all real: redis-server
// behind the LoadBalancer, redis-cli --rdb for the backup, a scratch redis-server loading the RDB
// file, the copy with TTLs through the LoadBalancer. The master's data is lost as on a real
// cluster: the StatefulSet scaled to 0, its PVC deleted and its volume's directory removed, then
// scaled back so the master starts empty. beersystem is checked wherever it runs (here on its
// own Redis: 05-migrate is not run, to keep the test short). Then the drill measures the RPO
// with its markers. The password appears in no output and no audit line.
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { readNotes } from '../../lib/engine/notes.ts';
import { openRedis } from '../../lib/redis/redis-probe.ts';
import { runbookSandbox, stepStatuses } from '../helpers/runbook-sandbox.ts';
import { secretPassword } from '../helpers/secret.ts';
import { type SandboxFixture, startWholeSandbox } from '../helpers/workloads-sandbox.ts';

t.setTimeout(900_000);

const BEFORE = 120;
const AFTER = 30;
const TTL_MS = 600_000;
const CONFIRM = ['--confirm', 'redis/redis-shared'];

t.test('restore of redis-shared in the sandbox', async (t) => {
  let fx: SandboxFixture | undefined;
  t.teardown(async () => {
    await fx?.close();
  });
  fx = await startWholeSandbox();
  await fx.sandbox.settled(30_000);
  const { sandbox, kubectl, runDir } = fx;
  const rb = runbookSandbox(runDir, sandbox);

  for (const phase of ['01-setup', '02-deploy']) {
    const run = await rb.run(phase, ['--yes', '--json']);
    t.equal(run.code, 0, `${phase} completed`, run.code === 0 ? {} : { stderr: run.stderr });
  }

  const password = await secretPassword(kubectl, 'redis');
  const connect = () =>
    openRedis({ host: sandbox.network.redisLbIp, port: 6379, password, name: 'restore-e2e' });
  let live = await connect();
  t.teardown(() => live.disconnect());

  // Every fourth key without a TTL, the others with one; strings, hashes and lists.
  const write = live.pipeline();
  for (let i = 0; i < BEFORE; i++) {
    const ttl = i % 4 === 0 ? undefined : TTL_MS;
    if (i % 3 === 0) write.hset(`restore:e2e:before:${i}`, 'f', String(i));
    else if (i % 3 === 1) write.rpush(`restore:e2e:before:${i}`, 'a', String(i));
    else write.set(`restore:e2e:before:${i}`, String(i));
    if (ttl) write.pexpire(`restore:e2e:before:${i}`, ttl);
  }
  await write.exec();

  const backup = await rb.run('backup', ['--yes', '--json']);
  t.equal(backup.code, 0, 'backup.mts took a verified snapshot', { stderr: backup.stderr });
  const snapshot = readdirSync(join(runDir, 'backups')).find((f) => f.endsWith('.rdb'));
  t.ok(snapshot, `the snapshot: ${snapshot}`);

  const after = live.pipeline();
  for (let i = 0; i < AFTER; i++) after.set(`restore:e2e:after:${i}`, String(i));
  await after.exec();
  const keysBeforeLoss = await live.dbsize();

  await t.test('--dry-run names what it would do and changes nothing', async (t) => {
    const run = await rb.run('restore', ['--dry-run', '--json']);
    t.equal(run.code, 0, 'exit 0', run.code === 0 ? {} : { stderr: run.stderr });
    t.equal(run.summary?.outcome, 'ok');
    t.match(
      run.stderr,
      new RegExp(
        `all ${keysBeforeLoss} keys of redis-shared are replaced by the \\d+ keys of ${snapshot} taken at`,
      ),
    );
    t.match(
      run.stderr,
      /would load \S+ into a scratch redis-server .*delete every key of redis-shared/,
    );
    t.equal(await live.dbsize(), keysBeforeLoss, 'the key count is unchanged');
  });

  await t.test('without a terminal, --yes alone does not restore', async (t) => {
    const run = await rb.run('restore', ['--yes', '--json']);
    t.equal(run.code, 2, 'refused before the first step');
    t.match(run.stderr, /--confirm redis\/redis-shared/);
    t.equal(await live.dbsize(), keysBeforeLoss, 'the key count is unchanged');
  });

  await t.test(
    "the master's data is lost: StatefulSet at 0, PVC deleted, volume gone",
    async (t) => {
      const ns = 'redis';
      await kubectl(['scale', 'statefulset', 'redis-shared-master', '-n', ns, '--replicas=0']);
      await waitUntil(async () => !(await podNames(kubectl, ns)).includes('redis-shared-master-0'));
      const claims = (
        await kubectl(['get', 'pvc', '-n', ns, '-o', 'jsonpath={.items[*].metadata.name}'])
      )
        .split(' ')
        .filter((c) => c.includes('master'));
      t.equal(claims.length, 1, `the master's claim: ${claims.join(', ')}`);
      await kubectl(['delete', 'pvc', claims[0]!, '-n', ns, '--wait=false']);
      rmSync(join(runDir, 'data', ns, claims[0]!), { recursive: true, force: true });
      await kubectl(['scale', 'statefulset', 'redis-shared-master', '-n', ns, '--replicas=1']);
      live.disconnect();
      await waitUntil(async () => {
        try {
          live = await connect();
          return true;
        } catch {
          return false;
        }
      });
      t.equal(await live.dbsize(), 0, 'the master came back empty');
    },
  );

  let restore: Awaited<ReturnType<typeof rb.run>> | undefined;
  await t.test('restore.mts --yes --confirm restores the newest verified snapshot', async (t) => {
    restore = await rb.run('restore', ['--yes', ...CONFIRM, '--json']);
    t.equal(restore.code, 0, 'exit 0', restore.code === 0 ? {} : { stderr: restore.stderr });
    t.same(stepStatuses(restore), ['P01 ok', 'R01 ok', 'R02 ok', 'R03 ok']);
    t.match(
      restore.stderr,
      new RegExp(`all 0 keys of redis-shared are replaced by the ${BEFORE} keys of ${snapshot}`),
    );
    t.match(
      restore.stderr,
      /evidence RESTORE-RTO: RTO \S+: restore decided at \S+, beersystem healthy again at/,
    );
  });

  await t.test(
    'the keys from before the backup are back with their TTLs, the later ones are not',
    async (t) => {
      t.equal(await live.dbsize(), BEFORE, 'exactly the snapshot');
      let withTtl = 0;
      for (let i = 0; i < BEFORE; i++) {
        const key = `restore:e2e:before:${i}`;
        const ttl = await live.pttl(key);
        if (i % 4 === 0) t.equal(ttl, -1, `${key} has no TTL, as before`);
        else if (ttl > 0 && ttl <= TTL_MS) withTtl++;
        if (i % 3 === 0) t.equal(await live.hget(key, 'f'), String(i));
        else if (i % 3 === 1) t.same(await live.lrange(key, 0, -1), ['a', String(i)]);
        else t.equal(await live.get(key), String(i));
      }
      t.equal(withTtl, BEFORE - BEFORE / 4, 'every key that had a TTL has it again');
      t.equal(
        (await live.keys('restore:e2e:after:*')).length,
        0,
        'the writes after the backup are lost',
      );
    },
  );

  await t.test('the replica is linked and has acknowledged every restored write', async (t) => {
    t.match(await live.info('replication'), /connected_slaves:1/);
    t.equal(Number(await live.call('WAIT', '1', '5000')), 1, 'WAIT 1: the replica is caught up');
  });

  await t.test('the RTO is recorded as evidence', async (t) => {
    const notes = await readNotes(rb.auditLog, { runbook: 'restore', key: 'evidence.RESTORE-RTO' });
    const data = notes.at(-1)?.value as Record<string, unknown> | undefined;
    t.ok(data, 'evidence RESTORE-RTO');
    t.ok(typeof data?.rtoMs === 'number' && data.rtoMs > 0, `RTO ${data?.rtoMs} ms`);
    t.equal(data?.snapshot, snapshot);
    t.equal(data?.keysRestored, BEFORE);
  });

  await t.test('the drill with --dry-run changes nothing and takes no snapshot', async (t) => {
    const keys = await live.dbsize();
    const files = readdirSync(join(runDir, 'backups')).length;
    const run = await rb.run('restore', ['--drill', '--dry-run', '--json']);
    t.equal(run.code, 0, 'exit 0', run.code === 0 ? {} : { stderr: run.stderr });
    t.equal(run.summary?.outcome, 'ok');
    t.match(run.stderr, /would write 5 markers restore-drill:\S+:before:0/);
    t.match(run.stderr, /would run: redis-cli -h \S+ -p 6379 --rdb/);
    t.match(run.stderr, /would delete every key of redis-shared/);
    t.equal(await live.dbsize(), keys, 'the key count is unchanged');
    t.equal(readdirSync(join(runDir, 'backups')).length, files, 'no snapshot was written');
  });

  await t.test(
    'the drill measures the RPO: markers before come back, markers after are lost',
    async (t) => {
      const run = await rb.run('restore', ['--drill', '--yes', ...CONFIRM, '--json']);
      t.equal(run.code, 0, 'exit 0', run.code === 0 ? {} : { stderr: run.stderr });
      t.same(
        stepStatuses(run).map((s) => s.split(' ')[0]),
        ['P01', 'D01', 'B01', 'B02', 'D02', 'D03', 'R01', 'R02', 'R03', 'D04'],
      );
      t.notMatch(
        stepStatuses(run).join('\n'),
        /failed|skipped|not-run/,
        stepStatuses(run).join(', '),
      );
      t.match(
        run.stderr,
        /evidence RESTORE-RPO: 5\/5 markers written before the backup came back with their TTL; 5\/5 written after it were lost \(the RPO\)/,
      );
      t.equal(
        (await live.keys('restore-drill:*:before:*')).length,
        5,
        'the markers before are there',
      );
      t.equal((await live.keys('restore-drill:*:after:*')).length, 0, 'the markers after are not');
      t.equal(
        (await live.keys('restore:e2e:before:*')).length,
        BEFORE,
        'the other keys came back too',
      );
      const notes = await readNotes(rb.auditLog, {
        runbook: 'restore',
        key: 'evidence.RESTORE-RPO',
      });
      const data = notes.at(-1)?.value as Record<string, unknown> | undefined;
      t.equal(data?.met, true);
      t.equal((data?.lost as string[] | undefined)?.length, 5);
      t.ok(Number(data?.snapshotSizeBytes) > 0, 'the backup size is recorded');
      // The measured figures, for docs/operations.md.
      for (const line of run.stderr.split('\n').filter((l) => /evidence (BACKUP|RESTORE-)/.test(l)))
        t.comment(line.trim());
    },
  );

  await t.test('a snapshot whose sha256 changed is refused and nothing changes', async (t) => {
    const file = join(runDir, 'backups', snapshot!);
    const bytes = readFileSync(file);
    bytes.writeUInt8(bytes.readUInt8(bytes.length - 1) ^ 0xff, bytes.length - 1);
    writeFileSync(file, bytes);
    const keys = await live.dbsize();
    const run = await rb.run('restore', ['--backup', snapshot!, '--yes', ...CONFIRM, '--json']);
    t.equal(run.code, 1);
    t.same(stepStatuses(run), ['P01 ok', 'R01 failed', 'R02 not-run', 'R03 not-run']);
    t.match(run.stderr, /has changed since it was taken: its sha256 is/);
    t.match(run.stderr, /redis-shared: it holds \d+ keys; this run replaced none of its keys/);
    t.equal(await live.dbsize(), keys, 'the key count is unchanged');
  });

  await t.test('the password appears in no output and no audit line', async (t) => {
    for (const run of rb.runs) {
      t.notOk(
        run.stdout.includes(password) || run.stderr.includes(password),
        `not in the output of ${run.args.join(' ')}`,
      );
    }
    const audit = readFileSync(rb.auditLog, 'utf8');
    t.notOk(audit.includes(password), 'not in the audit log');
    const emptied = await readNotes(rb.auditLog, { runbook: 'restore', key: 'restore.emptied' });
    t.ok(emptied.length >= 2, 'each emptying of redis-shared is in the audit log');
    for (const f of readdirSync(join(runDir, 'backups')).filter((f) => f.endsWith('.json'))) {
      t.notOk(readFileSync(join(runDir, 'backups', f), 'utf8').includes(password), `not in ${f}`);
    }
    t.ok(existsSync(rb.auditLog));
  });
});

async function podNames(kubectl: (a: string[]) => Promise<string>, ns: string) {
  return (
    await kubectl(['get', 'pods', '-n', ns, '-o', 'jsonpath={.items[*].metadata.name}'])
  ).split(' ');
}

async function waitUntil(check: () => Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 250));
  }
}
