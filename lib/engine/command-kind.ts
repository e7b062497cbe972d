// A dry run must send no mutation, so every kubectl/tofu call is classified. Only verbs known to
// read are `read`; anything else counts as a mutation, so a verb nobody listed is never sent
// during a dry run by mistake.
import type { CommandKind } from './shell.ts';

const KUBECTL_READ_VERBS = new Set([
  'get',
  'describe',
  'logs',
  'wait',
  'version',
  'api-resources',
  'api-versions',
  'cluster-info',
  'explain',
  'top',
  'diff',
  'events',
]);

const KUBECTL_READ_SUBCOMMANDS: Record<string, ReadonlySet<string>> = {
  auth: new Set(['can-i', 'whoami']),
  config: new Set(['current-context', 'view', 'get-contexts', 'get-clusters', 'get-users']),
  rollout: new Set(['status', 'history']),
};

// `tofu init` only fills the local .terraform directory (unless told to move state, below) and
// `plan` is the read a dry run is for.
const TOFU_READ_VERBS = new Set([
  'init',
  'validate',
  'plan',
  'show',
  'output',
  'version',
  'providers',
  'graph',
]);

function positionals(args: readonly string[]): string[] {
  // kubectl's global flags may precede the verb; only flags written `--flag=value` or bare
  // switches are expected there, so anything starting with '-' is not a verb.
  return args.filter((arg) => !arg.startsWith('-'));
}

export function kubectlCommandKind(args: readonly string[]): CommandKind {
  const [verb, sub] = positionals(args);
  if (verb === undefined) return 'mutation';
  if (KUBECTL_READ_VERBS.has(verb)) return 'read';
  const subs = KUBECTL_READ_SUBCOMMANDS[verb];
  return subs && sub !== undefined && subs.has(sub) ? 'read' : 'mutation';
}

export function tofuCommandKind(args: readonly string[]): CommandKind {
  const [verb, sub] = positionals(args);
  if (verb === undefined) return 'mutation';
  // These init flags copy or rewrite the state in a (new) backend.
  if (verb === 'init' && args.some((a) => /^-(migrate-state|force-copy)(=|$)/.test(a))) {
    return 'mutation';
  }
  if (TOFU_READ_VERBS.has(verb)) return 'read';
  if (verb === 'fmt') return args.includes('-check') ? 'read' : 'mutation';
  if (verb === 'state') return sub === 'list' || sub === 'show' ? 'read' : 'mutation';
  return 'mutation';
}

/**
 * kubectl calls that may safely be sent twice, so a transient failure may be retried: scale to a
 * count, annotate/label with --overwrite, server-side apply. Everything else (delete, create,
 * rollout restart, a client-side apply) is sent once.
 */
export function kubectlIsIdempotent(args: readonly string[]): boolean {
  const [verb] = positionals(args);
  if (verb === 'scale') return true;
  if (verb === 'annotate' || verb === 'label') return args.includes('--overwrite');
  if (verb === 'apply')
    return args.some((a) => a === '--server-side' || a === '--server-side=true');
  return false;
}
