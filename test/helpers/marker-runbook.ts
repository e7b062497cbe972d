// The engine's test runbook: three steps that each leave a marker file (change, high,
// irreversible), run in-process with captured output and the audit log read back.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { type AuditEntry, readAuditEntries } from '../../lib/audit/audit.ts';
import {
  defineRunbook,
  type EngineOptions,
  executeRunbook,
  type Runbook,
  type RunbookDefinition,
  type RunSummary,
  type StepContext,
} from '../../lib/engine/runbook.ts';
import type { RunbookEnv } from './runbook-env.ts';

export class Capture {
  text = '';
  isTTY = false;
  write(chunk: string): boolean {
    this.text += chunk;
    return true;
  }
}

export interface Outcome {
  code: number;
  stdout: string;
  stderr: string;
  entries: AuditEntry[];
  json: RunSummary | undefined;
}

/** The flags that confirm every step of the marker runbook without a terminal. */
export const ALL = ['--yes', '--confirm', 'old-redis'];

export function markerRunbook(
  sandbox: RunbookEnv,
  overrides: Partial<RunbookDefinition> = {},
  behaviour: { fail?: string; neverDone?: string } = {},
): Runbook {
  const marker = (name: string) => join(sandbox.dir, name);
  const step = (id: string, name: string, risk: 'read' | 'change' | 'high' | 'irreversible') => ({
    id,
    title: `Create ${name}`,
    risk,
    ...(risk === 'irreversible' ? { confirmName: 'old-redis' } : {}),
    undo: `remove ${name}`,
    done: () => behaviour.neverDone !== id && existsSync(marker(name)),
    run: async (ctx: StepContext) => {
      if (behaviour.fail === id) {
        await ctx.run(['sh', '-c', `echo "${id} failed on purpose" >&2; exit 4`], {
          kind: 'mutation',
          retries: 0,
        });
      }
      await ctx.run(['touch', marker(name)], { kind: 'mutation' });
    },
  });
  return defineRunbook({
    id: '98-inline',
    title: 'Inline markers',
    steps: [
      step('T001', 'one', 'change'),
      step('T002', 'two', 'high'),
      step('T003', 'three', 'irreversible'),
    ],
    ...overrides,
  });
}

export async function execute(
  runbook: Runbook,
  sandbox: RunbookEnv,
  argv: string[],
  options: Partial<EngineOptions> & { env?: Record<string, string | undefined> } = {},
): Promise<Outcome> {
  const stdout = new Capture();
  const stderr = new Capture();
  const code = await executeRunbook(runbook, {
    argv,
    program: './runbooks/98-inline.mts',
    stdout,
    stderr,
    isInteractive: () => false,
    ...options,
    env: { ...sandbox.env, ...options.env },
  });
  const entries = await readAuditEntries(sandbox.auditLog);
  let json: RunSummary | undefined;
  if (argv.includes('--json') && stdout.text) json = JSON.parse(stdout.text) as RunSummary;
  return { code, stdout: stdout.text, stderr: stderr.text, entries, json };
}

export const events = (entries: AuditEntry[]) =>
  entries.map((e) => `${e.event}${e.step ? ` ${e.step}` : ''}${e.outcome ? ` ${e.outcome}` : ''}`);
