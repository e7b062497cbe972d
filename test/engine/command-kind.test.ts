import t from 'tap';
import { kubectlCommandKind, tofuCommandKind } from '../../lib/engine/command-kind.ts';

t.test('kubectl: reads are reads, everything else is a mutation', async (t) => {
  const reads = [
    ['get', 'pods', '-n', 'redis'],
    ['wait', '--for=condition=Ready', 'pod/x'],
    ['logs', 'job/bench'],
    ['rollout', 'status', 'deployment/beersystem'],
    ['config', 'current-context'],
    ['auth', 'can-i', 'delete', 'pods'],
    ['--request-timeout=5s', 'get', 'nodes'],
  ];
  for (const args of reads) t.equal(kubectlCommandKind(args), 'read', args.join(' '));
  const mutations = [
    ['scale', 'deployment', 'beersystem', '--replicas=0'],
    ['delete', 'deployment', 'redis'],
    ['apply', '--server-side', '-f', '-'],
    ['annotate', 'ns', 'beersystem', 'x=y'],
    ['rollout', 'restart', 'deployment/x'],
    ['config', 'use-context', 'other'],
    ['auth', 'reconcile'],
    ['exec', 'pod', '--', 'redis-cli'],
    ['some-new-verb'],
    [],
  ];
  for (const args of mutations) t.equal(kubectlCommandKind(args), 'mutation', args.join(' '));
});

t.test(
  'tofu: init, validate, plan and show read; apply, destroy, state changes and state migration mutate',
  async (t) => {
    for (const args of [
      ['init'],
      ['init', '-upgrade'],
      ['validate'],
      ['plan', '-out', 'x'],
      ['show', '-json', 'x'],
      ['output', '-json'],
      ['fmt', '-check'],
      ['state', 'list'],
    ]) {
      t.equal(tofuCommandKind(args), 'read', args.join(' '));
    }
    for (const args of [
      ['apply', 'plan.out'],
      ['destroy'],
      ['fmt'],
      ['state', 'rm', 'x'],
      ['import', 'a', 'b'],
      ['init', '-migrate-state'],
      ['init', '-force-copy=true'],
      [],
    ]) {
      t.equal(tofuCommandKind(args), 'mutation', args.join(' '));
    }
  },
);
