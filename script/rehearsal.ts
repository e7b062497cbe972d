// `npm run rehearse`: the whole change, 01 to 07, against the sandbox in one command — the
// sandbox up, each runbook as an operator would run it (with --yes, since nobody sits at the
// prompts), 06 refused by its 24 h gate first, the clock moved on, 06 again with its typed
// confirmation, 07, then the report's path and the measured downtime. The sandbox goes down
// whatever happens.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { REPO_ROOT, TS_LOADER } from '../lib/config.ts';
import { formatDuration } from '../lib/duration.ts';
import { readNotes } from '../lib/engine/notes.ts';
import { recordedToTheSecond } from '../lib/phases/migration.ts';
import {
  DOWNTIME_END_NOTE,
  DOWNTIME_MS_NOTE,
  MIGRATE_RUNBOOK,
} from '../lib/phases/migration-notes.ts';
import { criterionRows, type Evidence, toEvidence } from '../lib/phases/report.ts';

/**
 * The rehearsal's exit codes. 5 is its own: every stage ran as planned, but a success criterion
 * is not met or not proven (SC-006 on a loaded machine), so a script can tell "the change ran,
 * the machine was too slow" from "the change failed" (1). 0–4 keep the runbooks' meanings.
 */
export const REHEARSAL_EXIT = {
  ok: 0,
  stageFailed: 1,
  refused: 4,
  criteriaShort: 5,
  interrupted: 130,
} as const;

/** A success criterion the rehearsal did not show met, and why. */
export interface CriterionShort {
  id: string;
  verdict: 'not met' | 'not proven';
  why: string;
}

export interface Stage {
  /** what the progress line says */
  title: string;
  argv: string[];
  /** the exit code that means this stage went as planned */
  expectExit: number;
  /** said when the stage ends as planned with a non-zero code */
  expectedBecause?: string;
}

export interface StageResult {
  stage: Stage;
  exitCode: number;
  ms: number;
}

export interface RehearsalResult {
  ok: boolean;
  stages: StageResult[];
  /** the stage that did not end as planned */
  failed: StageResult | undefined;
  reportMarkdown: string | undefined;
  reportHtml: string | undefined;
  downtimeMs: number | undefined;
  /** counted to the end of the second the cluster recorded beersystem Ready in */
  downtimeAtMost: boolean;
  totalMs: number;
  /** `sandbox down`'s exit code */
  downExit: number | undefined;
  /** the success criteria not met or not proven, as the report judges them from the audit log */
  criteriaShort: CriterionShort[];
  /** how many success criteria there are */
  criteriaCount: number;
}

export interface RehearsalOptions {
  /** the sandbox's run directory (SANDBOX_RUN_DIR): audit log, backups, reports, pod logs */
  runDir: string;
  print: (line: string) => void;
  /** extra arguments for every runbook, e.g. ['--json'] */
  runbookArgs?: string[];
  /** inherit: the runbooks' progress goes straight to the terminal */
  stdio?: 'inherit' | 'pipe';
  signal?: AbortSignal;
}

export const RUNBOOKS = [
  '01-setup',
  '02-deploy',
  '03-access',
  '04-monitoring',
  '05-migrate',
  '06-decommission',
  '07-polish',
] as const;

/** The day-2 runbooks the rehearsal runs after the change: title, runbook, its own flags. */
const DAY2: readonly (readonly [string, string, string[]])[] = [
  ['backup', 'backup', []],
  ['restore --drill', 'restore', ['--drill', '--confirm', 'redis/redis-shared']],
  ['rotate-password', 'rotate-password', []],
];

const SANDBOX_CLI = join(REPO_ROOT, 'sandbox', 'cli.ts');
const REHEARSAL_MARKER = '.rehearsal';
function runbookPath(id: string): string {
  const file = readdirSync(join(REPO_ROOT, 'runbooks')).find((f) => f.startsWith(`${id}`));
  return join(REPO_ROOT, 'runbooks', file ?? `${id}.mts`);
}

export function rehearsalStages(runDir: string, runbookArgs: string[] = []): Stage[] {
  const envFile = join(runDir, '.env.sandbox');
  const runbook = (id: string, extra: string[] = []) => [
    runbookPath(id),
    '--env-file',
    envFile,
    '--yes',
    ...extra,
    ...runbookArgs,
  ];
  const sandbox = (...args: string[]) => [
    process.execPath,
    '--import',
    TS_LOADER,
    SANDBOX_CLI,
    ...args,
  ];
  return [
    { title: 'sandbox up', argv: sandbox('up'), expectExit: 0 },
    ...RUNBOOKS.slice(0, 5).map((id) => ({ title: id, argv: runbook(id), expectExit: 0 })),
    {
      title: '06-decommission (before the validation window)',
      argv: runbook('06-decommission', ['--confirm', 'beersystem/redis']),
      expectExit: 3,
      expectedBecause: 'the 24 h gate is closed, as it must be right after the migration',
    },
    { title: 'sandbox age 24h', argv: sandbox('age', '24h'), expectExit: 0 },
    {
      title: '06-decommission',
      argv: runbook('06-decommission', ['--confirm', 'beersystem/redis']),
      expectExit: 0,
    },
    // Day 2 before the report, so that 07's report carries their figures: a backup, the
    // disaster-recovery drill (markers, lost data, restore: RPO and RTO) and a password rotation.
    ...DAY2.map(([title, id, extra]) => ({ title, argv: runbook(id, extra), expectExit: 0 })),
    {
      title: '07-polish',
      argv: runbook('07-polish'),
      expectExit: 0,
    },
  ];
}

/** `export K='v'` lines of the sandbox's shell file → an environment for the children. */
export function parseShellExports(text: string, base: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const env = { ...base };
  for (const line of text.split('\n')) {
    const m = /^export ([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line.trim());
    if (!m) continue;
    const name = m[1]!;
    // Values are single-quoted pieces and "$VAR" references, as sandbox/cli.ts writes them.
    const value = m[2]!.replace(
      /'([^']*)'|"\$([A-Za-z_][A-Za-z0-9_]*)"|\$([A-Za-z_][A-Za-z0-9_]*)/g,
      (_all, quoted: string | undefined, ref1: string | undefined, ref2: string | undefined) =>
        quoted ?? env[(ref1 ?? ref2)!] ?? '',
    );
    env[name] = value;
  }
  return env;
}

function runStage(
  stage: Stage,
  env: NodeJS.ProcessEnv,
  stdio: 'inherit' | 'pipe',
  signal: AbortSignal | undefined,
  print: (line: string) => void,
): Promise<number> {
  return new Promise((done) => {
    const child = spawn(stage.argv[0]!, stage.argv.slice(1), {
      cwd: REPO_ROOT,
      env,
      stdio: ['ignore', stdio, stdio],
    });
    if (stdio === 'pipe') {
      child.stdout?.resume();
      child.stderr?.resume();
    }
    const onAbort = () => child.kill('SIGINT');
    signal?.addEventListener('abort', onAbort, { once: true });
    child.on('error', (err) => {
      print(`cannot start ${stage.argv[0]}: ${err.message}`);
      done(127);
    });
    child.on('close', (code, sig) => {
      signal?.removeEventListener('abort', onAbort);
      done(code ?? (sig === 'SIGINT' ? 130 : 1));
    });
  });
}

function newestReport(dir: string): { markdown?: string; html?: string } {
  try {
    const files = readdirSync(dir)
      .filter((f) => /^report-.*\.(md|html)$/.test(f))
      .sort();
    const md = files.filter((f) => f.endsWith('.md')).at(-1);
    const html = files.filter((f) => f.endsWith('.html')).at(-1);
    return {
      markdown: md ? join(dir, md) : undefined,
      html: html ? join(dir, html) : undefined,
    };
  } catch {
    return {};
  }
}

/** REPORT_DIR as the sandbox's settings file names it (relative to the repository). */
function reportDir(runDir: string): string {
  const text = readFileSync(join(runDir, '.env.sandbox'), 'utf8');
  const m = /^REPORT_DIR=(.*)$/m.exec(text);
  return resolve(REPO_ROOT, m ? m[1]!.trim() : join(runDir, 'reports'));
}

/** The pid of a sandbox daemon still running in this directory, if any. */
export function runningSandbox(runDir: string): number | undefined {
  try {
    const { pid } = JSON.parse(readFileSync(join(runDir, 'state.json'), 'utf8')) as { pid: number };
    process.kill(pid, 0);
    return pid;
  } catch {
    return undefined;
  }
}

export class RehearsalRefusedError extends Error {
  override name = 'RehearsalRefusedError';
}

export async function rehearse(opts: RehearsalOptions): Promise<RehearsalResult> {
  const started = Date.now();
  const busy = runningSandbox(opts.runDir);
  if (busy !== undefined) {
    throw new RehearsalRefusedError(
      `a sandbox (pid ${busy}) is already running in ${opts.runDir}: another rehearsal, or one left behind. Stop it with: SANDBOX_RUN_DIR=${opts.runDir} npm run sandbox -- down`,
    );
  }
  // Another sandbox on this machine is no obstacle: `sandbox up` takes a LoadBalancer pool no
  // other holds (sandbox/lb-pool.ts) and writes its address into the settings the runbooks read.
  // Every rehearsal starts from the homelab as it is today, with an empty audit log and no
  // notes from an earlier one; only a directory an earlier rehearsal made is emptied.
  const marker = join(opts.runDir, REHEARSAL_MARKER);
  if (existsSync(opts.runDir) && readdirSync(opts.runDir).length && !existsSync(marker)) {
    throw new RehearsalRefusedError(
      `${opts.runDir} holds files that no rehearsal wrote (no ${REHEARSAL_MARKER}); the rehearsal empties its directory first, so give it another SANDBOX_RUN_DIR`,
    );
  }
  rmSync(opts.runDir, { recursive: true, force: true });
  mkdirSync(opts.runDir, { recursive: true });
  writeFileSync(marker, 'made by npm run rehearse; emptied at the start of the next one\n');
  const stdio = opts.stdio ?? 'inherit';
  const baseEnv: NodeJS.ProcessEnv = { ...process.env, SANDBOX_RUN_DIR: opts.runDir };
  const stages = rehearsalStages(opts.runDir, opts.runbookArgs);
  const results: StageResult[] = [];
  let failed: StageResult | undefined;
  let env = baseEnv;
  let sandboxStarted = false;
  let downExit: number | undefined;
  try {
    for (const [i, stage] of stages.entries()) {
      if (opts.signal?.aborted) break;
      opts.print(`\n── [${i + 1}/${stages.length}] ${stage.title}`);
      const t0 = Date.now();
      const exitCode = await runStage(stage, env, stdio, opts.signal, opts.print);
      const result = { stage, exitCode, ms: Date.now() - t0 };
      results.push(result);
      if (i === 0) sandboxStarted = true;
      if (exitCode !== stage.expectExit) {
        failed = result;
        opts.print(
          `── ${stage.title}: exit ${exitCode}, expected ${stage.expectExit} (${formatDuration(result.ms)}). The rehearsal stops here; the output above says why.`,
        );
        break;
      }
      opts.print(
        `── ${stage.title}: exit ${exitCode}${stage.expectedBecause ? `, as expected: ${stage.expectedBecause}` : ''} (${formatDuration(result.ms)})`,
      );
      if (i === 0) env = parseShellExports(readFileSync(join(opts.runDir, 'env'), 'utf8'), baseEnv);
    }
  } finally {
    if (sandboxStarted) {
      opts.print('\n── sandbox down');
      downExit = await runStage(
        {
          title: 'sandbox down',
          argv: [process.execPath, '--import', TS_LOADER, SANDBOX_CLI, 'down'],
          expectExit: 0,
        },
        baseEnv,
        stdio,
        undefined,
        opts.print,
      );
    }
  }
  let report: { markdown?: string; html?: string } = {};
  let downtimeMs: number | undefined;
  let downtimeAtMost = false;
  let rows = criterionRows([]);
  try {
    report = newestReport(reportDir(opts.runDir));
    const notes = await readNotes(join(opts.runDir, 'audit.jsonl'));
    const lastOf = (key: string) =>
      notes.filter((n) => n.runbook === MIGRATE_RUNBOOK && n.key === key).at(-1)?.value;
    const last = lastOf(DOWNTIME_MS_NOTE);
    const end = lastOf(DOWNTIME_END_NOTE);
    downtimeMs = typeof last === 'number' ? last : undefined;
    downtimeAtMost = typeof end === 'string' && recordedToTheSecond(end);
    rows = criterionRows(notes.map(toEvidence).filter((e): e is Evidence => e !== undefined));
  } catch {
    // no settings file or audit log: the sandbox never came up
  }
  const ok = !failed && !opts.signal?.aborted && results.length === stages.length && downExit === 0;
  return {
    ok,
    stages: results,
    failed,
    reportMarkdown: report.markdown,
    reportHtml: report.html,
    downtimeMs,
    downtimeAtMost,
    totalMs: Date.now() - started,
    downExit,
    criteriaShort: rows
      .filter((r) => r.verdict !== 'met')
      .map((r) => ({
        id: r.criterion.id,
        verdict: r.verdict as CriterionShort['verdict'],
        why: r.why ?? '',
      })),
    criteriaCount: rows.length,
  };
}

/**
 * The rehearsal's last lines and exit code: a stage that failed is a failure (1); when every
 * stage went as planned, each criterion not met or not proven is listed and the code is 5.
 */
export function rehearsalVerdict(
  result: Pick<RehearsalResult, 'ok' | 'criteriaShort' | 'criteriaCount'>,
  interrupted: boolean,
): { code: number; lines: string[] } {
  if (interrupted)
    return { code: REHEARSAL_EXIT.interrupted, lines: ['the rehearsal was interrupted'] };
  if (!result.ok)
    return {
      code: REHEARSAL_EXIT.stageFailed,
      lines: ['the rehearsal did NOT pass: a stage failed (see above)'],
    };
  if (result.criteriaShort.length === 0)
    return {
      code: REHEARSAL_EXIT.ok,
      lines: [`criteria: all ${result.criteriaCount} success criteria met`],
    };
  const met = result.criteriaCount - result.criteriaShort.length;
  return {
    code: REHEARSAL_EXIT.criteriaShort,
    lines: [
      `criteria: ${met} of ${result.criteriaCount} met; the change ran, but these are not (exit ${REHEARSAL_EXIT.criteriaShort}):`,
      ...result.criteriaShort.map((c) => `  ${c.id} ${c.verdict}: ${c.why}`),
    ],
  };
}
