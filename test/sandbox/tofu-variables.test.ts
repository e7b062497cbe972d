// The stand-in ranks variable values as OpenTofu documents it (-var/-var-file > *.auto.tfvars(.json)
// in lexical order > terraform.tfvars.json > terraform.tfvars > TF_VAR_* > defaults), checked
// against real Terraform on this machine: a configuration of variables and outputs only needs
// no provider, so `terraform apply` runs offline.
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import { loadRoot } from '../../sandbox/tofu/config.ts';
import { findOnPath } from '../../sandbox/workloads/binaries.ts';

const run = promisify(execFile);
t.setTimeout(120_000);

const NAMES = ['a', 'b', 'c', 'd', 'e', 'f', 'g'];

t.test('variable precedence: the stand-in agrees with real Terraform', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tofu-vars-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(
    join(dir, 'main.tf'),
    NAMES.map(
      (n) =>
        `variable "${n}" {\n  type    = string\n  default = "default"\n}\n\noutput "${n}" {\n  value = var.${n}\n}\n`,
    ).join('\n'),
  );
  writeFileSync(
    join(dir, 'terraform.tfvars'),
    'b = "tfvars"\nc = "tfvars"\nd = "tfvars"\ne = "tfvars"\nf = "tfvars"\n',
  );
  writeFileSync(
    join(dir, 'terraform.tfvars.json'),
    JSON.stringify({ c: 'tfvars.json', d: 'tfvars.json', e: 'tfvars.json', f: 'tfvars.json' }),
  );
  writeFileSync(join(dir, 'b.auto.tfvars'), 'e = "b.auto"\nf = "b.auto"\n');
  writeFileSync(
    join(dir, 'a.auto.tfvars.json'),
    JSON.stringify({ d: 'a.auto.json', e: 'a.auto.json' }),
  );
  writeFileSync(join(dir, 'extra.tfvars'), 'f = "var-file"\ng = "var-file"\n');
  const env = Object.fromEntries(NAMES.slice(0, 6).map((n) => [`TF_VAR_${n}`, 'env']));
  const flags = ['-var', 'f=cli', '-var-file=extra.tfvars'];
  // -var and -var-file in the order given: the file comes last and wins for f.
  const expected = {
    a: 'env',
    b: 'tfvars',
    c: 'tfvars.json',
    d: 'a.auto.json',
    e: 'b.auto',
    f: 'var-file',
    g: 'var-file',
  };

  const saved = { ...process.env };
  Object.assign(process.env, env);
  let standIn: Record<string, unknown>;
  try {
    standIn = (
      await loadRoot(dir, [
        { kind: 'var', text: 'f=cli' },
        { kind: 'var-file', path: 'extra.tfvars' },
      ])
    ).vars;
  } finally {
    for (const key of Object.keys(env)) delete process.env[key];
    Object.assign(process.env, saved);
  }
  t.same(standIn, expected, 'the stand-in');

  const terraform = findOnPath('terraform');
  if (!terraform) {
    t.fail('terraform is not installed: the comparison with the real ranking cannot run');
    return;
  }
  const tfEnv = {
    ...process.env,
    ...env,
    TF_CLI_CONFIG_FILE: '/dev/null',
    TF_DATA_DIR: join(dir, '.terraform'),
    TF_IN_AUTOMATION: '1',
  };
  await run(terraform, ['init', '-input=false', '-no-color'], { cwd: dir, env: tfEnv });
  await run(terraform, ['apply', '-auto-approve', '-input=false', '-no-color', ...flags], {
    cwd: dir,
    env: tfEnv,
  });
  const outputs = JSON.parse(
    (await run(terraform, ['output', '-json'], { cwd: dir, env: tfEnv })).stdout,
  ) as Record<string, { value: string }>;
  t.same(
    Object.fromEntries(Object.entries(outputs).map(([k, v]) => [k, v.value])),
    expected,
    'real Terraform',
  );
});
