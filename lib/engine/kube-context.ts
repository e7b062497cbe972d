// Context pinning (docs/architecture.md): a run must not start against whatever cluster the operator's
// kubeconfig happens to point at, so the current context is compared with KUBE_CONTEXT first.
import type { Config } from '../config.ts';
import { runCommand } from './shell.ts';

/** Returns the kubeconfig's current context; injectable so the engine can be tested without one. */
export type ContextReader = (cfg: Config) => Promise<string>;

export const kubectlContextReader: ContextReader = async (cfg) => {
  const kubeconfig = cfg.kubeconfig ? ['--kubeconfig', cfg.kubeconfig] : [];
  const result = await runCommand(['kubectl', 'config', 'current-context', ...kubeconfig], {
    kind: 'read',
    timeoutMs: cfg.timeouts.commandMs,
    retries: 0,
  });
  return result.stdout.trim();
};

/** undefined when the context matches; otherwise the message that stops the run. */
export function contextMismatch(current: string, pinned: string): string | undefined {
  if (current === pinned) return undefined;
  return `the current kube context is "${current}" but KUBE_CONTEXT pins "${pinned}"; nothing was run. Switch with: kubectl config use-context ${pinned} (or correct KUBE_CONTEXT), then re-run`;
}
