// What the operator watches on stderr: one line per step with its status and duration, a
// spinner with an elapsed counter while a step runs (only on a terminal: in a log file it would
// be noise), and a summary table at the end. stdout is left to --json.
import { formatDuration } from '../duration.ts';
import { maskSecrets } from '../mask.ts';

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
  /** the work's time: the time spent waiting at a confirmation prompt is not in it */
  duration_ms: number;
  /** the time spent waiting for the operator's answer, when a question was asked */
  waited_ms?: number;
  /** why a step was skipped */
  reason?: string;
  error?: string;
}

/** `7ms`, or `7ms (waited 3.2s for you)` when the step waited at a prompt. */
export function stepTime(outcome: StepOutcome): string {
  if (outcome.status === 'skipped' || outcome.status === 'not-run') return '';
  const waited = outcome.waited_ms ? ` (waited ${formatDuration(outcome.waited_ms)} for you)` : '';
  return `${formatDuration(outcome.duration_ms)}${waited}`;
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
  /** the run's own word for a status, where the step's risk or a dry run changes it */
  private labelOf: (outcome: StepOutcome) => string | undefined = () => undefined;
  private spinner: NodeJS.Timeout | undefined;
  private spinnerText = '';
  private readonly tty: boolean;
  /** a live line beside the spinner (ctx.setStatus), given the step that runs now */
  private status: ((step: string | undefined) => string | undefined) | undefined;
  private currentStep: string | undefined;

  constructor(
    private readonly out: ProgressStream,
    options: { tty?: boolean } = {},
  ) {
    this.tty = options.tty ?? Boolean(out.isTTY);
  }

  /** e.g. "passed" for a read-only check that holds, "would change" in a dry run */
  setLabels(labelOf: (outcome: StepOutcome) => string | undefined): void {
    this.labelOf = labelOf;
  }

  private label(outcome: StepOutcome): string {
    return this.labelOf(outcome) ?? LABEL[outcome.status];
  }

  /** Any other text for the operator; it never tears through a spinner line. */
  log(text: string): void {
    this.clearSpinnerLine();
    this.out.write(`${maskSecrets(text)}\n`);
    this.drawSpinner();
  }

  /** `started`: when the step began, if earlier than now (after a wait inside it) */
  stepStarted(id: string, title: string, started = Date.now()): void {
    this.currentStep = id;
    this.spin(`${id}  ${title}`, started);
  }

  /** Shows `render`'s line beside every spinner from now on (a terminal only); undefined clears it. */
  setStatus(render: ((step: string | undefined) => string | undefined) | undefined): void {
    this.status = render;
  }

  /** A wait inside a step: what is awaited and for how long (a spinner on a terminal). */
  waiting(what: string, started: number, detail?: string): void {
    if (!this.tty) return;
    this.spin(
      `waiting for ${maskSecrets(what)}${detail ? ` (${maskSecrets(detail)})` : ''}`,
      started,
    );
  }

  private spin(label: string, started = Date.now()): void {
    if (!this.tty) return;
    let frame = 0;
    const render = () => {
      const symbol = SPINNER_FRAMES[frame++ % SPINNER_FRAMES.length];
      const status = this.status?.(this.currentStep);
      const line = `${symbol} ${label}  ${formatDuration(Date.now() - started)}${status ? `  · ${maskSecrets(status)}` : ''}`;
      // One terminal row: a wrapped line could not be cleared by the next frame.
      const width = (this.out as { columns?: number }).columns ?? 160;
      this.spinnerText = line.length > width - 1 ? `${line.slice(0, width - 2)}…` : line;
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
    const time = stepTime(outcome);
    const reason = outcome.reason ? `: ${maskSecrets(outcome.reason)}` : '';
    this.out.write(
      `${SYMBOL[outcome.status]} ${outcome.id}  ${outcome.title}  ${this.label(outcome)}${reason}${time ? `  ${time}` : ''}\n`,
    );
  }

  summary(
    runbook: string,
    outcomes: readonly StepOutcome[],
    footer: {
      outcome: string;
      dryRun: boolean;
      auditLog: string;
      runId: string;
      report?: string;
      /** where the system stands, and the lines back and on: the screen's last lines */
      standing?: readonly string[];
    },
  ): void {
    this.stopSpinner();
    const rows = outcomes.map((o) => [o.id, this.label(o), stepTime(o), o.title]);
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
        ...(footer.standing ?? []).map((l) => maskSecrets(l)),
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
