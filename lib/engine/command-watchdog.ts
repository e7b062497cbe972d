// Commands run in process groups of their own (shell.ts), so a terminal's Ctrl-C does not reach
// them and they can be stopped together; but a SIGKILL of the runbook cannot be caught, and
// would leave them running with parent pid 1 (a `tofu apply` changing the cluster under the next
// run). One small watchdog per runbook process holds the read end of a pipe from it: the
// runbook tells it each group it starts and ends, and when the runbook dies, however it dies,
// the kernel closes the pipe; the watchdog then stops the groups still listed — SIGTERM first
// (OpenTofu stops gracefully on it, writing its state and releasing the state lock), SIGKILL to
// whatever is left after WATCHDOG_GRACE_S.
import { type ChildProcess, spawn } from 'node:child_process';

export const WATCHDOG_GRACE_S = 30;

const SCRIPT = `
groups=" "
while IFS= read -r line; do
  case "$line" in
    +*) groups="$groups\${line#+} " ;;
    -*) groups=$(printf '%s' "$groups" | sed "s/ \${line#-} / /") ;;
  esac
done
[ -z "\${groups# }" ] && exit 0
for g in $groups; do kill -TERM "-$g" 2>/dev/null; done
i=0
while [ "$i" -lt ${WATCHDOG_GRACE_S} ]; do
  alive=""
  for g in $groups; do kill -0 "-$g" 2>/dev/null && alive=1; done
  [ -z "$alive" ] && exit 0
  sleep 1
  i=$((i + 1))
done
for g in $groups; do kill -KILL "-$g" 2>/dev/null; done
`;

let watchdog: ChildProcess | undefined;

function started(): ChildProcess | undefined {
  if (watchdog && watchdog.exitCode === null && !watchdog.killed) return watchdog;
  try {
    watchdog = spawn('/bin/sh', ['-c', SCRIPT], {
      // its own group: the terminal's Ctrl-C goes to the runbook, which stops its commands itself
      detached: true,
      stdio: ['pipe', 'ignore', 'ignore'],
    });
  } catch {
    return undefined;
  }
  watchdog.on('error', () => undefined);
  watchdog.stdin?.on('error', () => undefined);
  watchdog.unref();
  (watchdog.stdin as unknown as { unref?: () => void } | null)?.unref?.();
  return watchdog;
}

/** The group `pgid` dies with this process from now on. */
export function watchGroup(pgid: number): void {
  started()?.stdin?.write(`+${pgid}\n`);
}

/** The group `pgid` ended (or was stopped by the run itself). */
export function forgetGroup(pgid: number): void {
  if (watchdog?.exitCode === null) watchdog.stdin?.write(`-${pgid}\n`);
}

/** The watchdog's pid, for tests. */
export function watchdogPid(): number | undefined {
  return watchdog?.pid;
}
