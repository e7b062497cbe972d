// Saved plans: `tofu plan -out` files hold the state snapshot, and with it every secret the
// state holds (the Redis password). They live in one private directory of the runbooks (0700,
// beside the audit log), one subdirectory per owner: the run that planned, which is also the id of
// the attempt it opens (lib/engine/attempts.ts). A plan stays while its attempt is open, so a
// resume applies what the operator confirmed; every other owner's plans (an attempt that ended,
// a run that died before opening one) are removed by the next run.
import { chmodSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Config } from '../config.ts';

export function plansRoot(cfg: Pick<Config, 'auditLog'>): string {
  return join(dirname(cfg.auditLog), 'plans');
}

/** The owner's private plan directory (0700, as is the root), created when missing. */
export function planDirOf(cfg: Pick<Config, 'auditLog'>, owner: string): string {
  if (!/^[\w.-]+$/.test(owner)) throw new Error(`a plan owner is a run id, not "${owner}"`);
  const root = plansRoot(cfg);
  mkdirSync(root, { recursive: true, mode: 0o700 });
  chmodSync(root, 0o700);
  const dir = join(root, owner);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
  return dir;
}

/** The owners with plans on this machine. */
export function planOwners(cfg: Pick<Config, 'auditLog'>): string[] {
  try {
    return readdirSync(plansRoot(cfg), { withFileTypes: true })
      .filter((e) => e.isDirectory())
      .map((e) => e.name);
  } catch {
    return [];
  }
}

/** Removes every owner's plans but those kept; gives the owners removed. */
export function removePlans(cfg: Pick<Config, 'auditLog'>, keep: ReadonlySet<string>): string[] {
  const removed = planOwners(cfg).filter((owner) => !keep.has(owner));
  for (const owner of removed) {
    rmSync(join(plansRoot(cfg), owner), { recursive: true, force: true });
  }
  return removed;
}
