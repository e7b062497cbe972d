// The journal: one JSON line per mutating request, so a test (or an operator) can prove what a
// runbook changed, and that a `--dry-run` changed nothing.
import { appendFileSync } from 'node:fs';

export interface JournalEntry {
  time: string;
  method: string;
  path: string;
  contentType: string;
  status: number;
  dryRun: boolean;
}

export class Journal {
  constructor(readonly file: string) {}

  append(entry: JournalEntry): void {
    appendFileSync(this.file, `${JSON.stringify(entry)}\n`);
  }
}
