// The report as one self-contained HTML page (no script, no external file, inline SVG plots):
// what an operator opens after the change rather than reading the Markdown.
import { formatDuration } from '../duration.ts';
import {
  type BenchmarkFigures,
  counts,
  downtimeFigure,
  type MigrationTimeline,
  type Report,
  shortRunId,
  type Verdict,
  whereFrom,
} from './report.ts';
import { THROUGHPUT_MIN_OPS_PER_SEC } from './verdicts.ts';

/** SC-006's floor, drawn on the ops/s plot. */
const OPS_TARGET = THROUGHPUT_MIN_OPS_PER_SEC;

export function escapeHtml(text: string): string {
  return text
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
}

const VERDICT_CLASS: Record<Verdict, string> = {
  met: 'met',
  'not met': 'notmet',
  'not proven': 'unproven',
};

const COLORS = { bar: '#2f6fb0', accent: '#d9822b', down: '#c23b3b', ok: '#2e8b57', grid: '#ddd' };

function niceMax(value: number): number {
  if (value <= 0) return 1;
  const magnitude = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 2.5, 5, 10]) {
    if (step * magnitude >= value) return step * magnitude;
  }
  return 10 * magnitude;
}

function formatNumber(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

function emptyPlot(title: string, why: string): string {
  return `<figure class="plot"><figcaption>${escapeHtml(title)}</figcaption><p class="none">${escapeHtml(why)}</p></figure>`;
}

export function latencyHistogramSvg(figures: BenchmarkFigures | undefined): string {
  const title = `Latency histogram${figures?.histogramLabel ? ` — ${figures.histogramLabel}` : ''}`;
  const buckets = figures?.histogram;
  if (!buckets?.length)
    return emptyPlot(title, 'No latency samples recorded (07-polish T046 has not run).');
  const width = 640;
  const height = 240;
  const pad = { left: 56, right: 12, top: 12, bottom: 44 };
  const plotW = width - pad.left - pad.right;
  const plotH = height - pad.top - pad.bottom;
  const max = niceMax(Math.max(...buckets.map((b) => b.count)));
  const barW = plotW / buckets.length;
  const parts: string[] = [];
  for (let i = 0; i <= 4; i++) {
    const y = pad.top + plotH - (plotH * i) / 4;
    parts.push(
      `<line x1="${pad.left}" y1="${y}" x2="${width - pad.right}" y2="${y}" stroke="${COLORS.grid}"/>`,
      `<text x="${pad.left - 6}" y="${y + 4}" text-anchor="end">${formatNumber((max * i) / 4)}</text>`,
    );
  }
  buckets.forEach((b, i) => {
    const h = (plotH * b.count) / max;
    const x = pad.left + i * barW;
    parts.push(
      `<rect x="${(x + 1).toFixed(1)}" y="${(pad.top + plotH - h).toFixed(1)}" width="${Math.max(barW - 2, 1).toFixed(1)}" height="${h.toFixed(1)}" fill="${COLORS.bar}"><title>≤ ${b.leMs} ms: ${b.count}</title></rect>`,
    );
    const every = Math.ceil(buckets.length / 10);
    if (i % every === 0) {
      parts.push(
        `<text x="${(x + barW / 2).toFixed(1)}" y="${height - pad.bottom + 16}" text-anchor="middle">${b.leMs}</text>`,
      );
    }
  });
  parts.push(
    `<text x="${pad.left + plotW / 2}" y="${height - 6}" text-anchor="middle">round-trip latency, ms (upper bound of bucket)</text>`,
  );
  return `<figure class="plot"><figcaption>${escapeHtml(title)}</figcaption><svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" role="img" aria-label="latency histogram">${parts.join('')}</svg></figure>`;
}

export function throughputSvg(figures: BenchmarkFigures | undefined): string {
  const title = 'Operations per second (SC-006: at least 10,000)';
  const rows = figures?.throughput ?? [];
  if (!rows.length) return emptyPlot(title, 'No throughput recorded (07-polish T046 has not run).');
  const width = 640;
  const rowH = 30;
  const pad = { left: 200, right: 90, top: 10, bottom: 30 };
  const height = pad.top + pad.bottom + rowH * rows.length;
  const plotW = width - pad.left - pad.right;
  const max = niceMax(Math.max(OPS_TARGET, ...rows.map((r) => r.opsPerSec)));
  const parts: string[] = [];
  rows.forEach((r, i) => {
    const y = pad.top + i * rowH;
    const w = (plotW * r.opsPerSec) / max;
    const fill = r.opsPerSec >= OPS_TARGET ? COLORS.ok : COLORS.down;
    parts.push(
      `<text x="${pad.left - 8}" y="${y + rowH / 2 + 4}" text-anchor="end">${escapeHtml(r.label)}</text>`,
      `<rect x="${pad.left}" y="${y + 5}" width="${w.toFixed(1)}" height="${rowH - 10}" fill="${fill}"><title>${escapeHtml(r.label)}: ${formatNumber(r.opsPerSec)} ops/s</title></rect>`,
      `<text x="${(pad.left + w + 6).toFixed(1)}" y="${y + rowH / 2 + 4}">${formatNumber(r.opsPerSec)}</text>`,
    );
  });
  const tx = pad.left + (plotW * OPS_TARGET) / max;
  parts.push(
    `<line x1="${tx.toFixed(1)}" y1="${pad.top}" x2="${tx.toFixed(1)}" y2="${height - pad.bottom}" stroke="${COLORS.accent}" stroke-dasharray="4 3" stroke-width="2"/>`,
    `<text x="${tx.toFixed(1)}" y="${height - 10}" text-anchor="middle" fill="${COLORS.accent}">10,000</text>`,
  );
  return `<figure class="plot"><figcaption>${escapeHtml(title)}</figcaption><svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" role="img" aria-label="operations per second">${parts.join('')}</svg></figure>`;
}

export function timelineSvg(timeline: MigrationTimeline | undefined): string {
  const title = 'Migration timeline (05-migrate)';
  if (!timeline?.steps.length)
    return emptyPlot(title, '05-migrate has not reached T035 in a real run.');
  const steps = timeline.steps;
  const users = timeline.users?.transitions.length ? timeline.users : undefined;
  const t0 = Math.min(
    ...steps.map((s) => Date.parse(s.startedAt)),
    ...(users ? [Date.parse(users.startedAt)] : []),
  );
  const t1 = Math.max(
    ...steps.map((s) => Date.parse(s.endedAt ?? s.startedAt)),
    timeline.downtime?.ms !== undefined
      ? Date.parse(timeline.downtime.startedAt) + timeline.downtime.ms
      : 0,
    ...(users ? [Date.parse(users.stoppedAt)] : []),
  );
  const span = Math.max(t1 - t0, 1);
  const width = 640;
  const rowH = 22;
  const pad = { left: 60, right: 70, top: 10, bottom: 30 };
  const rows = steps.length + (users ? 1 : 0);
  const height = pad.top + pad.bottom + rowH * rows;
  const plotW = width - pad.left - pad.right;
  const x = (ms: number) => pad.left + (plotW * (ms - t0)) / span;
  const parts: string[] = [];
  const d = timeline.downtime;
  if (d) {
    const ds = x(Date.parse(d.startedAt));
    const de = x(d.ms !== undefined ? Date.parse(d.startedAt) + d.ms : t1);
    parts.push(
      `<rect x="${ds.toFixed(1)}" y="${pad.top}" width="${Math.max(de - ds, 1).toFixed(1)}" height="${height - pad.top - pad.bottom}" fill="${COLORS.down}" opacity="0.12"/>`,
      `<text x="${((ds + de) / 2).toFixed(1)}" y="${height - 10}" text-anchor="middle" fill="${COLORS.down}">downtime ${downtimeFigure(d) ?? '(end not recorded)'}</text>`,
    );
  }
  if (users) {
    // What its users saw: green while /healthz answered healthy, red while it did not.
    const y = pad.top;
    parts.push(`<text x="${pad.left - 8}" y="${y + rowH / 2 + 4}" text-anchor="end">users</text>`);
    users.transitions.forEach((tr, i) => {
      const from = x(Date.parse(tr.at));
      const next = users.transitions[i + 1];
      const to = x(next ? Date.parse(next.at) : Date.parse(users.stoppedAt));
      const what = tr.ok ? `answering on ${tr.redis ?? '?'}` : `not answering: ${tr.error ?? ''}`;
      parts.push(
        `<rect class="users-${tr.ok ? 'up' : 'down'}" x="${from.toFixed(1)}" y="${y + 4}" width="${Math.max(to - from, 1).toFixed(1)}" height="${rowH - 8}" fill="${tr.ok ? COLORS.bar : COLORS.down}"><title>${escapeHtml(`${tr.at}: ${what}`)}</title></rect>`,
      );
    });
  }
  steps.forEach((s, i) => {
    const y = pad.top + (i + (users ? 1 : 0)) * rowH;
    const start = x(Date.parse(s.startedAt));
    const end = x(Date.parse(s.endedAt ?? s.startedAt));
    const fill = s.outcome === 'failed' ? COLORS.down : s.outcome === 'ok' ? COLORS.bar : '#999';
    const took = s.endedAt ? formatDuration(Date.parse(s.endedAt) - Date.parse(s.startedAt)) : '';
    parts.push(
      `<text x="${pad.left - 8}" y="${y + rowH / 2 + 4}" text-anchor="end">${escapeHtml(s.step)}</text>`,
      `<rect x="${start.toFixed(1)}" y="${y + 4}" width="${Math.max(end - start, 2).toFixed(1)}" height="${rowH - 8}" fill="${fill}"><title>${escapeHtml(`${s.step} ${s.title ?? ''}: ${s.outcome} ${took}`)}</title></rect>`,
      `<text x="${(Math.max(end, start + 2) + 4).toFixed(1)}" y="${y + rowH / 2 + 4}">${escapeHtml(took)}</text>`,
    );
  });
  return `<figure class="plot"><figcaption>${escapeHtml(title)}</figcaption><svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" role="img" aria-label="migration timeline">${parts.join('')}</svg></figure>`;
}

const STYLE = `
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;color:#1d2329;background:#f6f7f9;margin:0}
main{max-width:1000px;margin:0 auto;padding:24px}
h1{font-size:24px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 10px}
.sub{color:#5a6570;margin:0 0 16px}
.tiles{display:flex;gap:12px;flex-wrap:wrap}
.tile{background:#fff;border-radius:8px;padding:12px 16px;min-width:150px;box-shadow:0 1px 2px #0002}
.tile b{display:block;font-size:26px}
table{border-collapse:collapse;width:100%;background:#fff;box-shadow:0 1px 2px #0002}
th,td{text-align:left;padding:6px 8px;border-bottom:1px solid #e4e7ea;vertical-align:top}
th{background:#eef1f4;font-weight:600}
td:first-child{white-space:nowrap}
.badge{display:inline-block;padding:1px 8px;border-radius:10px;color:#fff;font-weight:600;white-space:nowrap}
.met{background:#2e8b57}.notmet{background:#c23b3b}.unproven{background:#8a8f96}
.plots{display:flex;flex-wrap:wrap;gap:16px}
.plot{background:#fff;margin:0;padding:12px;border-radius:8px;box-shadow:0 1px 2px #0002}
.plot figcaption{font-weight:600;margin-bottom:6px}.plot svg{font:11px system-ui,sans-serif;max-width:100%;height:auto}
.none{color:#8a8f96;font-style:italic}
code{font:12px ui-monospace,monospace;word-break:break-all}
`;

export function renderHtml(report: Report): string {
  const c = counts(report);
  const d = report.timeline?.downtime;
  const best = report.benchmark?.throughput.length
    ? Math.max(...report.benchmark.throughput.map((t) => t.opsPerSec))
    : undefined;
  const rows = report.criteria
    .map((row) => {
      const e = row.evidence;
      const text = row.verdict === 'met' ? (e?.summary ?? '') : (row.why ?? '');
      return `<tr class="sc-row" data-sc="${row.criterion.id}"><td>${row.criterion.id}</td><td>${escapeHtml(row.criterion.text)}</td><td><span class="badge ${VERDICT_CLASS[row.verdict]}">${row.verdict}</span></td><td>${escapeHtml(text)}</td><td>${e ? escapeHtml(e.ts) : '—'}</td><td>${e ? escapeHtml(whereFrom(e)) : '—'}</td></tr>`;
    })
    .join('\n');
  const other = report.otherEvidence
    .map(
      (e) =>
        `<tr><td>${escapeHtml(e.id)}</td><td>${escapeHtml(e.summary)}</td><td>${escapeHtml(e.ts)}</td><td>${escapeHtml(whereFrom(e))}</td></tr>`,
    )
    .join('\n');
  const changes = report.changes
    .map(
      (ch) =>
        `<tr><td>${escapeHtml(ch.ts)}</td><td>${escapeHtml(ch.runbook)}</td><td>${escapeHtml(ch.step ?? '')}</td><td><code>${escapeHtml(ch.command)}</code></td></tr>`,
    )
    .join('\n');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>redis-shared report</title>
<meta name="viewport" content="width=device-width,initial-scale=1"><style>${STYLE}</style></head>
<body><main>
<h1>redis-shared: deploy and migrate beersystem</h1>
<p class="sub">Report generated ${escapeHtml(report.generatedAt)} from the audit log.</p>
<div class="tiles">
<div class="tile"><b>${c.met} / ${report.criteria.length}</b>success criteria met</div>
<div class="tile"><b>${c['not met']}</b>not met</div>
<div class="tile"><b>${c['not proven']}</b>not proven</div>
<div class="tile"><b>${downtimeFigure(d) ?? '—'}</b>downtime${report.timeline ? ` (run ${escapeHtml(shortRunId(report.timeline.runId))})` : ''}</div>
<div class="tile"><b>${best !== undefined ? formatNumber(best) : '—'}</b>ops/s, best measured</div>
</div>
<h2>Success criteria</h2>
<table id="sc-table"><thead><tr><th>SC</th><th>criterion</th><th>verdict</th><th>evidence</th><th>when</th><th>run / step</th></tr></thead>
<tbody>
${rows}
</tbody></table>
<h2>Plots</h2>
<div class="plots">
${throughputSvg(report.benchmark)}
${latencyHistogramSvg(report.benchmark)}
${timelineSvg(report.timeline)}
</div>
${other ? `<h2>Further evidence</h2><table><thead><tr><th>id</th><th>evidence</th><th>when</th><th>run / step</th></tr></thead><tbody>${other}</tbody></table>` : ''}
<h2>What changed in the cluster</h2>
${changes ? `<table><thead><tr><th>when</th><th>runbook</th><th>step</th><th>command</th></tr></thead><tbody>${changes}</tbody></table>` : '<p class="none">No mutation was sent by a real run.</p>'}
</main></body></html>
`;
}
