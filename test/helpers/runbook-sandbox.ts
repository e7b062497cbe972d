// Runs the phase runbooks as an operator would against a sandbox started by the test: the
// settings file the sandbox CLI would write, the child's environment (tofu stand-in state in
// the sandbox's run dir), the journal of mutating API requests, and every output kept for the
// secret scan at the end.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { JournalEntry } from '../../sandbox/api/journal.ts';
import { runbookNetworkSettings } from '../../sandbox/lb-pool.ts';
import type { Sandbox } from '../../sandbox/server.ts';
import { jsonLines } from './json-lines.ts';
import { type CliResult, REPO, runCli } from './run-cli.ts';

// A real run takes the Lease and writes its completion record and audit anchor (lib/lock/lease-lock.ts,
// lib/audit/cluster-records.ts, proven by their own tests): the engine's bookkeeping, not the
// runbook's changes.
const RUN_BOOKKEEPING =
  /^\/(apis\/coordination\.k8s\.io\/v1\/namespaces\/default\/leases|api\/v1\/namespaces\/default\/configmaps)(\/redis-shared-runbooks)?(\?.*)?$/;

export interface RunbookRun extends CliResult {
  args: string[];
  /** the --json summary, when asked for */
  summary?: { outcome: string; steps: { id: string; status: string }[] };
}

export interface RunbookSandbox {
  envFile: string;
  auditLog: string;
  /** every run so far, for the secret scan */
  runs: RunbookRun[];
  run(runbook: string, args?: string[], env?: Record<string, string>): Promise<RunbookRun>;
  /** every mutating API request so far */
  journal(): JournalEntry[];
  /** the mutating API requests so far, the engine's lock and records left out */
  changes(): JournalEntry[];
}

export function runbookSandbox(
  runDir: string,
  sandbox: Pick<Sandbox, 'kubeconfigPath' | 'journalPath' | 'network'>,
  settings: Record<string, string> = {},
): RunbookSandbox {
  const { kubeconfigPath: kubeconfig, journalPath } = sandbox;
  const envFile = join(runDir, '.env.runbooks');
  const auditLog = join(runDir, 'audit.jsonl');
  const values: Record<string, string> = {
    KUBE_CONTEXT: 'sandbox',
    KUBECONFIG: kubeconfig,
    ...runbookNetworkSettings(sandbox.network),
    TOFU_BIN: join(REPO, 'sandbox', 'bin', 'tofu'),
    AUDIT_LOG: auditLog,
    BACKUP_DIR: join(runDir, 'backups'),
    REPORT_DIR: join(runDir, 'reports'),
    WAIT_TIMEOUT: '90s',
    ...settings,
  };
  writeFileSync(
    envFile,
    `${Object.entries(values)
      .map(([k, v]) => `${k}=${v}`)
      .join('\n')}\n`,
  );
  const runs: RunbookRun[] = [];
  return {
    envFile,
    auditLog,
    runs,
    async run(runbook, args = [], env = {}) {
      const all = ['--env-file', envFile, ...args];
      const result = await runCli(join(REPO, 'runbooks', `${runbook}.mts`), all, {
        env: {
          SANDBOX_RUN_DIR: runDir,
          KUBECACHEDIR: join(runDir, 'kube-cache'),
          ...env,
        },
      });
      const run: RunbookRun = { ...result, args: all };
      if (args.includes('--json')) {
        try {
          run.summary = JSON.parse(result.stdout);
        } catch {
          // left undefined: the test that asked for it says so
        }
      }
      runs.push(run);
      return run;
    },
    journal() {
      let text = '';
      try {
        text = readFileSync(journalPath, 'utf8');
      } catch {
        return [];
      }
      return jsonLines<JournalEntry>(text);
    },
    changes() {
      return this.journal().filter((e) => !RUN_BOOKKEEPING.test(e.path));
    },
  };
}

/** `<id> <status>` pairs from a --json summary, for readable assertions. */
export function stepStatuses(run: RunbookRun): string[] {
  return (run.summary?.steps ?? []).map((s) => `${s.id} ${s.status}`);
}
