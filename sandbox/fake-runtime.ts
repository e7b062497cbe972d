// The built-in PodRuntime when no real workloads run (tests, `up --fake`): a pod is Ready after
// a short delay and runs until stopped; a run-to-completion pod (restartPolicy Never/OnFailure,
// as a Job's) exits on its own with the code a hook decides, after writing a log line.
import { appendFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { ClusterAccess, KubeObject, PodRuntime, RunningPod } from './runtime.ts';

/** Set on a pod (or a Job's pod template) to choose the fake exit code of its container. */
export const EXIT_CODE_ANNOTATION = 'sandbox.runbooks/exit-code';
/** Set on a pod (or a Job's pod template) to choose what its fake container prints. */
export const LOG_ANNOTATION = 'sandbox.runbooks/log';

export interface FakeRuntimeOptions {
  /** Where each pod's log goes (`<logDir>/<namespace>_<pod>.log`). */
  logDir: string;
  readyDelayMs?: number;
  /** Decides a run-to-completion pod's exit code; the annotation above is the fallback, then 0. */
  exitCodeFor?: (pod: KubeObject) => number | undefined;
}

export function isRunToCompletion(pod: KubeObject): boolean {
  const policy = pod.spec?.restartPolicy;
  return policy === 'Never' || policy === 'OnFailure';
}

export class FakeRuntime implements PodRuntime {
  constructor(private readonly opts: FakeRuntimeOptions) {
    mkdirSync(opts.logDir, { recursive: true });
  }

  start(pod: KubeObject, _cluster: ClusterAccess): RunningPod {
    const logFile = join(this.opts.logDir, `${pod.metadata.namespace}_${pod.metadata.name}.log`);
    const container = pod.spec?.containers?.[0] ?? {};
    const command = [...(container.command ?? []), ...(container.args ?? [])].join(' ');
    const text =
      pod.metadata.annotations?.[LOG_ANNOTATION] ??
      `${container.name ?? 'main'}: ${command || container.image} (fake runtime)`;
    appendFileSync(logFile, `${text}\n`);
    let resolveExit: (code: number) => void = () => undefined;
    const exited = new Promise<number>((resolve) => {
      resolveExit = resolve;
    });
    let timer: NodeJS.Timeout | undefined;
    const ready = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        resolve();
        if (isRunToCompletion(pod)) {
          const annotated = pod.metadata.annotations?.[EXIT_CODE_ANNOTATION];
          const code =
            this.opts.exitCodeFor?.(pod) ?? (annotated !== undefined ? Number(annotated) : 0);
          resolveExit(code);
        }
      }, this.opts.readyDelayMs ?? 0);
    });
    return {
      ready,
      exited,
      logFile,
      async stop() {
        clearTimeout(timer);
        resolveExit(143);
      },
    };
  }
}
