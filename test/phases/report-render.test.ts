// The HTML report rendered by a real browser (Debian's chromium, headless): the page is not
// blank, the SC table is in the rendered DOM, and the verdict badges and plots are painted.
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import type { AuditEntry } from '../../lib/audit/audit.ts';
import { BENCHMARK_NOTE } from '../../lib/phases/migration-notes.ts';
import { buildReport, type NoteRecord } from '../../lib/phases/report.ts';
import { renderHtml } from '../../lib/phases/report-html.ts';
import { latencyHistogram } from '../../lib/redis/latency-histogram.ts';
import { decodePng } from '../helpers/png.ts';

const CHROMIUM = 'chromium';
const FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--no-first-run',
];

function chromium(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      CHROMIUM,
      [...FLAGS, ...args],
      { timeout: 60_000, maxBuffer: 32 * 1024 * 1024 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
        resolve({ code, stdout: String(stdout), stderr: String(stderr) });
      },
    );
  });
}

function hex(color: string): [number, number, number] {
  const n = Number.parseInt(color.slice(1), 16);
  return [(n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff];
}

const note = (key: string, value: unknown, ts: string, step = 'T046'): NoteRecord => ({
  runbook: '07-polish',
  run_id: '20261130T150000Z-abc123',
  step,
  ts,
  key,
  value,
});

const notes: NoteRecord[] = [
  note('evidence.SC-006', { summary: '61,000 ops/s: met', met: true }, '2026-11-30T15:00:00Z'),
  note(
    'evidence.SC-004',
    { summary: 'outside probe answered: NOT met', met: false },
    '2026-11-30T15:00:00Z',
  ),
  note(
    BENCHMARK_NOTE,
    {
      throughput: [
        { label: 'SET (in cluster)', opsPerSec: 61_000 },
        { label: 'GET (in cluster)', opsPerSec: 65_000 },
      ],
      histogram: latencyHistogram(
        Array.from({ length: 2000 }, (_, i) => 0.2 + ((i * 7) % 40) / 40),
      ),
      histogramLabel: 'through the LoadBalancer',
    },
    '2026-11-30T15:00:01Z',
  ),
];
const audit: AuditEntry[] = [];

t.test('the HTML report renders in headless Chromium: not blank, SC table present', async (t) => {
  const which = await new Promise<boolean>((r) =>
    execFile('sh', ['-c', `command -v ${CHROMIUM}`], (err) => r(!err)),
  );
  if (!which) {
    t.fail(
      `${CHROMIUM} is not installed: run script/bootstrap (it installs the Debian package chromium)`,
    );
    return;
  }
  const dir = await mkdtemp(join(tmpdir(), 'report-render-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const page = join(dir, 'report.html');
  await writeFile(
    page,
    renderHtml(buildReport({ notes, audit, generatedAt: '2026-11-30T15:10:00Z' })),
  );
  const url = `file://${page}`;

  const dom = await chromium([`--user-data-dir=${join(dir, 'profile-dom')}`, '--dump-dom', url]);
  t.equal(dom.code, 0, 'chromium --dump-dom exits 0', { stderr: dom.stderr.slice(-600) });
  t.match(dom.stdout, /<table id="sc-table">/, 'the SC table is in the rendered DOM');
  t.equal((dom.stdout.match(/<tr class="sc-row"/g) ?? []).length, 10, 'ten SC rows');

  const shot = join(dir, 'shot.png');
  const res = await chromium([
    `--user-data-dir=${join(dir, 'profile-shot')}`,
    `--screenshot=${shot}`,
    // The whole page fits, its last plot far from the edge, and the shot waits until the page
    // has settled (virtual time runs out only once it is idle): at the old 1400 px the histogram
    // sat at the bottom edge and once came out unpainted while eight test files ran at once.
    '--window-size=1100,1800',
    '--virtual-time-budget=5000',
    '--hide-scrollbars',
    url,
  ]);
  t.equal(res.code, 0, 'chromium --screenshot exits 0', { stderr: res.stderr.slice(-600) });
  const img = decodePng(await readFile(shot));
  t.equal(img.width, 1100);
  const background = img.pixel(0, 0);
  let differing = 0;
  const colours = new Set<string>();
  const seen = { met: 0, notMet: 0, bar: 0 };
  const near = (p: number[], c: number[]) => p.every((v, i) => Math.abs(v - c[i]!) <= 6);
  const [met, notMet, bar] = [hex('#2e8b57'), hex('#c23b3b'), hex('#2f6fb0')];
  for (let y = 0; y < img.height; y += 2) {
    for (let x = 0; x < img.width; x += 2) {
      const p = img.pixel(x, y);
      if (!near(p, background)) differing++;
      colours.add(p.join(','));
      if (near(p, met)) seen.met++;
      if (near(p, notMet)) seen.notMet++;
      if (near(p, bar)) seen.bar++;
    }
  }
  const sampled = (img.width / 2) * (img.height / 2);
  t.ok(
    differing / sampled > 0.05,
    `not blank: ${((100 * differing) / sampled).toFixed(1)} % of pixels differ from the background`,
  );
  t.ok(colours.size > 20, `${colours.size} distinct colours painted`);
  t.ok(seen.met > 50, 'green "met" badges and ops/s bars are painted');
  t.ok(seen.notMet > 20, 'the red "not met" badge is painted');
  t.ok(seen.bar > 50, 'the blue histogram bars are painted');
});
