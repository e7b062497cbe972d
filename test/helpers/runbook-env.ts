// A sandboxed place for engine tests: a temp dir for markers and the audit log, and a real
// kubeconfig whose current context is `test-ctx`, read by the real `kubectl config
// current-context` that context pinning runs.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface RunbookEnv {
  dir: string;
  auditLog: string;
  kubeconfig: string;
  /** the environment a fixture runbook runs with */
  env: Record<string, string>;
}

interface Teardown {
  teardown(fn: () => unknown): void;
}

export function kubeconfigYaml(currentContext: string): string {
  return [
    'apiVersion: v1',
    'kind: Config',
    `current-context: ${currentContext}`,
    'contexts:',
    '- name: test-ctx',
    '  context: {cluster: local, user: local}',
    '- name: other-ctx',
    '  context: {cluster: local, user: local}',
    'clusters:',
    '- name: local',
    '  cluster: {server: "https://127.0.0.1:1"}',
    'users:',
    '- name: local',
    '  user: {}',
    '',
  ].join('\n');
}

export function makeRunbookEnv(t: Teardown, currentContext = 'test-ctx'): RunbookEnv {
  const dir = mkdtempSync(join(tmpdir(), 'runbook-test-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const kubeconfig = join(dir, 'kubeconfig');
  writeFileSync(kubeconfig, kubeconfigYaml(currentContext));
  const auditLog = join(dir, 'logs', 'audit.jsonl');
  return {
    dir,
    auditLog,
    kubeconfig,
    env: {
      FIXTURE_DIR: dir,
      KUBECONFIG: kubeconfig,
      KUBE_CONTEXT: 'test-ctx',
      AUDIT_LOG: auditLog,
      LOCK_TTL: '30m',
    },
  };
}
