// Plan and apply: compares what the modules declare with the state (refreshed against the
// cluster), and applies a plan by creating, updating and deleting the objects.
import { randomInt } from 'node:crypto';
import { helmReleaseSecret } from './chart.ts';
import type { KubeClient, Manifest } from './kube-client.ts';
import type { DesiredState } from './resources.ts';
import { type DesiredResource, PASSWORD_MARKER } from './resources.ts';
import {
  type Action,
  type PlannedChange,
  refOf,
  type SavedPlan,
  type StateResource,
  type TofuState,
} from './state.ts';

const HELM_WAIT_MS = 300_000;
const POLL_MS = 200;
const PASSWORD_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

export async function makePlan(
  desired: DesiredState,
  state: TofuState,
  client: KubeClient | undefined,
  options: { destroy?: boolean; targets?: string[]; variables: Record<string, unknown> },
): Promise<SavedPlan> {
  const targeted = (address: string) =>
    !options.targets?.length ||
    options.targets.some(
      (t) => address === t || address.startsWith(`${t}.`) || address.startsWith(`${t}[`),
    );
  const wanted = options.destroy ? [] : desired.resources.filter((r) => targeted(r.address));
  const changes: PlannedChange[] = [];
  for (const resource of wanted) {
    const current = state.resources[resource.address];
    let actions: Action[];
    if (!current) actions = ['create'];
    else if (current.digest !== resource.digest) actions = ['update'];
    else if (client && !(await stillInPlace(client, current, resource))) actions = ['update'];
    else actions = ['no-op'];
    changes.push(
      change(resource, actions, current ? { objects: current.objects } : null, resource.after),
    );
  }
  const wantedAddresses = new Set(desired.resources.map((r) => r.address));
  for (const current of Object.values(state.resources).reverse()) {
    if (!targeted(current.address)) continue;
    if (!options.destroy && wantedAddresses.has(current.address)) continue;
    const [moduleAddress = '', type = '', rest = ''] = splitAddress(current.address);
    const index = /\["(.*)"\]$/.exec(rest)?.[1];
    changes.push({
      address: current.address,
      type,
      name: rest.replace(/\[.*$/, ''),
      ...(index !== undefined ? { index } : {}),
      moduleAddress,
      actions: ['delete'],
      before: { objects: current.objects },
      after: null,
    });
  }
  return {
    format: 'sandbox-tofu-plan',
    lineage: state.lineage,
    serial: state.serial,
    changes,
    desired: wanted,
    outputs: options.destroy ? {} : desired.outputs,
    variables: options.variables,
  };
}

function change(
  r: DesiredResource,
  actions: Action[],
  before: Record<string, unknown> | null,
  after: Record<string, unknown>,
): PlannedChange {
  return {
    address: r.address,
    type: r.type,
    name: r.name,
    ...(r.index !== undefined ? { index: r.index } : {}),
    moduleAddress: r.moduleAddress,
    actions,
    before,
    after,
  };
}

/** `module.a[0].type.name["x"]` → [`module.a[0]`, `type`, `name["x"]`]. */
function splitAddress(address: string): [string, string, string] {
  const m = /^((?:module\.[\w-]+(?:\[\d+\])?\.)*)([\w-]+)\.(.+)$/.exec(address);
  return [m?.[1]?.replace(/\.$/, '') ?? '', m?.[2] ?? '', m?.[3] ?? ''];
}

/** Refresh: the objects in state are still there (and the env still holds what was set). */
async function stillInPlace(
  client: KubeClient,
  current: StateResource,
  resource: DesiredResource,
): Promise<boolean> {
  for (const ref of current.objects) {
    if (!(await client.get(ref.apiVersion, ref.kind, ref.namespace, ref.name))) return false;
  }
  if (resource.envPatch) {
    const dep = await client.get(
      'apps/v1',
      'Deployment',
      resource.envPatch.namespace,
      resource.envPatch.deployment,
    );
    const container = dep?.spec?.template?.spec?.containers?.find(
      // biome-ignore lint/suspicious/noExplicitAny: containers as the API stores them
      (c: any) => c.name === resource.envPatch?.container,
    );
    // biome-ignore lint/suspicious/noExplicitAny: env entries
    const env: any[] = container?.env ?? [];
    return resource.envPatch.env.every(
      (want) => JSON.stringify(env.find((e) => e.name === want.name)) === JSON.stringify(want),
    );
  }
  return true;
}

export type Reporter = (line: string) => void;

export interface ApplyResult {
  added: number;
  changed: number;
  destroyed: number;
}

export async function applyPlan(
  plan: SavedPlan,
  state: TofuState,
  client: KubeClient,
  report: Reporter,
): Promise<ApplyResult> {
  const result: ApplyResult = { added: 0, changed: 0, destroyed: 0 };
  const byAddress = new Map(plan.desired.map((r) => [r.address, r]));
  const save = () => {
    state.serial++;
  };
  for (const c of plan.changes.filter((c) => c.actions.includes('delete'))) {
    const started = Date.now();
    report(`${c.address}: Destroying...`);
    await destroyResource(client, state.resources[c.address]);
    delete state.resources[c.address];
    if (c.type === 'random_password') delete state.password;
    report(`${c.address}: Destruction complete after ${elapsed(started)}`);
    result.destroyed++;
    save();
  }
  for (const c of plan.changes) {
    const action = c.actions[0];
    if (action !== 'create' && action !== 'update') continue;
    const resource = byAddress.get(c.address);
    if (!resource) continue;
    const started = Date.now();
    const verb =
      action === 'create'
        ? ['Creating...', 'Creation complete']
        : ['Modifying...', 'Modifications complete'];
    report(`${c.address}: ${verb[0]}`);
    const previous = state.resources[c.address];
    const entry: StateResource = {
      address: c.address,
      type: resource.type,
      digest: resource.digest,
      objects: resource.objects.map(refOf),
    };
    if (resource.password) state.password ??= generatePassword();
    for (const object of resource.objects) {
      await client.apply(withPassword(object, state.password));
    }
    // Objects a release no longer renders go, as `helm upgrade` removes them (its release
    // Secrets stay: they are listed again below).
    for (const ref of (previous?.objects ?? []).filter((o) => !o.name.startsWith('sh.helm.'))) {
      if (
        !entry.objects.some(
          (o) => o.kind === ref.kind && o.namespace === ref.namespace && o.name === ref.name,
        )
      ) {
        await client.delete(ref.apiVersion, ref.kind, ref.namespace, ref.name);
      }
    }
    if (resource.envPatch) {
      entry.envTarget = {
        namespace: resource.envPatch.namespace,
        deployment: resource.envPatch.deployment,
        container: resource.envPatch.container,
      };
      await applyEnv(client, entry.envTarget, resource.envPatch.env);
    }
    if (resource.type === 'helm_release') {
      await waitForRollout(client, resource.objects, c.address, started, report);
      if (resource.release) {
        entry.revision = await recordRelease(client, resource, previous);
        for (let r = 1; r <= entry.revision; r++) {
          entry.objects.push({
            apiVersion: 'v1',
            kind: 'Secret',
            namespace: resource.release.namespace,
            name: `sh.helm.release.v1.${resource.release.name}.v${r}`,
          });
        }
      }
    }
    state.resources[c.address] = entry;
    report(`${c.address}: ${verb[1]} after ${elapsed(started)}${idOf(resource)}`);
    if (action === 'create') result.added++;
    else result.changed++;
    save();
  }
  state.outputs = plan.outputs;
  return result;
}

async function destroyResource(
  client: KubeClient,
  resource: StateResource | undefined,
): Promise<void> {
  if (!resource) return;
  if (resource.envTarget) await applyEnv(client, resource.envTarget, [], true);
  for (const ref of [...resource.objects].reverse()) {
    await client.delete(ref.apiVersion, ref.kind, ref.namespace, ref.name);
  }
}

/**
 * kubernetes_env as hashicorp/terraform-provider-kubernetes does it
 * (kubernetes/resource_kubernetes_env.go, resourceKubernetesEnvUpdate): a server-side apply of
 * `{spec.template.spec.containers: [{name, env}]}` with field manager "Terraform" and force;
 * delete applies the same with an empty env list. The API server's apply then owns the variables
 * as it does for real: on delete, what no other manager owns is removed and the rest stays as it
 * is — nothing is restored.
 */
async function applyEnv(
  client: KubeClient,
  target: { namespace: string; deployment: string; container: string },
  // biome-ignore lint/suspicious/noExplicitAny: env entries
  env: any[],
  deleting = false,
): Promise<void> {
  const dep = await client.get('apps/v1', 'Deployment', target.namespace, target.deployment);
  if (!dep) {
    if (deleting) return;
    throw new Error(`The resource "${target.deployment}" does not exist`);
  }
  await client.serverSideApply(
    {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: target.deployment, namespace: target.namespace },
      spec: { template: { spec: { containers: [{ name: target.container, env }] } } },
    },
    'Terraform',
    true,
  );
}

/** helm_release with wait = true: the StatefulSets it renders are rolled out before it completes. */
async function waitForRollout(
  client: KubeClient,
  objects: Manifest[],
  address: string,
  started: number,
  report: Reporter,
): Promise<void> {
  const sets = objects.filter((o) => o.kind === 'StatefulSet');
  let lastReport = Date.now();
  for (;;) {
    const pending: string[] = [];
    for (const set of sets) {
      const live = await client.get(
        'apps/v1',
        'StatefulSet',
        set.metadata.namespace,
        set.metadata.name,
      );
      const want = live?.spec?.replicas ?? 0;
      if (
        !live ||
        (live.status?.readyReplicas ?? 0) < want ||
        (live.status?.observedGeneration ?? 0) < (live.metadata?.generation ?? 0)
      ) {
        pending.push(set.metadata.name);
      }
    }
    if (pending.length === 0) return;
    if (Date.now() - started > HELM_WAIT_MS) {
      throw new Error(
        `${address}: timed out waiting for StatefulSet(s) ${pending.join(', ')} to be ready`,
      );
    }
    if (Date.now() - lastReport > 10_000) {
      report(`${address}: Still creating... [${elapsed(started)} elapsed]`);
      lastReport = Date.now();
    }
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}

/** Writes release Secret v<n+1> (deployed) and marks v<n> superseded, as `helm upgrade` does. */
async function recordRelease(
  client: KubeClient,
  resource: DesiredResource,
  previous: StateResource | undefined,
): Promise<number> {
  const release = resource.release as NonNullable<DesiredResource['release']>;
  const revision = (previous?.revision ?? 0) + 1;
  if (previous?.revision) {
    await client.patch(
      'v1',
      'Secret',
      release.namespace,
      `sh.helm.release.v1.${release.name}.v${previous.revision}`,
      { metadata: { labels: { status: 'superseded' } } },
    );
  }
  await client.apply(
    helmReleaseSecret(release, revision, 'deployed', resource.objects, new Date().toISOString()),
  );
  return revision;
}

function withPassword(object: Manifest, password: string | undefined): Manifest {
  const text = JSON.stringify(object);
  if (!text.includes(PASSWORD_MARKER)) return object;
  if (!password)
    throw new Error('the password is not in the state yet: apply random_password first');
  return JSON.parse(text.split(PASSWORD_MARKER).join(Buffer.from(password).toString('base64')));
}

/** As random_password with length 32 and special = false. */
export function generatePassword(length = 32): string {
  let out = '';
  for (let i = 0; i < length; i++) out += PASSWORD_ALPHABET[randomInt(PASSWORD_ALPHABET.length)];
  // min_upper/min_lower/min_numeric = 4: draw again in the rare case a class is short.
  const enough = (re: RegExp) => (out.match(re) ?? []).length >= 4;
  return enough(/[A-Z]/g) && enough(/[a-z]/g) && enough(/[0-9]/g) ? out : generatePassword(length);
}

function elapsed(started: number): string {
  return `${Math.round((Date.now() - started) / 1000)}s`;
}

function idOf(resource: DesiredResource): string {
  const first = resource.objects[0];
  if (resource.password) return ' [id=none]';
  if (resource.envPatch)
    return ` [id=apiVersion=apps/v1,kind=Deployment,namespace=${resource.envPatch.namespace},name=${resource.envPatch.deployment}]`;
  if (!first) return '';
  return ` [id=${first.metadata?.namespace ? `${first.metadata.namespace}/` : ''}${first.metadata?.name}]`;
}
