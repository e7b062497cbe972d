// `tofu` in the sandbox: the subcommands the runbooks use, against the sandbox's API server.
// See sandbox/workloads/README.md ("The tofu stand-in") for what it does and does not do.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { findOnPath } from '../workloads/binaries.ts';
import {
  checkManifestSchemas,
  checkPreconditions,
  checkPreventDestroy,
  checkVariables,
  protectedResources,
} from './checks.ts';
import { loadRoot, type VarAssignment } from './config.ts';
import { applyPlan, makePlan } from './engine.ts';
import { KubeClient, type KubeTarget, resolveKubeTarget } from './kube-client.ts';
import { desiredState, durationMs } from './resources.ts';
import {
  acquireStateLock,
  type PlannedChange,
  readState,
  type SavedPlan,
  statePath,
  writeState,
} from './state.ts';

export const STAND_IN_VERSION = '1.9.1';

interface Options {
  chdir: string;
  assignments: VarAssignment[];
  targets: string[];
  replace: string[];
  out?: string;
  autoApprove: boolean;
  json: boolean;
  raw: boolean;
  detailedExitcode: boolean;
  destroy: boolean;
  check: boolean;
  lock: boolean;
  lockTimeoutMs: number;
  positional: string[];
  passthrough: string[];
}

function parseArgs(argv: string[]): { command: string; options: Options } {
  const options: Options = {
    chdir: process.cwd(),
    assignments: [],
    targets: [],
    replace: [],
    autoApprove: false,
    json: false,
    raw: false,
    detailedExitcode: false,
    destroy: false,
    check: false,
    lock: true,
    lockTimeoutMs: 0,
    positional: [],
    passthrough: [],
  };
  let command = '';
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    const [flag = '', inline] = arg.startsWith('-') ? splitFlag(arg) : ['', undefined];
    const value = () => inline ?? (argv[++i] as string);
    if (!flag) {
      if (!command) command = arg;
      else options.positional.push(arg);
      continue;
    }
    options.passthrough.push(arg);
    switch (flag) {
      case 'chdir':
        options.chdir = resolve(value());
        break;
      case 'var':
        options.assignments.push({ kind: 'var', text: value() });
        break;
      case 'var-file':
        options.assignments.push({ kind: 'var-file', path: value() });
        break;
      case 'target':
        options.targets.push(value());
        break;
      case 'replace':
        options.replace.push(value());
        break;
      case 'out':
        options.out = value();
        break;
      case 'auto-approve':
        options.autoApprove = inline !== 'false';
        break;
      case 'json':
        options.json = true;
        break;
      case 'raw':
        options.raw = true;
        break;
      case 'detailed-exitcode':
        options.detailedExitcode = true;
        break;
      case 'destroy':
        options.destroy = true;
        break;
      case 'check':
        options.check = true;
        break;
      case 'lock':
        options.lock = inline !== 'false';
        break;
      case 'lock-timeout':
        options.lockTimeoutMs = durationMs(value(), 0);
        break;
      case 'version':
      case 'v':
        command ||= 'version';
        break;
      default:
        // -input=false, -no-color, -upgrade, -recursive, -diff… change nothing here.
        break;
    }
  }
  return { command, options };
}

function splitFlag(arg: string): [string, string | undefined] {
  const body = arg.replace(/^--?/, '');
  const eq = body.indexOf('=');
  return eq < 0 ? [body, undefined] : [body.slice(0, eq), body.slice(eq + 1)];
}

const out = (line = '') => process.stdout.write(`${line}\n`);

async function main(argv: string[]): Promise<number> {
  const { command, options } = parseArgs(argv);
  switch (command) {
    case 'version':
      if (options.json) {
        out(
          JSON.stringify({
            terraform_version: STAND_IN_VERSION,
            platform: 'linux_amd64',
            provider_selections: {},
            terraform_outdated: false,
          }),
        );
      } else {
        out(`OpenTofu v${STAND_IN_VERSION} (sandbox stand-in)\non linux_amd64`);
      }
      return 0;
    case 'init':
      await loadRoot(options.chdir, []).catch((err) => {
        // init does not need variable values, only readable configuration.
        if (!/variable/.test((err as Error).message)) throw err;
      });
      out(
        'Initializing the backend...\nInitializing modules...\nInitializing provider plugins...\n',
      );
      out('OpenTofu has been successfully initialized!');
      return 0;
    case 'validate': {
      const root = await loadRoot(options.chdir, options.assignments);
      checkVariables(root, desiredState(root).inputs);
      if (options.json)
        out(
          JSON.stringify({
            format_version: '1.0',
            valid: true,
            error_count: 0,
            warning_count: 0,
            diagnostics: [],
          }),
        );
      else out('Success! The configuration is valid.');
      return 0;
    }
    case 'fmt':
      return fmt(options);
    case 'plan':
      return locked(options, 'OperationTypePlan', () => plan(options));
    case 'apply':
      return locked(options, 'OperationTypeApply', () => apply(options));
    case 'destroy':
      return locked(options, 'OperationTypeApply', () => apply({ ...options, destroy: true }));
    case 'show':
      return show(options);
    case 'output':
      return output(options);
    case 'state':
      if (options.positional[0] !== 'list') break;
      for (const address of Object.keys(readState().resources)) {
        if (!options.positional[1] || address.startsWith(options.positional[1])) out(address);
      }
      return 0;
  }
  process.stderr.write(
    `Usage: tofu [-chdir=DIR] <version|init|validate|fmt|plan|apply|destroy|show|output|state list> [options]\n` +
      `(the sandbox's stand-in${command ? `; "${[command, ...options.positional].join(' ')}" is not supported` : ''})\n`,
  );
  return 1;
}

/** Runs `body` holding the state lock, as the local backend does for plan and apply. */
async function locked(
  options: Options,
  operation: string,
  body: () => Promise<number>,
): Promise<number> {
  if (!options.lock) return body();
  const release = await acquireStateLock(operation, STAND_IN_VERSION, options.lockTimeoutMs);
  try {
    return await body();
  } finally {
    release();
  }
}

function fmt(options: Options): number {
  // Formatting needs no provider: real `terraform fmt` checks it exactly when it is installed.
  const terraform = findOnPath('terraform');
  if (!terraform) {
    process.stderr.write(
      'tofu fmt (sandbox stand-in): terraform is not installed, so formatting is not checked\n',
    );
    return 0;
  }
  try {
    execFileSync(
      terraform,
      ['fmt', ...options.passthrough.filter((a) => !a.startsWith('-chdir')), ...options.positional],
      {
        cwd: options.chdir,
        stdio: 'inherit',
        // No ~/.terraformrc is needed for fmt; without this terraform warns about its absence.
        env: { ...process.env, TF_CLI_CONFIG_FILE: '/dev/null' },
      },
    );
    return 0;
  } catch (err) {
    return (err as { status?: number }).status ?? 1;
  }
}

async function buildPlan(options: Options): Promise<SavedPlan> {
  const root = await loadRoot(options.chdir, options.assignments);
  const desired = desiredState(root);
  checkVariables(root, desired.inputs);
  const client = new KubeClient(kubeTarget(root.vars, root));
  // Refreshing and typing the manifests read the cluster: refuse one that is not the sandbox first.
  await client.assertSandbox();
  const plan = await makePlan(desired, readState(), client, {
    destroy: options.destroy,
    targets: options.targets,
    replace: options.replace,
    variables: root.vars,
  });
  checkPreventDestroy(plan.changes, protectedResources(root));
  await checkManifestSchemas(plan.desired, client);
  await checkPreconditions(root, plan.changes, client, desired.inputs);
  return plan;
}

/**
 * The cluster the providers reach: the kubeconfig_path variable when it was set (as the
 * providers' config_path), else $KUBECONFIG, which the sandbox's env sets; and always the
 * context kube_context names.
 */
function kubeTarget(
  vars: Record<string, unknown>,
  root: { blocks: Record<string, unknown> } | undefined,
): KubeTarget {
  // biome-ignore lint/suspicious/noExplicitAny: hcl2json blocks
  const declared = (root?.blocks as any)?.variable?.kubeconfig_path?.[0]?.default;
  const path = vars.kubeconfig_path === undefined ? undefined : String(vars.kubeconfig_path);
  return resolveKubeTarget(
    path,
    vars.kube_context as string | undefined,
    path !== undefined && path !== declared,
  );
}

function printPlan(plan: SavedPlan): { add: number; change: number; destroy: number } {
  const counts = { add: 0, change: 0, destroy: 0 };
  const acting = plan.changes.filter((c) => !c.actions.includes('no-op'));
  if (acting.length === 0) {
    out('No changes. Your infrastructure matches the configuration.');
    return counts;
  }
  out('OpenTofu used the selected providers to generate the following execution plan. Resource');
  out('actions are indicated with the following symbols:');
  const kindOf = (c: PlannedChange) =>
    c.actions.length === 2 ? 'replace' : (c.actions[0] as string);
  const legend: Array<[string, string, string]> = [
    ['+', 'create', 'create'],
    ['~', 'update', 'update in-place'],
    ['-', 'delete', 'destroy'],
    ['-/+', 'replace', 'destroy and then create replacement'],
  ];
  for (const [symbol, action, word] of legend) {
    if (acting.some((c) => kindOf(c) === action)) out(`  ${symbol} ${word}`);
  }
  out('\nOpenTofu will perform the following actions:\n');
  for (const c of acting) {
    const kind = kindOf(c);
    const [symbol, verb] =
      kind === 'create'
        ? ['+', 'will be created']
        : kind === 'update'
          ? ['~', 'will be updated in-place']
          : kind === 'replace'
            ? [
                '-/+',
                c.actionReason === 'replace_by_request'
                  ? 'will be replaced, as requested'
                  : 'is tainted, so must be replaced',
              ]
            : ['-', 'will be destroyed'];
    out(`  # ${c.address} ${verb}`);
    out(`  ${symbol} resource "${c.type}" "${c.name}" {`);
    for (const line of describe(c)) out(`      ${symbol} ${line}`);
    out('    }\n');
    if (kind === 'create') counts.add++;
    else if (kind === 'update') counts.change++;
    else if (kind === 'replace') {
      counts.add++;
      counts.destroy++;
    } else counts.destroy++;
  }
  out(`Plan: ${counts.add} to add, ${counts.change} to change, ${counts.destroy} to destroy.`);
  return counts;
}

function describe(c: PlannedChange): string[] {
  const body = (c.after ?? c.before ?? {}) as {
    objects?: Array<Record<string, string>>;
    env?: Array<{ name: string; value?: string }>;
  };
  if (body.env)
    return body.env.map(
      (e) =>
        `env { name = "${e.name}" ${e.value !== undefined ? `value = "${e.value}"` : 'value_from = (secret_key_ref)'} }`,
    );
  if (body.objects)
    return body.objects.map((o) => `${o.kind} ${o.namespace ? `${o.namespace}/` : ''}${o.name}`);
  return ['result = (sensitive value)'];
}

async function plan(options: Options): Promise<number> {
  const saved = await buildPlan(options);
  const counts = printPlan(saved);
  if (options.out) {
    writeFileSync(resolve(options.chdir, options.out), JSON.stringify(saved), { mode: 0o600 });
    out(
      `\nSaved the plan to: ${options.out}\n\nTo perform exactly these actions, run the following command to apply:\n    tofu apply "${options.out}"`,
    );
  }
  const changed = counts.add + counts.change + counts.destroy > 0;
  return options.detailedExitcode && changed ? 2 : 0;
}

async function apply(options: Options): Promise<number> {
  const planFile = options.positional[0];
  let saved: SavedPlan;
  const state = readState();
  if (planFile) {
    if (options.assignments.length > 0) {
      // As Terraform: a saved plan carries the values it was made with.
      throw new Error(
        "Can't set variables when applying a saved plan\n\nThe -var and -var-file options cannot be used when applying a saved plan file, because a saved plan includes the variable values that were set when it was created.",
      );
    }
    const path = resolve(options.chdir, planFile);
    if (!existsSync(path))
      throw new Error(`Failed to load "${planFile}" as a plan file: no such file`);
    saved = JSON.parse(readFileSync(path, 'utf8')) as SavedPlan;
    if (saved.format !== 'sandbox-tofu-plan')
      throw new Error(`"${planFile}" is not a plan file of the sandbox's tofu`);
    if (saved.serial !== state.serial || saved.lineage !== state.lineage) {
      throw new Error(
        'Saved plan is stale: the state has changed since this plan was created. Run tofu plan again.',
      );
    }
  } else {
    saved = await buildPlan(options);
    const counts = printPlan(saved);
    if (counts.add + counts.change + counts.destroy > 0 && !options.autoApprove) {
      process.stderr.write(
        "\nError: no saved plan and no -auto-approve: the sandbox's tofu does not ask interactively.\n",
      );
      return 1;
    }
  }
  const root = await loadRoot(options.chdir, []).catch(() => undefined);
  const client = new KubeClient(kubeTarget({ ...root?.vars, ...saved.variables }, root));
  await client.assertSandbox();
  let result: Awaited<ReturnType<typeof applyPlan>>;
  try {
    result = await applyPlan(saved, state, client, (line) => out(line));
  } finally {
    // What was done before a failure stays recorded, as real state does.
    writeState(state);
  }
  out(
    options.destroy
      ? `\nDestroy complete! Resources: ${result.destroyed} destroyed.`
      : `\nApply complete! Resources: ${result.added} added, ${result.changed} changed, ${result.destroyed} destroyed.`,
  );
  const outputs = Object.entries(state.outputs);
  if (outputs.length > 0 && !options.destroy) {
    out('\nOutputs:\n');
    for (const [name, value] of outputs) out(`${name} = ${JSON.stringify(value)}`);
  }
  return 0;
}

function show(options: Options): number {
  if (!options.json) throw new Error('the sandbox\'s tofu supports "show -json [PLANFILE]" only');
  const planFile = options.positional[0];
  if (!planFile) {
    const state = readState();
    out(
      JSON.stringify({
        format_version: '1.0',
        terraform_version: STAND_IN_VERSION,
        values: {
          outputs: outputsJson(state.outputs),
          root_module: {
            resources: Object.values(state.resources).map((r) => ({
              address: r.address,
              type: r.type,
              mode: 'managed',
            })),
          },
        },
      }),
    );
    return 0;
  }
  const saved = JSON.parse(readFileSync(resolve(options.chdir, planFile), 'utf8')) as SavedPlan;
  out(
    JSON.stringify({
      format_version: '1.2',
      terraform_version: STAND_IN_VERSION,
      variables: Object.fromEntries(
        Object.entries(saved.variables).map(([k, v]) => [k, { value: v }]),
      ),
      resource_changes: saved.changes.map((c) => ({
        address: c.address,
        module_address: c.moduleAddress,
        mode: 'managed',
        type: c.type,
        name: c.name,
        ...(c.index !== undefined ? { index: c.index } : {}),
        ...(c.actionReason ? { action_reason: c.actionReason } : {}),
        change: {
          actions: c.actions,
          before: c.before,
          after: c.after,
          after_sensitive:
            c.type === 'random_password' || c.type === 'kubernetes_secret_v1'
              ? { result: true, data: true }
              : {},
        },
      })),
      output_changes: Object.fromEntries(
        Object.entries(saved.outputs).map(([k, v]) => [
          k,
          { actions: ['create'], before: null, after: v },
        ]),
      ),
    }),
  );
  return 0;
}

function outputsJson(outputs: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(outputs).map(([name, value]) => [
      name,
      { sensitive: false, type: typeName(value), value },
    ]),
  );
}

function typeName(value: unknown): unknown {
  if (Array.isArray(value)) return ['tuple', value.map(typeName)];
  if (value === null) return 'dynamic';
  if (typeof value === 'object')
    return [
      'object',
      Object.fromEntries(Object.entries(value as object).map(([k, v]) => [k, typeName(v)])),
    ];
  return typeof value === 'number' ? 'number' : typeof value === 'boolean' ? 'bool' : 'string';
}

function output(options: Options): number {
  const state = readState();
  const name = options.positional[0];
  if (name) {
    if (!(name in state.outputs))
      throw new Error(`Output "${name}" not found (state: ${statePath()})`);
    const value = state.outputs[name];
    out(options.raw && typeof value !== 'object' ? String(value) : JSON.stringify(value));
    return 0;
  }
  out(JSON.stringify(outputsJson(state.outputs), null, options.json ? 2 : 0));
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: Error) => {
    process.stderr.write(`\nError: ${err.message}\n`);
    process.exitCode = 1;
  },
);
