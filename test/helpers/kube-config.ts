// Settings that point lib/ at a test sandbox (context `sandbox`, its kubeconfig) and a temp
// audit log, validated by the real loadConfig.
import { join } from 'node:path';
import { AuditLog } from '../../lib/audit/audit.ts';
import { type Config, loadConfig } from '../../lib/config.ts';
import { createStepContext, type StepContext } from '../../lib/engine/step-context.ts';
import { runbookNetworkSettings } from '../../sandbox/lb-pool.ts';
import type { SandboxFixture } from './sandbox.ts';
import { REPO } from './workloads-sandbox.ts';

export function sandboxConfig(fx: SandboxFixture, extra: Record<string, string> = {}): Config {
  return loadConfig({
    envFile: '/dev/null',
    env: {
      KUBE_CONTEXT: 'sandbox',
      KUBECONFIG: fx.sandbox.kubeconfigPath,
      ...runbookNetworkSettings(fx.sandbox.network),
      TOFU_BIN: join(REPO, 'sandbox', 'bin', 'tofu'),
      AUDIT_LOG: join(fx.dir, 'audit.jsonl'),
      BACKUP_DIR: join(fx.dir, 'backups'),
      REPORT_DIR: join(fx.dir, 'reports'),
      ...extra,
    },
  });
}

/** A step context as the engine builds it, for lib/ code that takes one (tofu.ts). */
export function stepContext(cfg: Config, dryRun: boolean, lines: string[] = []): StepContext {
  return createStepContext({
    cfg,
    dryRun,
    runId: 'test-run',
    runbook: 'test',
    mode: 'default',
    shared: { notes: new Map(), unsentMutations: 0 },
    step: { id: 'T001', risk: 'change' },
    flags: {},
    state: {},
    signal: new AbortController().signal,
    audit: new AuditLog(cfg.auditLog, { run_id: 'test-run', runbook: 'test', dry_run: dryRun }),
    print: (line) => lines.push(line),
    setReport: () => undefined,
  });
}
