// The real `tofu` or `terraform` binary where one is installed: fmt, and `console` to evaluate
// templatefile() and variable validation exactly as an apply would. None of this needs
// providers or `init`, so it works offline. Callers report which binary ran; a test that needs
// one is skipped, with the reason, where there is none (.ci/run makes sure CI always has one).
import { execFile } from 'node:child_process';
import { access, constants, copyFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';

export interface TerraformBinary {
  name: 'tofu' | 'terraform';
  path: string;
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** OpenTofu first (the project's tool), then Terraform; null when neither is on PATH. */
export async function findTerraformBinary(): Promise<TerraformBinary | null> {
  for (const name of ['tofu', 'terraform'] as const) {
    for (const dir of (process.env.PATH ?? '').split(delimiter)) {
      if (!dir) continue;
      const path = join(dir, name);
      try {
        await access(path, constants.X_OK);
        return { name, path };
      } catch {
        // not in this PATH entry
      }
    }
  }
  return null;
}

/** tap's options for a test that needs the binary: skipped, with the reason, when there is none. */
export function needsBinary(bin: TerraformBinary | null): { skip?: string } {
  return bin ? {} : { skip: 'neither tofu nor terraform is on PATH' };
}

/**
 * The caller's environment minus what would change the result: TF_VAR_* (a shell that sourced
 * the sandbox's env sets lb_ip and private_cidr) and TF_CLI_ARGS*; no ~/.terraformrc, plugin
 * cache or telemetry lookups either.
 */
function isolatedEnv(): NodeJS.ProcessEnv {
  const env = Object.fromEntries(
    Object.entries(process.env).filter(([name]) => !/^TF_(VAR_|CLI_ARGS)/.test(name)),
  );
  return { ...env, TF_CLI_CONFIG_FILE: '/dev/null', NO_COLOR: '1', CHECKPOINT_DISABLE: '1' };
}

export function runCli(
  bin: TerraformBinary,
  args: string[],
  opts: { cwd?: string; input?: string } = {},
): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      bin.path,
      args,
      {
        cwd: opts.cwd,
        env: isolatedEnv(),
        timeout: 60_000,
      },
      (err, stdout, stderr) => {
        if (err && typeof err.code !== 'number') return reject(err);
        resolve({ code: err ? Number(err.code) : 0, stdout, stderr });
      },
    );
    child.stdin?.end(opts.input ?? '');
  });
}

/** HCL literal of a JSON value, with template sequences escaped so nothing is interpolated. */
export function hclLiteral(value: unknown): string {
  return JSON.stringify(value).replaceAll(`\${`, `$\${`).replaceAll('%{', '%%{');
}

/** Renders a template file with the real templatefile() of `terraform console`. */
export async function renderWithCli(
  bin: TerraformBinary,
  templatePath: string,
  vars: Record<string, unknown>,
): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'tf-console-'));
  try {
    // jsonencode keeps the rendered text on one line, exact to the byte after JSON.parse.
    const expr = `jsonencode(templatefile(${hclLiteral(templatePath)}, ${hclLiteral(vars)}))`;
    const result = await runCli(bin, ['console', '-no-color'], { cwd: dir, input: `${expr}\n` });
    if (result.code !== 0 || /Error:/.test(result.stderr)) {
      throw new Error(`${bin.name} console failed: ${result.stderr}`);
    }
    // console prints the HCL string literal holding the JSON; HCL string escapes are JSON's
    // plus the doubled template sequences, so undo those and parse twice.
    const hclString = result.stdout.trim().replaceAll(`$\${`, `\${`).replaceAll('%%{', '%{');
    return JSON.parse(JSON.parse(hclString) as string) as string;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * Runs the real validation blocks of `variablesTf` against `values` (the rest keep their
 * defaults): copies the file alone into a temp dir and asks `console` for one variable. Returns
 * the validation error messages printed, empty when every value is accepted.
 */
export async function validateWithCli(
  bin: TerraformBinary,
  variablesTf: string,
  values: Record<string, unknown>,
): Promise<string[]> {
  const dir = await mkdtemp(join(tmpdir(), 'tf-validate-'));
  try {
    await copyFile(variablesTf, join(dir, 'variables.tf'));
    await writeFile(join(dir, 'case.auto.tfvars.json'), JSON.stringify(values));
    // console checks every variable's validation before it evaluates anything, so the
    // expression only has to be valid in any module.
    const result = await runCli(bin, ['console', '-no-color'], { cwd: dir, input: '1\n' });
    const messages: string[] = [];
    // Each failure is printed as "Error: Invalid value for variable", a source excerpt, then
    // the error_message, then "This was checked by the validation rule at …".
    for (const chunk of result.stderr.split(/Error: /).slice(1)) {
      if (!chunk.startsWith('Invalid value for variable')) {
        throw new Error(`${bin.name} console: unexpected error: ${chunk}`);
      }
      const lines = chunk.split('\n').map((l) => l.trim());
      const end = lines.findIndex((l) => l.startsWith('This was checked by'));
      const body = lines.slice(0, end < 0 ? undefined : end);
      const lastExcerpt = body.findLastIndex((l) => l.startsWith('│') || /^\d+:/.test(l));
      messages.push(
        body
          .slice(lastExcerpt + 1)
          .filter(Boolean)
          .join(' '),
      );
    }
    return messages;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
