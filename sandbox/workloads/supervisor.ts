// Every process the sandbox starts goes through here, so that none outlives it: each child gets
// a parent-death signal (it dies even if the sandbox is SIGKILLed), its PID is recorded under
// <runDir>/pids until it ends (so `down` can sweep up after a crash), and its output goes to a
// log file that `kubectl logs` reads.
import { type ChildProcess, spawn } from 'node:child_process';
import {
  closeSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { POD_MARKER } from './network-policy.ts';

export interface SpawnOptions {
  /** Shown in the PID record and in errors. */
  name: string;
  command: string;
  args: string[];
  env?: Record<string, string>;
  cwd?: string;
  /** stdout and stderr are appended here. */
  logFile: string;
  /** When given, the process sees this file as /etc/hosts (the sandbox's cluster DNS). */
  hostsFile?: string;
}

export interface SupervisedProcess {
  readonly name: string;
  readonly pid: number;
  /** Resolves with the exit code (128 + signal number when killed by a signal). */
  readonly exited: Promise<number>;
  readonly running: boolean;
  /** SIGTERM, then SIGKILL after the grace period; resolves once the process is gone. */
  stop(graceMs?: number): Promise<void>;
  kill(signal: NodeJS.Signals): void;
}

const SIGNAL_NUMBERS: Record<string, number> = { SIGHUP: 1, SIGINT: 2, SIGKILL: 9, SIGTERM: 15 };
const DEFAULT_GRACE_MS = 3000;

// The parent-death signal survives exec, and `unshare -m` without --fork keeps the same PID,
// so the PID recorded is the one that ends up running the program.
const HOSTS_WRAPPER = 'mount --bind "$0" /etc/hosts && exec "$@"';

// A pod's processes see their pod's environment, not the sandbox's, except for these: the PATH
// and the mark by which `npm run sandbox -- down` recognises what belongs to the sandbox.
const INHERITED_ENV = ['PATH', 'LANG', 'TZ', 'REDIS_SHARED_SANDBOX_INSTANCE'];

function inheritedEnv(): Record<string, string> {
  const env: Record<string, string> = { PATH: '/usr/local/bin:/usr/bin:/bin' };
  for (const name of INHERITED_ENV) {
    const value = process.env[name];
    if (value !== undefined) env[name] = value;
  }
  return env;
}

/** Pod processes (named `<namespace>/<pod>[/<container>]`) carry their pod's name, which
 * NetworkPolicy enforcement reads to tell which pod opened a connection (network-policy.ts). */
function podMarker(name: string): Record<string, string> {
  const [namespace, pod] = name.split('/');
  return namespace && pod ? { [POD_MARKER]: `${namespace}/${pod}` } : {};
}

export class Supervisor {
  private readonly processes = new Set<SupervisedProcess>();
  private readonly pidDir: string;

  constructor(runDir: string) {
    this.pidDir = join(runDir, 'pids');
    mkdirSync(this.pidDir, { recursive: true });
  }

  get pids(): number[] {
    return [...this.processes].filter((p) => p.running).map((p) => p.pid);
  }

  spawn(options: SpawnOptions): SupervisedProcess {
    const argv = ['--pdeathsig', 'KILL', '--'];
    if (options.hostsFile) {
      argv.push('unshare', '-m', 'sh', '-c', HOSTS_WRAPPER, options.hostsFile);
    }
    argv.push(options.command, ...options.args);
    const log = openSync(options.logFile, 'a');
    let child: ChildProcess;
    try {
      child = spawn('setpriv', argv, {
        cwd: options.cwd,
        env: { ...inheritedEnv(), ...podMarker(options.name), ...options.env },
        stdio: ['ignore', log, log],
      });
    } finally {
      closeSync(log);
    }
    const pid = child.pid;
    if (pid === undefined) {
      child.on('error', () => {});
      throw new Error(
        `could not start ${options.name} (${options.command} in ${options.cwd ?? '.'})`,
      );
    }
    const pidFile = join(this.pidDir, String(pid));
    writeFileSync(pidFile, `${processStartTime(pid) ?? ''}\n${options.name}\n`);
    let running = true;
    const exited = new Promise<number>((resolve) => {
      child.on('exit', (code, signal) => {
        running = false;
        rmSync(pidFile, { force: true });
        this.processes.delete(handle);
        resolve(code ?? 128 + (SIGNAL_NUMBERS[signal ?? ''] ?? 0));
      });
      child.on('error', () => {
        if (!running) return;
        running = false;
        rmSync(pidFile, { force: true });
        this.processes.delete(handle);
        resolve(127);
      });
    });
    const handle: SupervisedProcess = {
      name: options.name,
      pid,
      exited,
      get running() {
        return running;
      },
      kill(signal) {
        if (running) child.kill(signal);
      },
      async stop(graceMs = DEFAULT_GRACE_MS) {
        if (!running) return;
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
        await exited;
        clearTimeout(timer);
      },
    };
    this.processes.add(handle);
    return handle;
  }

  async stopAll(graceMs = DEFAULT_GRACE_MS): Promise<void> {
    await Promise.all([...this.processes].map((p) => p.stop(graceMs)));
  }
}

/**
 * Kills processes recorded under <runDir>/pids by a sandbox that did not stop cleanly, and
 * returns their PIDs. A PID is only touched while its process start time is the one recorded.
 */
export function sweepOrphans(runDir: string): number[] {
  const pidDir = join(runDir, 'pids');
  let entries: string[];
  try {
    entries = readdirSync(pidDir);
  } catch {
    return [];
  }
  const killed: number[] = [];
  for (const entry of entries) {
    const pid = Number(entry);
    if (!Number.isInteger(pid) || pid <= 1) continue;
    const recordedStart = readFileSync(join(pidDir, entry), 'utf8').split('\n')[0];
    // A PID the kernel has since given to another process has another start time.
    if (isAlive(pid) && recordedStart && processStartTime(pid) === recordedStart) {
      try {
        process.kill(pid, 'SIGKILL');
        killed.push(pid);
      } catch {
        // Already gone between the check and the kill.
      }
    }
    rmSync(join(pidDir, entry), { force: true });
  }
  return killed;
}

function processStartTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

/** True while a process with this PID exists and is not a zombie. */
export function isAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}
