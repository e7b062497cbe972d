// Plan and apply as OpenTofu does them with the kubernetes, helm and random providers: a plan
// first refreshes the state against the cluster (an object gone is dropped and planned as a
// create), then compares what the modules declare with it; apply creates (refusing an object
// that already exists), updates (removing what the configuration no longer sets), waits where
// the provider waits, and deletes.
import { randomInt } from 'node:crypto';
import { gunzipSync } from 'node:zlib';
import { parseAllDocuments } from 'yaml';
import { helmReleaseSecret } from './chart.ts';
import { type KubeClient, KubeError, type Manifest } from './kube-client.ts';
import type { DesiredResource, DesiredState, ReleaseSettings } from './resources.ts';
import { PASSWORD_MARKER } from './resources.ts';
import {
  type Action,
  type PlannedChange,
  refOf,
  type SavedPlan,
  type StateResource,
  type TofuState,
} from './state.ts';

const POLL_MS = 200;
const PASSWORD_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

export async function makePlan(
  desired: DesiredState,
  state: TofuState,
  client: KubeClient | undefined,
  options: {
    destroy?: boolean;
    targets?: string[];
    /** `-replace=ADDRESS`: instances planned as a replace even when nothing changed */
    replace?: string[];
    variables: Record<string, unknown>;
  },
): Promise<SavedPlan> {
  const targeted = (address: string) =>
    !options.targets?.length ||
    options.targets.some(
      (t) => address === t || address.startsWith(`${t}.`) || address.startsWith(`${t}[`),
    );
  const refreshed = client ? await refresh(state, client) : { gone: [], drifted: [] };
  const prior = { ...state.resources };
  for (const address of refreshed.gone) delete prior[address];
  const wanted = options.destroy ? [] : desired.resources.filter((r) => targeted(r.address));
  const changes: PlannedChange[] = [];
  // A replaced random_password has a result known only after apply, so everything that writes
  // it (the Secret copies) is planned as an update, as OpenTofu plans a changed attribute.
  const newPassword = wanted.some(
    (r) => r.password && prior[r.address] && options.replace?.includes(r.address),
  );
  for (const resource of wanted) {
    const current = prior[resource.address];
    let actions: Action[];
    let actionReason: PlannedChange['actionReason'];
    if (!current) actions = ['create'];
    else if (current.tainted) {
      actions = ['delete', 'create'];
      actionReason = 'replace_because_tainted';
    } else if (options.replace?.includes(resource.address)) {
      // https://opentofu.org/docs/cli/commands/plan/ (planning options): -replace
      // plans a replace where the plan would otherwise update or leave the instance alone.
      actions = ['delete', 'create'];
      actionReason = 'replace_by_request';
    } else if (current.digest !== resource.digest) actions = ['update'];
    else if (refreshed.drifted.includes(resource.address)) actions = ['update'];
    else if (newPassword && JSON.stringify(resource.objects).includes(PASSWORD_MARKER))
      actions = ['update'];
    else actions = ['no-op'];
    changes.push({
      ...change(resource, actions, current ? { objects: current.objects } : null, resource.after),
      ...(actionReason ? { actionReason } : {}),
    });
  }
  const wantedAddresses = new Set(desired.resources.map((r) => r.address));
  for (const current of Object.values(prior).reverse()) {
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
    gone: refreshed.gone,
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

/**
 * Refresh, as each provider's Read does it: the kubernetes provider reads each object and
 * removes the resource from state when it is gone (resourceKubernetes*Read sets an empty ID on
 * NotFound; kubernetes_manifest likewise); the helm provider looks the release up and drops it
 * when Helm has no deployed revision of it (resourceReleaseRead → releaseNotFound); kubernetes_env
 * is gone with its Deployment. An object that is there but no longer carries what the
 * configuration set (a label removed, a data key changed, the env reset) is drift: an update.
 */
async function refresh(
  state: TofuState,
  client: KubeClient,
): Promise<{ gone: string[]; drifted: string[] }> {
  const gone: string[] = [];
  const drifted: string[] = [];
  const password = state.password && Buffer.from(state.password).toString('base64');
  for (const current of Object.values(state.resources)) {
    if (current.type === 'random_password') continue;
    if (current.type === 'helm_release') {
      const release = current.objects.find((o) => o.name.startsWith('sh.helm.release.v1.'));
      const name = release?.name.replace(/\.v\d+$/, '');
      const latest =
        release &&
        (await client.get('v1', 'Secret', release.namespace, `${name}.v${current.revision}`));
      if (latest?.metadata?.labels?.status !== 'deployed') gone.push(current.address);
      continue;
    }
    if (current.envTarget) {
      const dep = await client.get(
        'apps/v1',
        'Deployment',
        current.envTarget.namespace,
        current.envTarget.deployment,
      );
      if (!dep) gone.push(current.address);
      else if (
        current.envApplied &&
        !envHolds(dep, current.envTarget.container, current.envApplied)
      )
        drifted.push(current.address);
      continue;
    }
    let missing = false;
    let differs = false;
    for (const [i, ref] of current.objects.entries()) {
      const live = await client.get(ref.apiVersion, ref.kind, ref.namespace, ref.name);
      if (!live) {
        missing = true;
        break;
      }
      const config = current.config?.[i];
      if (config && !contains(live, withPasswordText(config, password))) differs = true;
    }
    if (missing) gone.push(current.address);
    else if (differs) drifted.push(current.address);
  }
  return { gone, drifted };
}

function envHolds(dep: Manifest, container: string, env: Manifest[]): boolean {
  const containers = (dep?.spec?.template?.spec?.containers ?? []) as Manifest[];
  const live = (containers.find((c) => c.name === container)?.env ?? []) as Manifest[];
  return env.every(
    (want) => JSON.stringify(live.find((e) => e.name === want.name)) === JSON.stringify(want),
  );
}

/** Every value the configuration sets is in the live object (which may hold more). */
function contains(live: unknown, want: unknown): boolean {
  if (Array.isArray(want)) {
    return (
      Array.isArray(live) &&
      live.length === want.length &&
      want.every((w, i) => contains(live[i], w))
    );
  }
  if (want && typeof want === 'object') {
    if (!live || typeof live !== 'object') return false;
    return Object.entries(want).every(([k, v]) =>
      contains((live as Record<string, unknown>)[k], v),
    );
  }
  return live === want;
}

export type Reporter = (line: string) => void;

export interface ApplyResult {
  added: number;
  changed: number;
  destroyed: number;
}

/** An apply that stopped: what was done before it stays in state, as real state does. */
export class ApplyError extends Error {}

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
  // The refresh the plan made is part of it: what was gone is no longer in state.
  for (const address of plan.gone ?? []) delete state.resources[address];
  for (const c of plan.changes.filter((c) => c.actions.includes('delete'))) {
    const started = Date.now();
    report(`${c.address}: Destroying...`);
    await destroyResource(client, state.resources[c.address]);
    delete state.resources[c.address];
    if (c.type === 'random_password') delete state.password;
    report(`${c.address}: Destruction complete after ${elapsed(started)}`);
    // A replace counts as one added and one destroyed, as OpenTofu's summary counts it.
    result.destroyed++;
    save();
  }
  for (const c of plan.changes) {
    if (!c.actions.includes('create') && !c.actions.includes('update')) continue;
    const creating = c.actions.includes('create');
    const resource = byAddress.get(c.address);
    if (!resource) continue;
    const started = Date.now();
    const verb = creating
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
    const objects = resource.objects.map((o) => withPassword(o, state.password));
    if (resource.release) {
      entry.revision = await applyRelease(client, resource, previous, creating, objects, (line) =>
        report(`${c.address}: ${line} [${elapsed(started)} elapsed]`),
      ).catch((err: Error) => {
        // With atomic, a failed upgrade was rolled back to the revision before (state keeps
        // the old digest, so the next plan shows the update again); a failed install left
        // nothing behind.
        if (err instanceof ReleaseRolledBack && previous && resource.release) {
          const { name, namespace } = resource.release;
          // The failed upgrade's release Secret and the rollback's.
          const secrets = [err.revision - 1, err.revision].map((r) => ({
            apiVersion: 'v1',
            kind: 'Secret',
            namespace,
            name: `sh.helm.release.v1.${name}.v${r}`,
          }));
          state.resources[c.address] = {
            ...previous,
            objects: [...previous.objects, ...secrets],
            revision: err.revision,
          };
          save();
        }
        throw err;
      });
      for (let r = 1; r <= entry.revision; r++) {
        entry.objects.push({
          apiVersion: 'v1',
          kind: 'Secret',
          namespace: resource.release.namespace,
          name: `sh.helm.release.v1.${resource.release.name}.v${r}`,
        });
      }
    } else if (resource.envPatch) {
      entry.envTarget = {
        namespace: resource.envPatch.namespace,
        deployment: resource.envPatch.deployment,
        container: resource.envPatch.container,
      };
      entry.envApplied = resource.envPatch.env;
      await applyEnv(client, entry.envTarget, resource.envPatch.env);
    } else if (objects.length > 0) {
      entry.config = resource.objects;
      for (const [i, object] of objects.entries()) {
        if (creating) await createObject(client, resource, object);
        else await updateObject(client, object, previous?.config?.[i]);
      }
      if (creating && resource.loadBalancerWait) {
        // The provider sets the ID before it waits: a timeout leaves the resource in state,
        // tainted, so the next plan replaces it (resourceKubernetesServiceV1Create).
        const waited = await waitForLoadBalancer(
          client,
          objects[0] as Manifest,
          resource.loadBalancerWait.timeoutMs,
        );
        if (!waited.ok) {
          state.resources[c.address] = { ...entry, tainted: true };
          save();
          throw new ApplyError(waited.message);
        }
      }
    }
    state.resources[c.address] = entry;
    report(`${c.address}: ${verb[1]} after ${elapsed(started)}${idOf(resource)}`);
    if (creating) result.added++;
    else result.changed++;
    save();
  }
  state.outputs = plan.outputs;
  return result;
}

/**
 * Create as the providers do it: the typed resources POST the object and return the API
 * server's error as it is (`namespaces "redis" already exists`: diag.FromErr(err) after
 * Create, terraform-provider-kubernetes v2.38.0 kubernetes/resource_kubernetes_*_v1.go);
 * kubernetes_manifest looks first and refuses with its own diagnostic
 * (manifest/provider/apply.go).
 */
async function createObject(
  client: KubeClient,
  resource: DesiredResource,
  object: Manifest,
): Promise<void> {
  const { apiVersion, kind, metadata } = object;
  if (resource.type === 'kubernetes_manifest') {
    if (await client.get(apiVersion, kind, metadata.namespace, metadata.name)) {
      const rnn = metadata.namespace ? `${metadata.namespace}/${metadata.name}` : metadata.name;
      throw new ApplyError(
        `Cannot create resource that already exists\n\nresource "${rnn}" already exists`,
      );
    }
  }
  try {
    await client.create(object);
  } catch (err) {
    if (err instanceof KubeError) throw new ApplyError(err.apiMessage);
    throw err;
  }
}

/**
 * Update: the provider patches the differences between the prior configuration and the new one,
 * so a label, annotation or data key removed from the configuration is removed from the object
 * (a JSON patch "remove" op in the provider's patchMetadata/diff; here a merge patch with null).
 */
async function updateObject(
  client: KubeClient,
  object: Manifest,
  priorConfig: Manifest | undefined,
): Promise<void> {
  const { apiVersion, kind, metadata } = object;
  const patch = priorConfig ? withRemovals(object, priorConfig) : object;
  await client.patch(apiVersion, kind, metadata.namespace, metadata.name, patch);
}

/** `next`, plus null for every map key the prior configuration set and `next` does not. */
function withRemovals(next: Manifest, prior: Manifest): Manifest {
  const out: Manifest = { ...next };
  for (const [k, v] of Object.entries(prior)) {
    if (!(k in next)) out[k] = null;
    else if (isMap(v) && isMap(next[k])) out[k] = withRemovals(next[k], v);
  }
  return out;
}

const isMap = (v: unknown): v is Manifest => !!v && typeof v === 'object' && !Array.isArray(v);

/**
 * kubernetes_service_v1 create with wait_for_load_balancer: polls until the Service's status has
 * an ingress address, up to the create timeout; the error is the last retry's message, as the
 * SDK's RetryContext returns it.
 */
async function waitForLoadBalancer(
  client: KubeClient,
  service: Manifest,
  timeoutMs: number,
): Promise<{ ok: true } | { ok: false; message: string }> {
  const { namespace, name } = service.metadata;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const live = await client.get('v1', 'Service', namespace, name);
    if ((live?.status?.loadBalancer?.ingress ?? []).length > 0) return { ok: true };
    if (Date.now() >= deadline) {
      return {
        ok: false,
        message: `Waiting for service "${namespace}/${name}" to assign IP/hostname for a load balancer`,
      };
    }
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
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
    throw new ApplyError(`The resource "${target.deployment}" does not exist`);
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

/** A failed upgrade that `atomic` rolled back; `revision` is the rollback's. */
class ReleaseRolledBack extends ApplyError {
  constructor(
    message: string,
    readonly revision: number,
  ) {
    super(message);
  }
}

/**
 * helm_release create/update as Helm 3 does an install/upgrade: an install refuses objects that
 * exist without this release's ownership metadata; the objects are applied, the ones the
 * release no longer renders removed; with `wait`, every workload the chart renders must be
 * ready within `timeout`; with `atomic`, a failure uninstalls (install) or rolls back to the
 * previous revision (upgrade), as pkg/action/install.go and upgrade.go do. Returns the revision
 * now deployed.
 */
async function applyRelease(
  client: KubeClient,
  resource: DesiredResource,
  previous: StateResource | undefined,
  installing: boolean,
  objects: Manifest[],
  progress: (line: string) => void,
): Promise<number> {
  const release = resource.release as ReleaseSettings;
  if (installing) await refuseForeignObjects(client, release, objects);
  const priorRevision = installing ? 0 : (previous?.revision ?? 0);
  const priorObjects = priorRevision ? await releaseManifest(client, release, priorRevision) : [];
  for (const object of objects) await client.apply(object);
  await removeNotRendered(client, priorObjects, objects);
  const revision = priorRevision + 1;
  if (release.wait) {
    const failure = await waitForRelease(client, objects, release.timeoutSeconds * 1000, progress);
    if (failure) {
      if (!release.atomic) {
        await recordRevision(client, release, revision, 'failed', objects, priorRevision);
        throw new ApplyError(failure);
      }
      if (installing || !priorRevision) {
        for (const o of [...objects].reverse())
          await client.delete(o.apiVersion, o.kind, o.metadata.namespace, o.metadata.name);
        throw new ApplyError(
          `release ${release.name} failed, and has been uninstalled due to atomic being set: ${failure}`,
        );
      }
      await recordRevision(client, release, revision, 'failed', objects, priorRevision);
      for (const object of priorObjects) await client.apply(object);
      await removeNotRendered(client, objects, priorObjects);
      // Helm's rollback (pkg/action/rollback.go) supersedes every deployed revision and the
      // failed one, then records the rollback as a new deployed revision.
      await recordRevision(client, release, revision + 1, 'deployed', priorObjects, priorRevision);
      await client.patch('v1', 'Secret', release.namespace, releaseSecretName(release, revision), {
        metadata: { labels: { status: 'superseded' } },
      });
      throw new ReleaseRolledBack(
        `release ${release.name} failed, and has been rolled back due to atomic being set: ${failure}`,
        revision + 1,
      );
    }
  }
  await recordRevision(client, release, revision, 'deployed', objects, priorRevision);
  return revision;
}

async function refuseForeignObjects(
  client: KubeClient,
  release: ReleaseSettings,
  objects: Manifest[],
): Promise<void> {
  for (const o of objects) {
    const live = await client.get(o.apiVersion, o.kind, o.metadata.namespace, o.metadata.name);
    if (!live) continue;
    const ann = live.metadata?.annotations ?? {};
    if (
      live.metadata?.labels?.['app.kubernetes.io/managed-by'] === 'Helm' &&
      ann['meta.helm.sh/release-name'] === release.name &&
      ann['meta.helm.sh/release-namespace'] === release.namespace
    )
      continue;
    // helm's pkg/action/validate.go (existingResourceConflict, checkOwnership).
    throw new ApplyError(
      `installation failed\n\nrendered manifests contain a resource that already exists. Unable to continue with install: ${o.kind} "${o.metadata.name}" in namespace "${o.metadata.namespace ?? ''}" exists and cannot be imported into the current release: invalid ownership metadata`,
    );
  }
}

async function removeNotRendered(
  client: KubeClient,
  before: Manifest[],
  now: Manifest[],
): Promise<void> {
  const key = (o: Manifest) => `${o.kind}/${o.metadata?.namespace}/${o.metadata?.name}`;
  const kept = new Set(now.map(key));
  for (const o of before) {
    if (!kept.has(key(o)))
      await client.delete(o.apiVersion, o.kind, o.metadata?.namespace, o.metadata?.name);
  }
}

/**
 * helm's wait (pkg/kube/ready.go): Deployments, StatefulSets and DaemonSets rolled out and
 * ready, LoadBalancer Services with an address. Returns the failure, or undefined.
 */
async function waitForRelease(
  client: KubeClient,
  objects: Manifest[],
  timeoutMs: number,
  progress: (line: string) => void,
): Promise<string | undefined> {
  const deadline = Date.now() + timeoutMs;
  let lastReport = Date.now();
  for (;;) {
    const pending: string[] = [];
    for (const o of objects) {
      if (!(await isReady(client, o)))
        pending.push(`${o.kind} ${o.metadata.namespace}/${o.metadata.name}`);
    }
    if (pending.length === 0) return undefined;
    // helm ≤ 3.17 reports a wait that ran out as wait.ErrWaitTimeout.
    if (Date.now() >= deadline) return 'timed out waiting for the condition';
    if (Date.now() - lastReport > 10_000) {
      progress(`Still waiting for ${pending.join(', ')}...`);
      lastReport = Date.now();
    }
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}

async function isReady(client: KubeClient, o: Manifest): Promise<boolean> {
  const workload = ['StatefulSet', 'Deployment', 'DaemonSet'].includes(o.kind);
  const lb = o.kind === 'Service' && o.spec?.type === 'LoadBalancer';
  if (!workload && !lb) return true;
  const live = await client.get(o.apiVersion, o.kind, o.metadata.namespace, o.metadata.name);
  if (!live) return false;
  if (lb) return (live.status?.loadBalancer?.ingress ?? []).length > 0;
  if ((live.status?.observedGeneration ?? 0) < (live.metadata?.generation ?? 0)) return false;
  if (o.kind === 'DaemonSet')
    return (live.status?.numberReady ?? 0) >= (live.status?.desiredNumberScheduled ?? 0);
  const want = live.spec?.replicas ?? 1;
  const status = live.status ?? {};
  if (o.kind === 'StatefulSet') {
    // statefulSetReady: the rollout is complete (every pod on the update revision) and ready.
    if (status.updateRevision && status.currentRevision !== status.updateRevision) return false;
    if ((status.updatedReplicas ?? 0) < want) return false;
  } else if ((status.updatedReplicas ?? want) < want) return false;
  return (status.readyReplicas ?? 0) >= want;
}

/** Writes release Secret v<revision> and marks v<supersedes> superseded, as Helm does. */
async function recordRevision(
  client: KubeClient,
  release: ReleaseSettings,
  revision: number,
  status: 'deployed' | 'failed',
  objects: Manifest[],
  supersedes: number,
): Promise<void> {
  if (supersedes && status === 'deployed') {
    await client.patch(
      'v1',
      'Secret',
      release.namespace,
      `sh.helm.release.v1.${release.name}.v${supersedes}`,
      { metadata: { labels: { status: 'superseded' } } },
    );
  }
  const secret = helmReleaseSecret(
    release,
    revision,
    status === 'deployed' ? 'deployed' : 'superseded',
    objects,
    new Date().toISOString(),
  );
  if (status === 'failed') secret.metadata.labels.status = 'failed';
  await client.apply(secret);
}

function releaseSecretName(release: ReleaseSettings, revision: number): string {
  return `sh.helm.release.v1.${release.name}.v${revision}`;
}

/** The objects a revision's release Secret records (its gzip'd, base64'd manifest). */
async function releaseManifest(
  client: KubeClient,
  release: ReleaseSettings,
  revision: number,
): Promise<Manifest[]> {
  const secret = await client.get(
    'v1',
    'Secret',
    release.namespace,
    `sh.helm.release.v1.${release.name}.v${revision}`,
  );
  const data = secret?.data?.release as string | undefined;
  if (!data) return [];
  const inner = Buffer.from(data, 'base64').toString();
  const record = JSON.parse(gunzipSync(Buffer.from(inner, 'base64')).toString()) as {
    manifest?: string;
  };
  return parseAllDocuments(record.manifest ?? '')
    .map((d) => d.toJS() as Manifest)
    .filter(Boolean);
}

function withPassword(object: Manifest, password: string | undefined): Manifest {
  const text = JSON.stringify(object);
  if (!text.includes(PASSWORD_MARKER)) return object;
  if (!password)
    throw new Error('the password is not in the state yet: apply random_password first');
  return JSON.parse(text.split(PASSWORD_MARKER).join(Buffer.from(password).toString('base64')));
}

function withPasswordText(object: Manifest, base64Password: string | undefined): Manifest {
  const text = JSON.stringify(object);
  if (!text.includes(PASSWORD_MARKER) || !base64Password) return object;
  return JSON.parse(text.split(PASSWORD_MARKER).join(base64Password));
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
