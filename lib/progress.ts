// What the operator watches on stderr: one line per step with its status and duration, a
// spinner with an elapsed counter while a step runs (only on a terminal: in a log file it would
// be noise), and a summary table at the end. stdout is left to --json.
import { formatDuration } from './duration.ts';
import { maskSecrets } from './mask.ts';

export type StepStatus =
  | 'ok'
  | 'verified-done'
  | 'skipped'
  | 'failed'
  | 'refused'
  | 'interrupted'
  | 'not-run';

/** One step's line in the summary (and in the --json summary). */
export interface StepOutcome {
  id: string;
  title: string;
  status: StepStatus;
  duration_ms: number;
  error?: string;
}

export interface ProgressStream {
  write(text: string): unknown;
  isTTY?: boolean;
}

const SYMBOL: Record<StepStatus, string> = {
  ok: '✔',
  'verified-done': '≡',
  skipped: '-',
  failed: '✖',
  refused: '✖',
  interrupted: '!',
  'not-run': ' ',
};

const LABEL: Record<StepStatus, string> = {
  ok: 'ok',
  'verified-done': 'already done',
  skipped: 'skipped',
  failed: 'FAILED',
  refused: 'refused',
  interrupted: 'interrupted',
  'not-run': 'not run',
};

const SPINNER_FRAMES = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
const SPINNER_INTERVAL_MS = 100;

export class Progress {
  private spinner: NodeJS.Timeout | undefined;
  private spinnerText = '';
  private readonly tty: boolean;

  constructor(
    private readonly out: ProgressStream,
    options: { tty?: boolean } = {},
  ) {
    this.tty = options.tty ?? Boolean(out.isTTY);
  }

  /** Any other text for the operator; it never tears through a spinner line. */
  log(text: string): void {
    this.clearSpinnerLine();
    this.out.write(`${maskSecrets(text)}\n`);
    this.drawSpinner();
  }

  stepStarted(id: string, title: string): void {
    if (!this.tty) return;
    const started = Date.now();
    let frame = 0;
    const render = () => {
      const symbol = SPINNER_FRAMES[frame++ % SPINNER_FRAMES.length];
      this.spinnerText = `${symbol} ${id}  ${title}  ${formatDuration(Date.now() - started)}`;
      this.clearSpinnerLine();
      this.drawSpinner();
    };
    this.stopSpinner();
    render();
    this.spinner = setInterval(render, SPINNER_INTERVAL_MS);
    this.spinner.unref();
  }

  stepFinished(outcome: StepOutcome): void {
    this.stopSpinner();
    const duration = outcome.status === 'skipped' ? '' : `  ${formatDuration(outcome.duration_ms)}`;
    this.out.write(
      `${SYMBOL[outcome.status]} ${outcome.id}  ${outcome.title}  ${LABEL[outcome.status]}${duration}\n`,
    );
  }

  summary(
    runbook: string,
    outcomes: readonly StepOutcome[],
    footer: { outcome: string; dryRun: boolean; auditLog: string; runId: string; report?: string },
  ): void {
    this.stopSpinner();
    const rows = outcomes.map((o) => [
      o.id,
      LABEL[o.status],
      o.status === 'skipped' || o.status === 'not-run' ? '' : formatDuration(o.duration_ms),
      o.title,
    ]);
    const header = ['step', 'status', 'time', 'title'];
    const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]?.length ?? 0)));
    const line = (cells: string[]) =>
      cells
        .map((cell, i) => (i === cells.length - 1 ? cell : cell.padEnd(widths[i] ?? 0)))
        .join('  ');
    const dry = footer.dryRun ? ' (dry run: nothing was changed)' : '';
    this.out.write(
      [
        '',
        `${runbook}: ${footer.outcome}${dry}`,
        line(header),
        ...rows.map(line),
        `audit log: ${footer.auditLog} (run ${footer.runId})`,
        ...(footer.report !== undefined ? [`report: ${footer.report}`] : []),
        '',
      ].join('\n'),
    );
  }

  stop(): void {
    this.stopSpinner();
  }

  private stopSpinner(): void {
    if (!this.spinner) return;
    clearInterval(this.spinner);
    this.spinner = undefined;
    this.clearSpinnerLine();
    this.spinnerText = '';
  }

  private clearSpinnerLine(): void {
    if (this.tty && this.spinnerText) this.out.write('\r\x1b[K');
  }

  private drawSpinner(): void {
    if (this.tty && this.spinnerText) this.out.write(this.spinnerText);
  }
}
