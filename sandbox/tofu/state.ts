// The stand-in's state and saved plans. State lives in $SANDBOX_RUN_DIR/tofu (default
// sandbox/.run/tofu), written 0600 because, as in real state, the generated password is in it.
import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
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
  before: Record<string, unknown> | null;
  after: Record<string, unknown> | null;
}

export interface SavedPlan {
  format: 'sandbox-tofu-plan';
  lineage: string;
  serial: number;
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
