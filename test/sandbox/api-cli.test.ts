// `npm run sandbox -- up/down` as real processes: the daemon starts in the background, the files
// a shell and the runbooks need are written, and `down` leaves no process behind.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { TS_LOADER } from '../../lib/config.ts';
import type { UpResult } from '../../sandbox/cli.ts';
import { runbookNetworkSettings, sandboxNetwork } from '../../sandbox/lb-pool.ts';
import { isAlive as alive } from '../../sandbox/workloads/supervisor.ts';
import { run } from '../helpers/sandbox.ts';

const CLI = join(import.meta.dirname, '..', '..', 'sandbox', 'cli.ts');

/** Every live process whose environment marks it as started by this sandbox instance. */
function processesOf(runDir: string): number[] {
  const marker = `REDIS_SHARED_SANDBOX_INSTANCE=${runDir}`;
  return readdirSync('/proc')
    .map(Number)
    .filter((pid) => {
      if (!Number.isInteger(pid) || pid === process.pid) return false;
      try {
        return (
          alive(pid) && readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').includes(marker)
        );
      } catch {
        return false;
      }
    });
}

t.test(
  'up --fake --json starts a daemon that kubectl reaches; down stops it and leaves nothing',
  async (t) => {
    const runDir = await mkdtemp(join(tmpdir(), 'sandbox-cli-'));
    const env = { ...process.env, SANDBOX_RUN_DIR: runDir };
    const sandbox = (...args: string[]) =>
      run(process.execPath, ['--import', TS_LOADER, CLI, ...args], env);
    let pid = 0;
    t.teardown(async () => {
      if (pid && alive(pid)) process.kill(pid, 'SIGKILL');
      for (const left of processesOf(runDir)) process.kill(left, 'SIGKILL');
      await rm(runDir, { recursive: true, force: true });
    });

    const up = await sandbox('up', '--fake', '--json');
    t.equal(up.code, 0, up.stderr);
    const result = JSON.parse(up.stdout) as UpResult;
    pid = result.pid;
    t.ok(alive(pid), 'the daemon runs in the background after `up` returned');
    t.match(result.url, /^http:\/\/127\.0\.0\.1:\d+$/);
    t.equal(result.kubeconfig, join(runDir, 'kubeconfig'));
    const envFile = readFileSync(result.env, 'utf8');
    t.match(envFile, `export KUBECONFIG='${join(runDir, 'kubeconfig')}'`);
    t.match(envFile, `export KUBECACHEDIR='${join(runDir, 'kube-cache')}'`);
    t.match(envFile, /export PATH='.*\/sandbox\/bin':"\$PATH"/);
    const runbookEnv = readFileSync(result.envSandbox, 'utf8');
    t.same(result.network, sandboxNetwork(0), 'fake workloads listen on no address: slot 0');
    for (const line of [
      'KUBE_CONTEXT=sandbox',
      ...Object.entries(runbookNetworkSettings(result.network)).map(([k, v]) => `${k}=${v}`),
    ]) {
      t.match(runbookEnv, line);
    }
    t.match(envFile, `export TF_VAR_lb_ip='${result.network.redisLbIp}'`);
    t.match(runbookEnv, /TOFU_BIN=\/.*\/sandbox\/bin\/tofu/);
    const { loadConfig } = await import('../../lib/config.ts');
    t.equal(
      loadConfig({ envFile: result.envSandbox, env: {} }).ipTableFile,
      join(runDir, 'ip-assignments.md'),
      "07's address table goes into the sandbox's run directory, not the tracked docs/ip-assignments.md",
    );

    const kubectlEnv = {
      ...process.env,
      KUBECONFIG: result.kubeconfig,
      KUBECACHEDIR: join(runDir, 'kube-cache'),
    };
    const context = await run('kubectl', ['config', 'current-context'], kubectlEnv);
    t.equal(context.stdout.trim(), 'sandbox');
    const pods = await run(
      'kubectl',
      ['get', 'pods', '-n', 'beersystem', '-o', 'name'],
      kubectlEnv,
    );
    t.equal(pods.code, 0, pods.stderr);
    t.match(pods.stdout, /pod\/redis-/);

    const status = await sandbox('status');
    t.equal(status.code, 0);
    t.match(status.stdout, `sandbox is running at ${result.url} (pid ${pid}, fake workloads`);

    const noRecord = await sandbox('age', '24h');
    t.equal(noRecord.code, 1);
    t.match(noRecord.stderr, /no migration record yet/);
    await run(
      'kubectl',
      [
        'annotate',
        'deployment',
        'beersystem',
        '-n',
        'beersystem',
        'redis-shared.runbooks/migrated-at=2026-03-02T12:00:00Z',
      ],
      kubectlEnv,
    );
    const aged = await sandbox('age', '24h');
    t.equal(aged.code, 0, aged.stderr);
    const record = await run(
      'kubectl',
      [
        'get',
        'deployment',
        'beersystem',
        '-n',
        'beersystem',
        '-o',
        'jsonpath={.metadata.annotations.redis-shared\\.runbooks/migrated-at}',
      ],
      kubectlEnv,
    );
    t.equal(
      Date.parse(record.stdout),
      Date.parse('2026-03-01T12:00:00Z'),
      'the record moved 24 h back',
    );

    const fault = await sandbox('fault', 'api-error', '1', '500');
    t.equal(fault.code, 0);
    const failed = await run(
      'kubectl',
      ['annotate', 'deployment', 'beersystem', '-n', 'beersystem', 'x=y'],
      kubectlEnv,
    );
    t.match(failed.stderr, /InternalError/);
    const unknown = await sandbox('fault', 'no-such-fault');
    t.equal(unknown.code, 1);
    t.match(unknown.stderr, /unknown fault "no-such-fault"/);
    const journal = readFileSync(join(runDir, 'journal.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    t.same(
      journal.map((e) => [e.method, e.status]),
      [
        ['PATCH', 200],
        ['PATCH', 500],
      ],
      'the annotation and the failed request; `age` changes the store directly, not through the API',
    );

    const down = await sandbox('down');
    t.equal(down.code, 0, down.stderr);
    t.match(down.stdout, 'nothing left running');
    t.notOk(alive(pid), 'the daemon is gone');
    t.same(processesOf(runDir), [], 'no process of this sandbox is left');
    t.notOk(existsSync(join(runDir, 'state.json')));
    const after = await sandbox('status');
    t.equal(after.code, 1);
    t.match(after.stdout, 'sandbox is not running');
  },
);

t.test(
  'up with the real workloads runs real processes, and down stops every one of them',
  async (t) => {
    const runDir = await mkdtemp(join(tmpdir(), 'sandbox-cli-real-'));
    const env = { ...process.env, SANDBOX_RUN_DIR: runDir };
    const sandbox = (...args: string[]) =>
      run(process.execPath, ['--import', TS_LOADER, CLI, ...args], env);
    t.teardown(async () => {
      // Also after the test's own `down`: then it says "not running" and exits 0.
      const down = await sandbox('down');
      const left = processesOf(runDir);
      for (const pid of left) process.kill(pid, 'SIGKILL');
      await rm(runDir, { recursive: true, force: true });
      if (down.code !== 0 || left.length > 0) {
        throw new Error(
          `teardown: sandbox down exited ${down.code} (${down.stderr.trim()}), ${left.length} process(es) of the sandbox left and killed`,
        );
      }
    });
    // No way out when the binaries are missing: .ci/run installs them, and the next test proves
    // what `up` says without them.
    const up = await sandbox('up', '--json');
    t.equal(up.code, 0, up.stderr);
    if (up.code !== 0) return;
    const result = JSON.parse(up.stdout) as UpResult;
    const kubectlEnv = {
      ...process.env,
      KUBECONFIG: result.kubeconfig,
      KUBECACHEDIR: join(runDir, 'kube-cache'),
    };
    const ready = await run(
      'kubectl',
      ['wait', '--for=condition=Ready', 'pods', '--all', '-A', '--timeout=60s'],
      kubectlEnv,
    );
    t.equal(ready.code, 0, ready.stderr);
    const status = await sandbox('status');
    t.match(status.stdout, 'real workloads');
    const children = processesOf(runDir).filter((pid) => pid !== result.pid);
    t.ok(children.length >= 3, `the pods run as processes (${children.length} found)`);
    const down = await sandbox('down');
    t.equal(down.code, 0, down.stderr);
    t.notOk(alive(result.pid), 'the daemon is gone');
    t.same(
      children.filter((pid) => alive(pid)),
      [],
      'every process the pods ran is gone',
    );
    t.same(processesOf(runDir), [], 'nothing of this sandbox is left');
  },
);

t.test(
  'up without the workload binaries says what to install and exits 2, leaving nothing',
  async (t) => {
    const runDir = await mkdtemp(join(tmpdir(), 'sandbox-cli-missing-'));
    t.teardown(async () => {
      for (const left of processesOf(runDir)) process.kill(left, 'SIGKILL');
      await rm(runDir, { recursive: true, force: true });
    });
    // An empty PATH hides redis-server, prometheus and the rest from the workload half.
    const env = { ...process.env, SANDBOX_RUN_DIR: runDir, PATH: join(runDir, 'empty') };
    const up = await run(process.execPath, ['--import', TS_LOADER, CLI, 'up'], env);
    t.equal(up.code, 2);
    t.match(up.stderr, /not on the PATH\. Install with: sudo apt-get install/);
    t.notOk(existsSync(join(runDir, 'state.json')), 'no daemon was recorded');
    t.same(processesOf(runDir), [], 'the daemon is gone');
  },
);

t.test('fault --help lists every fault, without a sandbox running', async (t) => {
  const runDir = await mkdtemp(join(tmpdir(), 'sandbox-cli-'));
  t.teardown(() => rm(runDir, { recursive: true, force: true }));
  const help = await run(process.execPath, ['--import', TS_LOADER, CLI, 'fault', '--help'], {
    ...process.env,
    SANDBOX_RUN_DIR: runDir,
  });
  t.equal(help.code, 0, help.stderr);
  for (const fault of ['api-error <n> <code>', 'kill <ns>/<pod>', 'partition <ns>/<pod>', 'heal'])
    t.match(help.stdout, `\n  ${fault} `, `lists ${fault}`);
});
