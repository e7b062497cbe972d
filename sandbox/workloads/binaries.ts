// The Debian programs the workloads run. A missing one stops `up` with the command that installs it.
import { execFileSync } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';

/** Program → Debian package that provides it. */
export const REQUIRED_BINARIES: Record<string, string> = {
  'redis-server': 'redis-server',
  'redis-cli': 'redis-tools',
  'redis-benchmark': 'redis-tools',
  prometheus: 'prometheus',
  'prometheus-redis-exporter': 'prometheus-redis-exporter',
  setpriv: 'util-linux',
  unshare: 'util-linux',
};

export function findOnPath(program: string, path = process.env.PATH ?? ''): string | undefined {
  for (const dir of path.split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, program);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // Not in this directory.
    }
  }
  return undefined;
}

/** Throws naming every missing program and the exact install command. */
export function assertBinaries(path = process.env.PATH ?? ''): void {
  const missing = Object.keys(REQUIRED_BINARIES).filter((program) => !findOnPath(program, path));
  if (missing.length === 0) return;
  const packages = [...new Set(missing.map((program) => REQUIRED_BINARIES[program]))];
  throw new Error(
    `the sandbox's workloads need ${missing.join(', ')}, which ${missing.length === 1 ? 'is' : 'are'} not on the PATH. ` +
      `Install with: sudo apt-get install -y --no-install-recommends ${packages.join(' ')}`,
  );
}

/**
 * The cluster DNS bind-mounts a hosts file in a mount namespace per process (hosts.ts), which
 * takes root; say so up front rather than let every pod fail to resolve its Services.
 */
export function assertMountNamespaces(): void {
  try {
    execFileSync('unshare', ['-m', 'true'], { stdio: 'ignore' });
  } catch {
    throw new Error(
      "the sandbox's workloads give each process its own /etc/hosts with `unshare -m`, which failed here " +
        '(it needs root). Run the sandbox as root, or start it with `npm run sandbox -- up --fake` (API only).',
    );
  }
}
