// The stand-in's state and saved plans. State lives in $SANDBOX_RUN_DIR/tofu (default
// sandbox/.run/tofu), written 0600 because, as in real state, the generated password is in it.
import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, userInfo } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Manifest } from './kube-client.ts';
import type { DesiredResource } from './resources.ts';

export interface ObjectRef {
  apiVersion: string;
  kind: string;
  namespace?: string;
  name: string;
}

export interface StateResource {
  address: string;
  type: string;
  digest: string;
  objects: ObjectRef[];
  envTarget?: { namespace: string; deployment: string; container: string };
  /** kubernetes_env: the variables applied, which refresh checks are still set. */
  // biome-ignore lint/suspicious/noExplicitAny: env entries
  envApplied?: any[];
  /** The objects as the configuration last set them, which an update diffs against. */
  config?: Manifest[];
  /** A create that failed after the object was made (a wait that ran out): replaced next. */
  tainted?: boolean;
  /** helm_release: the revision of the release Secret last written. */
  revision?: number;
}

export interface TofuState {
  version: 4;
  serial: number;
  lineage: string;
  password?: string;
  resources: Record<string, StateResource>;
  outputs: Record<string, unknown>;
}

export type Action = 'create' | 'update' | 'delete' | 'no-op';

export interface PlannedChange {
  address: string;
  type: string;
  name: string;
  index?: string;
  moduleAddress: string;
  actions: Action[];
  /** why a replace was planned, as `show -json` names it (`replace_because_tainted`, …) */
  actionReason?: 'replace_because_tainted' | 'replace_by_request';
  before: Record<string, unknown> | null;
  after: Record<string, unknown> | null;
}

export interface SavedPlan {
  format: 'sandbox-tofu-plan';
  lineage: string;
  serial: number;
  /** Resources the refresh found gone from the cluster: dropped from state on apply. */
  gone?: string[];
  changes: PlannedChange[];
  desired: DesiredResource[];
  outputs: Record<string, unknown>;
  variables: Record<string, unknown>;
}

const REPO = fileURLToPath(new URL('../../', import.meta.url));

export function stateDir(): string {
  const base = process.env.SANDBOX_RUN_DIR ?? join(REPO, 'sandbox', '.run');
  return join(base, 'tofu');
}

export function statePath(): string {
  return join(stateDir(), 'terraform.tfstate');
}

export function readState(): TofuState {
  const path = statePath();
  // No lineage until the first apply writes the state, so a plan of nothing stays applicable.
  if (!existsSync(path)) return { version: 4, serial: 0, lineage: '', resources: {}, outputs: {} };
  return JSON.parse(readFileSync(path, 'utf8')) as TofuState;
}

export function writeState(state: TofuState): void {
  const path = statePath();
  if (!state.lineage) state.lineage = randomUUID();
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const tmp = `${path}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(state, null, 2)}\n`, { mode: 0o600 });
  renameSync(tmp, path);
}

export function refOf(object: Manifest): ObjectRef {
  return {
    apiVersion: object.apiVersion,
    kind: object.kind,
    namespace: object.metadata?.namespace,
    name: object.metadata?.name,
  };
}

/**
 * The local backend's state lock (opentofu internal/states/statemgr/filesystem.go): while a
 * plan or apply runs, `.terraform.tfstate.lock.info` next to the state holds the LockInfo JSON
 * (ID, Operation, Info, Who, Version, Created, Path), and the state file itself carries an fcntl
 * lock that the kernel drops when the process ends. Node has no fcntl, so the stand-in holds
 * `.terraform.tfstate.lock` (its pid, created exclusively) in its place: a holder that died,
 * like a process killed mid-apply, holds nothing, as with fcntl, while the info file stays.
 */
export interface LockInfo {
  ID: string;
  Operation: string;
  Info: string;
  Who: string;
  Version: string;
  Created: string;
  Path: string;
}

export function lockInfoPath(): string {
  return join(stateDir(), '.terraform.tfstate.lock.info');
}

function holderPath(): string {
  return join(stateDir(), '.terraform.tfstate.lock');
}

/** OpenTofu's diagnostic when the lock is held (internal/command/clistate/state.go). */
export class StateLockedError extends Error {}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function tryLock(): boolean {
  mkdirSync(stateDir(), { recursive: true, mode: 0o700 });
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      writeFileSync(holderPath(), `${process.pid}\n`, { flag: 'wx', mode: 0o600 });
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const pid = Number(readFileSync(holderPath(), 'utf8').trim());
      if (pid && alive(pid)) return false;
      rmSync(holderPath(), { force: true });
    }
  }
  return false;
}

/**
 * Takes the lock for `operation` (OperationTypePlan, OperationTypeApply), retrying as
 * statemgr.LockWithContext does (1 s, doubling to 16 s) until `timeoutMs` (-lock-timeout, 0 by
 * default); returns the release. Fails with OpenTofu's "Error acquiring the state lock".
 */
export async function acquireStateLock(
  operation: string,
  version: string,
  timeoutMs: number,
): Promise<() => void> {
  const deadline = Date.now() + timeoutMs;
  let delay = 1000;
  while (!tryLock()) {
    if (Date.now() >= deadline) {
      let info = '';
      try {
        info = lockInfoText(JSON.parse(readFileSync(lockInfoPath(), 'utf8')) as LockInfo);
      } catch {
        // The holder has not written its info yet.
      }
      throw new StateLockedError(
        `Error acquiring the state lock\n\nError message: resource temporarily unavailable\n${info}\nOpenTofu acquires a state lock to protect the state from being written\nby multiple users at the same time. Please resolve the issue above and try\nagain. For most commands, you can disable locking with the "-lock=false"\nflag, but this is not recommended.`,
      );
    }
    await new Promise((r) => setTimeout(r, Math.min(delay, Math.max(0, deadline - Date.now()))));
    delay = Math.min(delay * 2, 16_000);
  }
  const info: LockInfo = {
    ID: randomUUID(),
    Operation: operation,
    Info: '',
    Who: `${userInfo().username}@${hostname()}`,
    Version: version,
    Created: new Date().toISOString(),
    Path: statePath(),
  };
  writeFileSync(lockInfoPath(), JSON.stringify(info), { mode: 0o600 });
  return () => {
    rmSync(lockInfoPath(), { force: true });
    rmSync(holderPath(), { force: true });
  };
}

/** LockInfo.String() of statemgr. */
function lockInfoText(info: LockInfo): string {
  const created = info.Created.replace('T', ' ').replace('Z', ' +0000 UTC');
  return `Lock Info:\n  ID:        ${info.ID}\n  Path:      ${info.Path}\n  Operation: ${info.Operation}\n  Who:       ${info.Who}\n  Version:   ${info.Version}\n  Created:   ${created}\n  Info:      ${info.Info}\n`;
}
