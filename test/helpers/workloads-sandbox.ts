// A whole sandbox (API half + real workloads) in a temp dir for end-to-end tests, with kubectl
// and the tofu stand-in pointed at it.
import './exit-promptly.ts';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { type SandboxNetwork, tofuNetworkVars } from '../../sandbox/lb-pool.ts';
import type { KindRef, KubeObject } from '../../sandbox/runtime.ts';
import { type Sandbox, startSandbox } from '../../sandbox/server.ts';
import { createWorkloads, type Workloads } from '../../sandbox/workloads/index.ts';

const run = promisify(execFile);
export const REPO = fileURLToPath(new URL('../../', import.meta.url));
export const TOFU = join(REPO, 'sandbox', 'bin', 'tofu');
export const ENVIRONMENT_DIR = join(REPO, 'terraform', 'environments', 'chocolandiadc-mvp');

export interface SandboxFixture {
  sandbox: Sandbox;
  workloads: Workloads;
  runDir: string;
  env: NodeJS.ProcessEnv;
  /** `timeoutMs` kills a kubectl that hangs, so the test fails on that line instead of the file's timeout. */
  kubectl(args: string[], timeoutMs?: number): Promise<string>;
  /**
   * An object as `kubectl get -o json` prints it, read from the sandbox's store in this process:
   * for conditions polled every 100 ms, which would otherwise start a kubectl each look.
   */
  object(kind: KindRef, namespace: string, name: string): KubeObject;
  tofu(args: string[]): Promise<{ stdout: string; stderr: string }>;
  /** POSTs an admin call (`fault`, `age`) as `npm run sandbox -- …` does. */
  admin(path: string, body: object): Promise<{ status: number; message: string }>;
  close(): Promise<void>;
}

export async function startWholeSandbox(): Promise<SandboxFixture> {
  const runDir = mkdtempSync(join(tmpdir(), 'sandbox-e2e-'));
  let workloads: Workloads;
  let sandbox: Sandbox;
  try {
    workloads = await createWorkloads({ runDir });
    sandbox = await startSandbox({
      runDir,
      runtime: workloads.runtime,
      plugins: workloads.plugins,
      network: workloads.network,
    });
  } catch (err) {
    // The caller's teardown only knows a fixture it got: a failed start cleans up here.
    rmSync(runDir, { recursive: true, force: true });
    throw err;
  }
  const env = {
    ...process.env,
    KUBECONFIG: sandbox.kubeconfigPath,
    KUBECACHEDIR: join(runDir, 'kubecache'),
    SANDBOX_RUN_DIR: runDir,
  };
  return {
    sandbox,
    workloads,
    runDir,
    env,
    async kubectl(args, timeoutMs = 0) {
      const { stdout } = await run('kubectl', args, {
        env,
        maxBuffer: 16 << 20,
        timeout: timeoutMs,
      });
      return stdout;
    },
    object(kind, namespace, name) {
      const found = sandbox.cluster.get(kind, namespace, name);
      if (!found) throw new Error(`${kind.kind} ${namespace}/${name} not found`);
      return JSON.parse(JSON.stringify(found));
    },
    tofu(args) {
      return run(TOFU, args, { env, cwd: ENVIRONMENT_DIR, maxBuffer: 16 << 20 });
    },
    async admin(path, body) {
      const res = await fetch(`${sandbox.url}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      const json = (await res.json()) as { message: string };
      return { status: res.status, message: json.message };
    },
    async close() {
      await sandbox.stop();
      rmSync(runDir, { recursive: true, force: true });
    },
  };
}

/** The variables that point the modules at the sandbox and its loopback LoadBalancer pool. */
export function sandboxVars(network: SandboxNetwork): string[] {
  return [
    ...Object.entries(tofuNetworkVars(network)).flatMap(([k, v]) => ['-var', `${k}=${v}`]),
    '-var',
    'kube_context=sandbox',
  ];
}
