// The backup runbook's judgement on plain values: snapshot names that sort by time, the
// metadata's file beside the snapshot, retention's choice of what to remove, and the comparison
// of a loaded snapshot with the live server.
import t from 'tap';
import {
  backupFileName,
  compareSnapshot,
  describeBackup,
  filesOfSnapshots,
  keyspaceKeys,
  keysRemovedByServer,
  metadataFileName,
  type SampledKey,
  snapshotsToRemove,
} from '../../lib/phases/backup.ts';

t.test('a snapshot is named by its UTC time, so the names sort as the times do', async (t) => {
  const name = backupFileName(new Date('2026-12-06T10:50:12.345Z'));
  t.equal(name, 'redis-shared-20261206T105012Z.rdb');
  t.equal(metadataFileName(name), 'redis-shared-20261206T105012Z.json');
  const later = backupFileName(new Date('2027-01-01T00:00:00Z'));
  t.ok([later, name].sort()[0] === name, 'the older sorts first');
});

t.test('retention keeps the newest N snapshots and removes the rest, oldest first', async (t) => {
  const names = [
    'redis-shared-20261203T000000Z.rdb',
    'redis-shared-20261203T000000Z.json',
    'redis-shared-20261201T000000Z.rdb',
    'redis-shared-20261202T000000Z.rdb',
    'redis-shared-20261204T000000Z.rdb.partial',
    'beersystem-deployment-abc.json',
    'old-redis-abc.json',
  ];
  t.same(snapshotsToRemove(names, 2), ['redis-shared-20261201T000000Z.rdb']);
  t.same(snapshotsToRemove(names, 1), [
    'redis-shared-20261201T000000Z.rdb',
    'redis-shared-20261202T000000Z.rdb',
  ]);
  t.same(snapshotsToRemove(names, 3), [], 'at or under N: nothing');
  t.same(snapshotsToRemove([], 1), []);
  t.same(filesOfSnapshots(['redis-shared-20261201T000000Z.rdb']), [
    'redis-shared-20261201T000000Z.rdb',
    'redis-shared-20261201T000000Z.json',
  ]);
  t.throws(() => snapshotsToRemove(names, 0), /BACKUP_KEEP/, 'keeping none is refused');
});

const key = (
  k: string,
  snapshotType: string,
  liveType: string,
  snapshotTtlMs = -1,
): SampledKey => ({
  key: k,
  snapshotType,
  liveType,
  snapshotTtlMs,
});

t.test('a snapshot that holds what the live server held agrees with it', async (t) => {
  const v = compareSnapshot({
    liveKeysBefore: 50,
    liveKeysAfter: 50,
    liveKeysExpired: 0,
    snapshotKeys: 50,
    sample: [key('a', 'string', 'string'), key('b', 'hash', 'hash')],
  });
  t.ok(v.ok, v.line);
  t.equal(v.allowance, 0);
  t.equal(v.sampled, 2);
  t.match(v.line, /50 keys agree/);
});

t.test('a key count outside what writes and expiries explain is a mismatch', async (t) => {
  const v = compareSnapshot({
    liveKeysBefore: 50,
    liveKeysAfter: 50,
    liveKeysExpired: 0,
    snapshotKeys: 40,
    sample: [],
  });
  t.notOk(v.ok);
  t.match(v.mismatches[0], /holds 40 keys, the live server 50 before and 50 after/);
  const during = compareSnapshot({
    liveKeysBefore: 50,
    liveKeysAfter: 58,
    liveKeysExpired: 2,
    snapshotKeys: 49,
    sample: [],
  });
  t.ok(during.ok, 'keys written and expired during the backup are allowed for');
  t.equal(during.allowance, 10);
});

t.test('sampled keys: a different type is a mismatch, an expired TTL key is not', async (t) => {
  const wrong = compareSnapshot({
    liveKeysBefore: 3,
    liveKeysAfter: 3,
    liveKeysExpired: 0,
    snapshotKeys: 3,
    sample: [key('a', 'string', 'list'), key('b', 'string', 'none')],
  });
  t.notOk(wrong.ok);
  t.same(wrong.mismatches, [
    'key "a": string in the snapshot, list live',
    'key "b": string in the snapshot, none live',
  ]);
  const expired = compareSnapshot({
    liveKeysBefore: 3,
    liveKeysAfter: 2,
    liveKeysExpired: 1,
    snapshotKeys: 3,
    sample: [key('t', 'string', 'none', 500)],
  });
  t.ok(expired.ok, expired.line);
  const churn = compareSnapshot({
    liveKeysBefore: 3,
    liveKeysAfter: 4,
    liveKeysExpired: 0,
    snapshotKeys: 3,
    sample: [key('a', 'string', 'hash')],
  });
  t.ok(churn.ok, 'one differing key within one write during the backup');
  const many = Array.from({ length: 15 }, (_, i) => key(`k${i}`, 'string', 'none'));
  const listed = compareSnapshot({
    liveKeysBefore: 15,
    liveKeysAfter: 15,
    liveKeysExpired: 0,
    snapshotKeys: 15,
    sample: many,
  });
  t.equal(listed.mismatches.length, 11, 'ten keys named, the rest counted');
  t.match(listed.line, /and 5 more sampled keys/);
});

t.test('INFO sections are read for keys and keys the server removed', async (t) => {
  t.equal(
    keyspaceKeys(
      '# Keyspace\r\ndb0:keys=3,expires=1,avg_ttl=0\r\ndb2:keys=4,expires=0,avg_ttl=0\r\n',
    ),
    7,
  );
  t.equal(keyspaceKeys('# Keyspace\r\n'), 0);
  t.equal(keysRemovedByServer('# Stats\r\nexpired_keys:5\r\nevicted_keys:2\r\n'), 7);
  t.equal(keysRemovedByServer(''), 0);
});

t.test('a backup is described by its name, keys, size, duration and time', async (t) => {
  t.equal(
    describeBackup({
      file: '/x/redis-shared-20261206T105012Z.rdb',
      keys: 120,
      sizeBytes: 2048,
      durationMs: 1500,
      finishedAt: '2026-12-06T10:50:14.000Z',
    }),
    'redis-shared-20261206T105012Z.rdb: 120 keys, 2.0 KiB, taken in 1.5 s, finished 2026-12-06T10:50:14.000Z',
  );
  t.match(
    describeBackup({ file: 'a.rdb', keys: 1, sizeBytes: 3 << 20, durationMs: 0, finishedAt: 'x' }),
    /3\.0 MiB/,
  );
});
