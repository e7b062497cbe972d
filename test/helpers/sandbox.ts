// The sandbox in-process for tests: a temp run dir, the fake runtime, a fresh kubectl cache per
// fixture, and a stop that always runs through t.teardown.
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { JournalEntry } from '../../sandbox/api/journal.ts';
import { type Sandbox, type SandboxOptions, startSandbox } from '../../sandbox/server.ts';
import { jsonLines } from './json-lines.ts';

interface Teardown {
  teardown(fn: () => unknown): void;
}

export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface SandboxFixture {
  sandbox: Sandbox;
  dir: string;
  env: NodeJS.ProcessEnv;
  /** Runs the real kubectl against the sandbox; never throws, the exit code is in the result. */
  kubectl(args: string[], input?: string): Promise<CommandResult>;
  /** Like kubectl(), but fails with kubectl's stderr when it exits non-zero. */
  kubectlOk(args: string[], input?: string): Promise<string>;
  journal(): Promise<JournalEntry[]>;
}

export function run(
  command: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  input?: string,
): Promise<CommandResult> {
  return new Promise((resolve) => {
    const child = execFile(
      command,
      args,
      { env, timeout: 60_000, maxBuffer: 16 * 1024 * 1024 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
        resolve({ code, stdout: String(stdout), stderr: String(stderr) });
      },
    );
    if (input !== undefined) child.stdin?.end(input);
    else child.stdin?.end();
  });
}

export async function startTestSandbox(
  t: Teardown,
  options: Partial<SandboxOptions> = {},
): Promise<SandboxFixture> {
  const dir = await mkdtemp(join(tmpdir(), 'sandbox-api-'));
  let sandbox: Sandbox | undefined;
  t.teardown(async () => {
    await sandbox?.stop();
    await rm(dir, { recursive: true, force: true });
  });
  sandbox = await startSandbox({ runDir: dir, podReadyDelayMs: 20, ...options });
  await sandbox.settled(20_000);
  const env = {
    ...process.env,
    KUBECONFIG: sandbox.kubeconfigPath,
    KUBECACHEDIR: join(dir, 'kube-cache'),
  };
  const kubectl = (args: string[], input?: string) => run('kubectl', args, env, input);
  return {
    sandbox,
    dir,
    env,
    kubectl,
    async kubectlOk(args, input) {
      const result = await kubectl(args, input);
      if (result.code !== 0) {
        throw new Error(`kubectl ${args.join(' ')} exited ${result.code}: ${result.stderr}`);
      }
      return result.stdout;
    },
    async journal() {
      const text = await readFile(sandbox!.journalPath, 'utf8').catch(() => '');
      return jsonLines<JournalEntry>(text);
    },
  };
}
