// The restore runbook's judgement on plain values: which snapshot is restored by default, which
// one is refused, the sentence that names what a restore overwrites, and the drill's verdict on
// its markers (the measured RPO).
import t from 'tap';
import type { BackupMetadata } from '../../lib/phases/backup.ts';
import {
  type DrillMarker,
  describeRto,
  judgeRpo,
  type MarkerReadback,
  markerKey,
  newestVerifiedSnapshot,
  overwriteSentence,
  refusalOf,
  rpoWindowMs,
  snapshotsNewestFirst,
} from '../../lib/phases/restore.ts';

const SHA = 'a'.repeat(64);

function metadata(file: string, ok: boolean, extra: Partial<BackupMetadata> = {}): BackupMetadata {
  return {
    file,
    startedAt: '2026-12-06T10:50:12.000Z',
    finishedAt: '2026-12-06T10:50:13.000Z',
    durationMs: 1000,
    sizeBytes: 4096,
    sha256: SHA,
    keys: 200,
    source: '192.168.1.240:6379',
    runId: 'run-1',
    verification: {
      ok,
      allowance: 0,
      sampled: 100,
      mismatches: [],
      line: ok ? 'agree' : 'the snapshot holds 0 keys',
    },
    ...extra,
  };
}

t.test('the snapshots in BACKUP_DIR, newest first; other files are not snapshots', async (t) => {
  t.same(
    snapshotsNewestFirst([
      'redis-shared-20261201T000000Z.rdb',
      'redis-shared-20261203T000000Z.json',
      'redis-shared-20261203T000000Z.rdb',
      'redis-shared-20261204T000000Z.rdb.partial',
      'old-redis-abc.json',
      '/backups/redis-shared-20261202T000000Z.rdb',
    ]),
    [
      'redis-shared-20261203T000000Z.rdb',
      'redis-shared-20261202T000000Z.rdb',
      'redis-shared-20261201T000000Z.rdb',
    ],
  );
});

t.test(
  'by default the newest verified snapshot is restored, never a failed or unverified one',
  async (t) => {
    const a = 'redis-shared-20261201T000000Z.rdb';
    const b = 'redis-shared-20261202T000000Z.rdb';
    const c = 'redis-shared-20261203T000000Z.rdb';
    const d = 'redis-shared-20261204T000000Z.rdb';
    t.equal(
      newestVerifiedSnapshot([
        { name: a, metadata: metadata(a, true) },
        { name: b, metadata: metadata(b, true) },
        { name: c, metadata: metadata(c, false) },
        { name: d, metadata: undefined },
      ]),
      b,
      'the newer ones failed their check or have no metadata',
    );
    t.equal(newestVerifiedSnapshot([{ name: c, metadata: metadata(c, false) }]), undefined);
    t.equal(newestVerifiedSnapshot([]), undefined);
  },
);

t.test(
  'a snapshot is refused without metadata, after a failed verification, or when its sha256 changed',
  async (t) => {
    const file = '/backups/redis-shared-20261201T000000Z.rdb';
    t.equal(refusalOf(file, metadata(file, true), SHA), undefined, 'verified and unchanged');
    t.match(
      refusalOf(file, undefined, SHA),
      /has no metadata \(redis-shared-20261201T000000Z\.json\)/,
    );
    t.match(
      refusalOf(file, metadata(file, false), SHA),
      /failed its verification .*the snapshot holds 0 keys/,
    );
    t.match(
      refusalOf(file, metadata(file, true), 'b'.repeat(64)),
      /has changed since it was taken: its sha256 is b{64}, its metadata says a{64}/,
    );
  },
);

t.test('the confirmation names what is overwritten by what', async (t) => {
  const file = 'redis-shared-20261201T000000Z.rdb';
  t.equal(
    overwriteSentence(
      { file: `/b/${file}`, metadata: metadata(file, true), liveKeys: 37 },
      'redis-shared',
    ),
    'all 37 keys of redis-shared are replaced by the 200 keys of redis-shared-20261201T000000Z.rdb taken at 2026-12-06T10:50:13.000Z',
  );
});

function readback(
  phase: 'before' | 'after',
  i: number,
  back: 'same' | 'absent' | 'changed' | 'no-ttl',
): MarkerReadback {
  const marker: DrillMarker = {
    key: markerKey('run-9', phase, i),
    value: `v${i}`,
    phase,
    writtenAt: '2026-12-06T10:50:00.000Z',
  };
  if (back === 'absent') return { marker, value: undefined, ttlMs: -2 };
  return {
    marker,
    value: back === 'changed' ? 'other' : marker.value,
    ttlMs: back === 'no-ttl' ? -1 : 3_500_000,
  };
}

t.test(
  'RPO: the markers before the backup come back with their TTL, the ones after are lost',
  async (t) => {
    const verdict = judgeRpo([
      readback('before', 0, 'same'),
      readback('before', 1, 'same'),
      readback('after', 0, 'absent'),
      readback('after', 1, 'absent'),
    ]);
    t.equal(verdict.ok, true);
    t.same(verdict.lost, ['restore-drill:run-9:after:0', 'restore-drill:run-9:after:1']);
    t.equal(
      verdict.line,
      '2/2 markers written before the backup came back with their TTL; 2/2 written after it were lost (the RPO)',
    );
  },
);

t.test(
  'RPO: a missing, changed or TTL-less marker from before, or one from after still there, fails the drill',
  async (t) => {
    for (const [name, readbacks, problem] of [
      ['missing', [readback('before', 0, 'absent')], /before:0 \(before the backup\) is missing/],
      ['changed', [readback('before', 0, 'changed')], /before:0 came back changed/],
      [
        'without TTL',
        [readback('before', 0, 'no-ttl')],
        /before:0 came back without its time to live/,
      ],
      [
        'after still there',
        [readback('before', 0, 'same'), readback('after', 0, 'same')],
        /after:0 \(after the backup\) is still there: the data was not replaced/,
      ],
    ] as const) {
      const verdict = judgeRpo(readbacks);
      t.equal(verdict.ok, false, name);
      t.match(verdict.line, problem, name);
    }
    t.equal(judgeRpo([]).ok, false, 'a drill without markers proves nothing');
  },
);

t.test('the RPO window and the RTO line', async (t) => {
  t.equal(rpoWindowMs('2026-12-06T10:50:13.000Z', '2026-12-06T10:52:13.000Z'), 120_000);
  t.equal(rpoWindowMs('2026-12-06T10:50:13.000Z', '2026-12-06T10:50:00.000Z'), 0);
  t.equal(
    describeRto(2500, '2026-12-06T10:52:13.000Z', '2026-12-06T10:52:15.500Z'),
    'RTO 2.5s: restore decided at 2026-12-06T10:52:13.000Z, beersystem healthy again at 2026-12-06T10:52:15.500Z',
  );
});
