// Where the report lands: Markdown (the pull-request body) and the HTML page side by side in
// REPORT_DIR, named by time so earlier reports stay.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type Report, renderMarkdown } from './report.ts';
import { renderHtml } from './report-html.ts';

export interface ReportFiles {
  markdown: string;
  html: string;
}

/** `2026-11-30T14:01:18.123Z` → `20261130T140118Z` */
export function fileStamp(iso: string): string {
  return iso.replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
}

export async function writeReportFiles(dir: string, report: Report): Promise<ReportFiles> {
  await mkdir(dir, { recursive: true });
  const base = join(dir, `report-${fileStamp(report.generatedAt)}`);
  const files = { markdown: `${base}.md`, html: `${base}.html` };
  await writeFile(files.markdown, renderMarkdown(report), { mode: 0o644 });
  await writeFile(files.html, renderHtml(report), { mode: 0o644 });
  return files;
}
