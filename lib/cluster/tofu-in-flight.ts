// An OpenTofu operation still running in the working directory, e.g. the `tofu apply` of a run
// that was killed (its watchdog stops it with SIGTERM, and OpenTofu then finishes gracefully,
// which takes a while). Real OpenTofu's local backend holds the state lock while it runs: an
// fcntl lock on the state file plus `.terraform.tfstate.lock.info` beside it (opentofu
// internal/states/statemgr/filesystem.go, lockInfoPath), and a second operation fails with
// "Error acquiring the state lock". A process killed with SIGKILL loses the fcntl lock but leaves
// the info file behind, so the file alone does not mean "in flight": a live tofu process whose
// working directory is ours does. The file says who and which operation, for the message.
import { readdirSync, readFileSync, readlinkSync, realpathSync } from 'node:fs';
import { basename, join } from 'node:path';

export const STATE_LOCK_INFO = '.terraform.tfstate.lock.info';

/** The lock info OpenTofu writes (statemgr.LockInfo, as JSON). */
export interface StateLockInfo {
  ID?: string;
  Operation?: string;
  Who?: string;
  Created?: string;
  Path?: string;
}

export interface TofuProcess {
  pid: number;
  command: string;
}

export function stateLockInfo(dir: string): StateLockInfo | undefined {
  try {
    return JSON.parse(readFileSync(join(dir, STATE_LOCK_INFO), 'utf8')) as StateLockInfo;
  } catch {
    return undefined;
  }
}

/** Live `tofu` processes (apply, destroy, import…) whose working directory is `dir`, not ours. */
export function tofuProcessesIn(dir: string, bin: string): TofuProcess[] {
  let where: string;
  try {
    where = realpathSync(dir);
  } catch {
    return [];
  }
  const name = basename(bin);
  const found: TofuProcess[] = [];
  for (const entry of readdirSync('/proc')) {
    const pid = Number(entry);
    if (!Number.isInteger(pid) || pid === process.pid) continue;
    try {
      if (readlinkSync(`/proc/${pid}/cwd`) !== where) continue;
      const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
      // the binary, or a wrapper's program (node …/tofu/main.ts) named after it
      const isTofu = argv.some((a) => basename(a) === name || /(^|\/)tofu(\/|$)/.test(a));
      const changes = argv.some((a) => ['apply', 'destroy', 'import', 'state'].includes(a));
      if (isTofu && changes) found.push({ pid, command: argv.join(' ') });
    } catch {
      // gone meanwhile, or not ours to read
    }
  }
  return found;
}

/** One line: what runs, and what the state lock says about it. */
export function describeInFlight(
  processes: readonly TofuProcess[],
  lock: StateLockInfo | undefined,
): string {
  const what = processes.map((p) => `pid ${p.pid} (${p.command.slice(0, 120)})`).join(', ');
  const held = lock
    ? `; the state lock ${lock.ID ?? '?'} is held for ${lock.Operation ?? 'an operation'} by ${lock.Who ?? '?'} since ${lock.Created ?? '?'}`
    : '';
  return `${what}${held}`;
}
