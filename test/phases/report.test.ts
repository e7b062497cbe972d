import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import type { AuditEntry } from '../../lib/audit/audit.ts';
import { clearSecretsForTests, registerSecret } from '../../lib/mask.ts';
import {
  BENCHMARK_NOTE,
  DOWNTIME_END_NOTE,
  DOWNTIME_START_NOTE,
  USER_HEALTH_NOTE,
} from '../../lib/phases/migration-notes.ts';
import {
  buildReport,
  type NoteRecord,
  renderMarkdown,
  SUCCESS_CRITERIA,
  shortRunId,
  toEvidence,
} from '../../lib/phases/report.ts';
import { fileStamp, writeReportFiles } from '../../lib/phases/report-files.ts';
import {
  escapeHtml,
  latencyHistogramSvg,
  renderHtml,
  throughputSvg,
  timelineSvg,
} from '../../lib/phases/report-html.ts';
import { latencyHistogram } from '../../lib/redis/latency-histogram.ts';

const RUN05 = '20261130T140118Z-a1b2c3';
const RUN03 = '20261130T130000Z-ffee01';

function note(
  key: string,
  value: unknown,
  ts: string,
  extra: Partial<NoteRecord> = {},
): NoteRecord {
  return { runbook: '05-migrate', run_id: RUN05, step: 'T041', ts, key, value, ...extra };
}

let seq = 0;
function entry(partial: Partial<AuditEntry> & Pick<AuditEntry, 'event' | 'ts'>): AuditEntry {
  seq++;
  return {
    seq,
    run_id: RUN05,
    runbook: '05-migrate',
    step: null,
    risk: null,
    command: null,
    dry_run: false,
    operator: 'op',
    host: 'h',
    kube_context: 'sandbox',
    git_rev: null,
    outcome: null,
    duration_ms: null,
    detail: null,
    prev: '',
    hash: '',
    ...partial,
  };
}

const notes: NoteRecord[] = [
  note(
    'evidence.SC-001',
    { summary: 'p95 0.9 ms over 1000 round trips (< 10 ms): met', met: true, p95Ms: 0.9 },
    '2026-11-30T13:00:05Z',
    { runbook: '03-access', run_id: RUN03, step: 'T019' },
  ),
  note(
    'evidence.SC-001',
    { summary: 'p95 0.4 ms (redis-benchmark, in cluster): met', data: { met: true, p95Ms: 0.4 } },
    '2026-11-30T15:00:00Z',
    { runbook: '07-polish', run_id: 'r7-000007', step: 'T046' },
  ),
  note(
    'evidence.SC-006',
    { summary: '61,000 ops/s (>= 10,000): NOT met?', met: false },
    '2026-11-30T15:00:01Z',
    { runbook: '07-polish', run_id: 'r7-000007', step: 'T046' },
  ),
  note(
    'evidence.SC-002',
    { summary: 'failover drill skipped with --skip-failover' },
    '2026-11-30T13:00:09Z',
    { runbook: '03-access', run_id: RUN03, step: 'T021' },
  ),
  note(
    'evidence.SC-009',
    'login, session and cache work through redis-shared',
    '2026-11-30T14:02:00Z',
  ),
  note(
    'evidence.US4-AS-3',
    { summary: 'beersystem connected to redis-shared', met: true },
    '2026-11-30T14:02:01Z',
  ),
  note(DOWNTIME_START_NOTE, '2026-11-30T14:01:20.000Z', '2026-11-30T14:01:20.001Z', {
    step: 'T035',
  }),
  note(DOWNTIME_END_NOTE, { at: '2026-11-30T14:01:26.500Z' }, '2026-11-30T14:01:26.600Z', {
    step: 'T040',
  }),
  note(
    BENCHMARK_NOTE,
    {
      throughput: [{ label: 'SET (in cluster)', opsPerSec: 61000 }, { label: 'bad' }],
      histogram: [
        { leMs: 0.5, count: 10 },
        { leMs: 1, count: 3 },
      ],
      histogramLabel: 'through the LoadBalancer',
    },
    '2026-11-30T15:00:02Z',
    { runbook: '07-polish', run_id: 'r7-000007', step: 'T046' },
  ),
];

const audit: AuditEntry[] = [
  entry({ event: 'step-start', step: 'T034', ts: '2026-11-30T14:01:19.000Z', run_id: 'other-run' }),
  entry({ event: 'verified-done', step: 'T033', ts: '2026-11-30T14:01:19.500Z' }),
  entry({ event: 'step-start', step: 'T035', ts: '2026-11-30T14:01:20.000Z' }),
  entry({
    event: 'command',
    step: 'T035',
    ts: '2026-11-30T14:01:20.100Z',
    command: 'kubectl scale deployment beersystem -n beersystem --replicas=0',
  }),
  entry({
    event: 'command',
    step: 'T035',
    ts: '2026-11-30T14:01:20.100Z',
    dry_run: true,
    command: 'kubectl would-not-count',
  }),
  entry({ event: 'step-ok', step: 'T035', ts: '2026-11-30T14:01:20.300Z' }),
  entry({ event: 'step-start', step: 'T039', ts: '2026-11-30T14:01:21.000Z' }),
  entry({ event: 'step-failed', step: 'T039', ts: '2026-11-30T14:01:22.000Z' }),
  entry({ event: 'step-start', step: 'T040', ts: '2026-11-30T14:01:23.000Z' }),
];

t.test('the report has ten SC rows, SC-001 … SC-010, in order', async (t) => {
  const report = buildReport({ notes, audit, generatedAt: '2026-11-30T15:10:00.000Z' });
  t.same(
    report.criteria.map((r) => r.criterion.id),
    Array.from({ length: 10 }, (_, i) => `SC-${String(i + 1).padStart(3, '0')}`),
  );
  t.equal(SUCCESS_CRITERIA.length, 10);
});

t.test(
  'each row: the latest evidence with value, when, run and step, or "not proven" with why',
  async (t) => {
    const report = buildReport({ notes, audit });
    const row = (id: string) => report.criteria.find((r) => r.criterion.id === id)!;
    t.equal(row('SC-001').verdict, 'met');
    t.equal(row('SC-001').evidence?.runbook, '07-polish', 'the later of two pieces wins');
    t.equal(row('SC-001').earlier.length, 1, 'the earlier piece is kept');
    t.equal(row('SC-001').evidence?.data.p95Ms, 0.4, 'nested data is flattened');
    t.equal(row('SC-006').verdict, 'not met');
    t.match(row('SC-006').why, /NOT met/);
    t.equal(row('SC-002').verdict, 'not proven', 'a fact without a verdict proves nothing');
    t.match(row('SC-002').why, /without a verdict: failover drill skipped/);
    t.equal(row('SC-009').verdict, 'not proven', 'a bare string carries no verdict');
    t.equal(row('SC-004').verdict, 'not proven');
    t.match(row('SC-004').why, /no evidence recorded: 03-access T030/);
    t.same(
      report.otherEvidence.map((e) => e.id),
      ['US4-AS-3'],
    );
  },
);

t.test(
  'the migration timeline: 05 steps of the downtime run, with the downtime from its notes',
  async (t) => {
    const report = buildReport({ notes, audit, stepTitles: { T035: 'Scale beersystem to 0' } });
    const tl = report.timeline!;
    t.equal(tl.runId, RUN05);
    t.same(
      tl.steps.map((s) => [s.step, s.outcome]),
      [
        ['T033', 'verified-done'],
        ['T035', 'ok'],
        ['T039', 'failed'],
        ['T040', 'running'],
      ],
      'another run\'s steps are left out; an unfinished step stays "running"',
    );
    t.equal(tl.steps[1]!.title, 'Scale beersystem to 0');
    t.equal(tl.downtime?.ms, 6500);
    t.equal(buildReport({ notes: [], audit }).timeline, undefined, 'no T035, no timeline');
    const noEnd = buildReport({ notes: notes.filter((n) => n.key !== DOWNTIME_END_NOTE), audit });
    t.equal(noEnd.timeline?.downtime?.ms, undefined);
    t.match(
      renderMarkdown(noEnd),
      /its end is unknown: no run of the attempt saw beersystem Ready/,
    );
  },
);

t.test(
  'the report tells one story per attempt across its runs: a failed run, its resume, a rollback',
  async (t) => {
    const A = '20261206T024400Z-aaa111';
    const RESUME = '20261206T025000Z-bbb222';
    const B = '20261206T030000Z-ccc333';
    const BACK = '20261206T030500Z-ddd444';
    const n = (run_id: string, key: string, value: unknown, ts: string, attempt: string) =>
      note(key, value, ts, { run_id, attempt, step: null });
    const attemptNotes: NoteRecord[] = [
      // attempt 1: T039 fails, the operator stops; a resume completes it
      n(A, 'attempt.open', { attempt: A }, '2026-12-06T02:44:44.000Z', A),
      n(A, DOWNTIME_START_NOTE, '2026-12-06T02:44:44.000Z', '2026-12-06T02:44:44.001Z', A),
      n(RESUME, DOWNTIME_END_NOTE, '2026-12-06T02:50:46.800Z', '2026-12-06T02:50:47.000Z', A),
      n(
        RESUME,
        'attempt.close',
        { attempt: A, outcome: 'completed' },
        '2026-12-06T02:50:50.000Z',
        A,
      ),
      // attempt 2: killed in T040, then rolled back
      n(B, 'attempt.open', { attempt: B }, '2026-12-06T03:00:10.000Z', B),
      n(B, DOWNTIME_START_NOTE, '2026-12-06T03:00:10.000Z', '2026-12-06T03:00:10.001Z', B),
      n(
        BACK,
        'attempt.close',
        { attempt: B, outcome: 'rolled-back' },
        '2026-12-06T03:06:00.000Z',
        B,
      ),
    ];
    const e = (
      run_id: string,
      event: AuditEntry['event'],
      ts: string,
      step: string | null = null,
    ) => entry({ run_id, event, ts, step });
    const attemptAudit: AuditEntry[] = [
      e(A, 'run-start', '2026-12-06T02:44:00.000Z'),
      e(A, 'step-start', '2026-12-06T02:44:44.000Z', 'T035'),
      e(A, 'step-ok', '2026-12-06T02:44:45.000Z', 'T035'),
      e(A, 'step-start', '2026-12-06T02:44:50.000Z', 'T039'),
      e(A, 'step-failed', '2026-12-06T02:45:00.000Z', 'T039'),
      e(A, 'run-end', '2026-12-06T02:46:00.000Z'),
      e(RESUME, 'run-start', '2026-12-06T02:50:00.000Z'),
      e(RESUME, 'step-start', '2026-12-06T02:50:01.000Z', 'T039'),
      e(RESUME, 'step-ok', '2026-12-06T02:50:40.000Z', 'T039'),
      e(RESUME, 'step-start', '2026-12-06T02:50:41.000Z', 'T040'),
      e(RESUME, 'step-ok', '2026-12-06T02:50:47.000Z', 'T040'),
      e(RESUME, 'run-end', '2026-12-06T02:50:51.000Z'),
      e(B, 'run-start', '2026-12-06T03:00:00.000Z'),
      e(B, 'step-start', '2026-12-06T03:00:10.000Z', 'T035'),
      e(B, 'step-ok', '2026-12-06T03:00:11.000Z', 'T035'),
      e(B, 'step-start', '2026-12-06T03:00:30.000Z', 'T040'),
      e(BACK, 'run-start', '2026-12-06T03:05:00.000Z'),
      e(BACK, 'step-start', '2026-12-06T03:05:01.000Z', 'R01'),
      e(BACK, 'step-ok', '2026-12-06T03:05:02.000Z', 'R01'),
      e(BACK, 'run-end', '2026-12-06T03:06:01.000Z'),
    ];
    const report = buildReport({ notes: attemptNotes, audit: attemptAudit });
    t.match(report.attempts, [
      { runId: A, runs: [A, RESUME], outcome: 'completed', downtime: { ms: 362_800 } },
      { runId: B, runs: [B, BACK], outcome: 'rolled-back', downtime: { ms: undefined } },
    ]);
    t.same(
      report.attempts[0]!.steps.map((s) => `${s.runId === A ? 'A' : 'R'} ${s.step} ${s.outcome}`),
      ['A T035 ok', 'A T039 failed', 'R T039 ok', 'R T040 ok'],
      'the failed apply stays marked failed beside the resume that applied',
    );
    t.equal(
      report.attempts[1]!.steps.find((s) => s.step === 'T040')?.outcome,
      'cut short',
      'a step of a killed run is cut short',
    );
    t.equal(report.timeline, report.attempts[1], 'the timeline is the last attempt');

    // What the users saw, from the prober's record of attempt 1 (two runs, two records).
    const withUsers = buildReport({
      notes: [
        ...attemptNotes.slice(0, 4),
        n(
          A,
          USER_HEALTH_NOTE,
          {
            intervalMs: 250,
            startedAt: '2026-12-06T02:44:43.900Z',
            stoppedAt: '2026-12-06T02:46:00.000Z',
            ok: 4,
            failed: 300,
            transitions: [
              { at: '2026-12-06T02:44:43.900Z', ok: true, redis: 'redis.beersystem' },
              { at: '2026-12-06T02:44:45.100Z', ok: false, error: 'HTTP 503' },
            ],
          },
          '2026-12-06T02:46:00.000Z',
          A,
        ),
        n(
          RESUME,
          USER_HEALTH_NOTE,
          {
            intervalMs: 250,
            startedAt: '2026-12-06T02:50:01.000Z',
            stoppedAt: '2026-12-06T02:50:47.500Z',
            ok: 2,
            failed: 180,
            transitions: [
              { at: '2026-12-06T02:50:01.000Z', ok: false, error: 'HTTP 503' },
              {
                at: '2026-12-06T02:50:47.250Z',
                ok: true,
                redis: 'redis-shared-master.redis.svc.cluster.local',
              },
            ],
          },
          '2026-12-06T02:50:47.600Z',
          A,
        ),
      ],
      audit: attemptAudit.slice(0, 12),
    });
    const users = withUsers.timeline?.users;
    t.match(users, { ok: 6, failed: 480, outageMs: 362_150 }, 'both runs’ records, as one');
    t.match(
      renderMarkdown(withUsers),
      /What its users saw: beersystem's \/healthz asked every 250ms \(6 healthy answers, 480 failed\); it stopped answering at 2026-12-06T02:44:45\.100Z \(HTTP 503\) and answered again at 2026-12-06T02:50:47\.250Z on redis-shared-master\.redis\.svc\.cluster\.local: its users went 6m2s without it\./,
    );
    const svg = timelineSvg(withUsers.timeline);
    t.match(svg, /<text[^>]*>users<\/text>/, 'a row for the users');
    t.equal((svg.match(/class="users-down"/g) ?? []).length, 2, 'red while it did not answer');
    const md = renderMarkdown(report);
    t.match(
      md,
      /\| aaa111 \| aaa111, bbb222 \| completed \| 6m3s \| T039 \(failed, run aaa111\) \|/,
    );
    t.match(
      md,
      /\| ccc333 \| ccc333, ddd444 \| rolled-back \| unknown: rolled back before beersystem was Ready on redis-shared \| T040 \(cut short, run ccc333\) \|/,
    );
  },
);

t.test('what changed: every mutation a real run sent, dry-run commands left out', async (t) => {
  const report = buildReport({ notes, audit });
  t.same(
    report.changes.map((c) => c.command),
    ['kubectl scale deployment beersystem -n beersystem --replicas=0'],
  );
});

t.test('benchmark figures for the plots: malformed entries are dropped', async (t) => {
  const report = buildReport({ notes, audit });
  t.same(report.benchmark?.throughput, [{ label: 'SET (in cluster)', opsPerSec: 61000 }]);
  t.equal(report.benchmark?.histogram?.length, 2);
  t.equal(buildReport({ notes: [], audit: [] }).benchmark, undefined);
});

t.test('Markdown: the SC table, the downtime, the changes', async (t) => {
  const md = renderMarkdown(buildReport({ notes, audit, generatedAt: '2026-11-30T15:10:00.000Z' }));
  t.match(md, /\| SC \| criterion \| verdict \| evidence \| when \| run \/ step \|/);
  t.equal(md.split('\n').filter((l) => /^\| SC-0\d\d \|/.test(l)).length, 10);
  t.match(
    md,
    /\| SC-001 \| .* \| met \| p95 0\.4 ms .* \| 2026-11-30T15:00:00Z \| 07-polish T046 run 000007 \|/,
  );
  t.match(
    md,
    /The last attempt, completed: downtime 6\.5s, from 2026-11-30T14:01:20\.000Z \(T035\)/,
  );
  t.match(md, /`kubectl scale deployment beersystem -n beersystem --replicas=0`/);
  t.match(md, /1 of 10 success criteria met, 1 not met, 8 not proven/);
  const empty = renderMarkdown(buildReport({ notes: [], audit: [] }));
  t.match(empty, /has not reached T035/);
  t.match(empty, /No mutation was sent/);
});

t.test('no password in the report, even when a note carried one', async (t) => {
  const secret = 'Report-Pw-Very-Distinct-4711';
  registerSecret(secret);
  t.teardown(clearSecretsForTests);
  const leaky = [
    note(
      'evidence.SC-008',
      { summary: `refused without ${secret}`, met: true, extra: secret },
      '2026-11-30T14:00:00Z',
    ),
  ];
  const leakyAudit = [
    entry({ event: 'command', ts: '2026-11-30T14:00:00Z', command: `redis-cli -a ${secret}` }),
  ];
  const report = buildReport({ notes: leaky, audit: leakyAudit });
  t.notMatch(renderMarkdown(report), secret);
  t.notMatch(renderHtml(report), secret);
});

t.test('evidence values of every shape are read', async (t) => {
  t.equal(toEvidence(note('not-evidence', 1, 'x')), undefined);
  t.equal(toEvidence(note('evidence.X', 42, 'x'))?.summary, '42');
  t.equal(toEvidence(note('evidence.X', { text: 'line' }, 'x'))?.summary, 'line');
  t.equal(toEvidence(note('evidence.X', { p95: 1 }, 'x'))?.summary, '{"p95":1}');
  t.equal(shortRunId('20261130T140118Z-042ddb'), '042ddb');
  t.equal(shortRunId('plain'), 'plain');
});

t.test('HTML: self-contained, SC table, three inline SVG plots, text escaped', async (t) => {
  const html = renderHtml(buildReport({ notes, audit }));
  t.match(html, /^<!doctype html>/);
  t.notMatch(html, /<script|<link|src=|href=/, 'nothing loaded from elsewhere');
  t.equal((html.match(/<tr class="sc-row"/g) ?? []).length, 10);
  t.equal((html.match(/<svg /g) ?? []).length, 3);
  t.match(html, /downtime 6\.5s/);
  t.equal(escapeHtml(`<a href="x">'&`), '&lt;a href=&quot;x&quot;&gt;&#39;&amp;');
  const empty = renderHtml(buildReport({ notes: [], audit: [] }));
  t.equal((empty.match(/<svg /g) ?? []).length, 0);
  t.match(empty, /No throughput recorded/);
  t.match(empty, /No latency samples recorded/);
  t.match(empty, /has not reached T035/);
});

t.test('plots draw what they are given', async (t) => {
  const ops = throughputSvg({
    throughput: [
      { label: 'GET', opsPerSec: 9_999 },
      { label: 'SET', opsPerSec: 25_000 },
    ],
    histogram: undefined,
    histogramLabel: undefined,
  });
  t.match(ops, /fill="#c23b3b"><title>GET: 9,999 ops\/s/, 'below 10,000 drawn red');
  t.match(ops, /fill="#2e8b57"><title>SET: 25,000 ops\/s/, 'above drawn green');
  t.match(ops, /stroke-dasharray/, 'the 10,000 line');
  const hist = latencyHistogramSvg({
    throughput: [],
    histogram: latencyHistogram(Array.from({ length: 500 }, (_, i) => (i % 50) / 10)),
    histogramLabel: 'LB',
  });
  t.match(hist, /Latency histogram — LB/);
  t.ok((hist.match(/<rect /g) ?? []).length >= 5);
  const tl = timelineSvg({
    runId: 'x-1',
    runs: ['x-1'],
    outcome: 'completed',
    steps: [
      {
        step: 'T035',
        title: undefined,
        startedAt: '2026-01-01T00:00:00Z',
        endedAt: undefined,
        outcome: 'running',
        runId: 'x-1',
      },
    ],
    downtime: {
      startedAt: '2026-01-01T00:00:00Z',
      endedAt: undefined,
      ms: undefined,
      atMost: false,
    },
    users: undefined,
  });
  t.match(tl, /end not recorded/);
});

t.test(
  'latencyHistogram: round buckets, every sample counted, outliers in the last bucket',
  async (t) => {
    t.same(latencyHistogram([]), []);
    const samples = [...Array.from({ length: 999 }, (_, i) => 0.1 + (i % 10) * 0.1), 500];
    const buckets = latencyHistogram(samples);
    t.equal(
      buckets.reduce((n, b) => n + b.count, 0),
      samples.length,
    );
    t.ok(buckets.length <= 20);
    t.ok(buckets.at(-1)!.leMs < 500, 'the outlier does not stretch the axis');
    t.equal(buckets[0]!.leMs, 0.05);
    t.same(latencyHistogram([0, 0]), [{ leMs: 0.0001, count: 2 }]);
  },
);

t.test('report files: Markdown and HTML in REPORT_DIR, named by time', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'report-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const report = buildReport({ notes, audit, generatedAt: '2026-11-30T15:10:00.123Z' });
  const files = await writeReportFiles(join(dir, 'reports'), report);
  t.equal(fileStamp('2026-11-30T15:10:00.123Z'), '20261130T151000Z');
  t.match(files.markdown, /report-20261130T151000Z\.md$/);
  t.match(await readFile(files.html, 'utf8'), /id="sc-table"/);
  t.ok((await stat(files.markdown)).size > 0);
});

t.test('a criterion recorded "not proven" says in its row what to set to prove it', async (t) => {
  const sc004 = note(
    'evidence.SC-004',
    {
      line: 'SC-004 configured, not proven: loadBalancerSourceRanges [192.168.4.0/24] = PRIVATE_CIDR, but no connection from outside was tried (OUTSIDE_PROBE_SOURCE unset); to prove it: set OUTSIDE_PROBE_SOURCE to an address of this machine outside 192.168.4.0/24',
      data: {
        met: 'not proven',
        toProve: 'set OUTSIDE_PROBE_SOURCE to an address of this machine outside 192.168.4.0/24',
      },
    },
    '2026-11-30T13:05:00Z',
    { runbook: '03-access', run_id: RUN03, step: 'T030' },
  );
  const report = buildReport({ notes: [sc004], audit: [] });
  const row = report.criteria.find((r) => r.criterion.id === 'SC-004')!;
  t.equal(row.verdict, 'not proven');
  t.match(row.why, /^SC-004 configured, not proven: .*to prove it: set OUTSIDE_PROBE_SOURCE/);
  t.match(renderMarkdown(report), /SC-004.*not proven.*set OUTSIDE_PROBE_SOURCE/);
});

t.test(
  'a downtime that ends in the second the cluster recorded Ready is counted to its end: never below zero',
  async (t) => {
    // Kubernetes keeps lastTransitionTime to the second: T035 at .144 and Ready "at" .000 of the
    // same second read as -144ms before.
    const sameSecond = [
      ...notes.filter((n) => n.key !== DOWNTIME_START_NOTE && n.key !== DOWNTIME_END_NOTE),
      note(DOWNTIME_START_NOTE, '2026-11-30T14:01:20.144Z', '2026-11-30T14:01:20.145Z', {
        step: 'T035',
      }),
      note(DOWNTIME_END_NOTE, { at: '2026-11-30T14:01:20.000Z' }, '2026-11-30T14:01:20.900Z', {
        step: 'T040',
      }),
    ];
    const report = buildReport({ notes: sameSecond, audit });
    t.same(report.timeline?.downtime, {
      startedAt: '2026-11-30T14:01:20.144Z',
      endedAt: '2026-11-30T14:01:20.000Z',
      ms: 856,
      atMost: true,
    });
    t.match(renderMarkdown(report), /The last attempt, completed: downtime 856ms at most, from/);
    t.match(renderHtml(report), /downtime 856ms at most/);
  },
);
