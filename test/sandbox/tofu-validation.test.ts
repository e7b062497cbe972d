// The tofu stand-in evaluates the modules' own validation conditions and preconditions
// (sandbox/tofu/hcl-expr.ts), so a rehearsal refuses what `tofu plan` refuses, with the same
// message. Each case is held against the real binary's `console` where one is installed.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from '@cdktf/hcl2json';
import t from 'tap';
import { validationFailures } from '../../sandbox/tofu/checks.ts';
import { loadModule as loadStandInModule } from '../../sandbox/tofu/config.ts';
import { evalExpression, evalHcl } from '../../sandbox/tofu/hcl-expr.ts';
import { findTerraformBinary, runCli, validateWithCli } from '../helpers/terraform-cli.ts';
import {
  loadModule,
  MIGRATION_DIR,
  REDIS_SHARED_DIR,
  ROOT_MODULE_DIR,
  variableDefaults,
} from '../helpers/terraform-hcl.ts';

const bin = await findTerraformBinary();

type Case = [variable: string, value: unknown, valid: boolean];

const cases: Record<string, Case[]> = {
  [REDIS_SHARED_DIR]: [
    ['private_cidr', '192.168.4.0/24', true],
    ['private_cidr', '127.0.0.0/24', true],
    ['private_cidr', '10.1.0.0/16', true],
    ['private_cidr', '8.8.8.0/24', false],
    ['private_cidr', '0.0.0.0/0', false],
    ['private_cidr', '172.32.0.0/16', false],
    ['private_cidr', '192.168.4.1/24', false],
    ['private_cidr', 'not-a-cidr', false],
    ['lb_ip', '192.168.4.250', true],
    ['lb_ip', '192.168.5.203', false],
    ['lb_ip', '192.168.4.256', false],
    ['namespace', 'Redis', false],
    ['release_name', 'r'.repeat(54), false],
    ['chart_repository', 'oci://registry-1.docker.io/bitnamicharts', true],
    ['chart_repository', 'http://charts.bitnami.com/bitnami', false],
    ['chart_version', '~> 23.1', false],
    ['replica_count', 1.5, false],
    ['replica_count', 4, false],
    ['replica_namespaces', ['beersystem', 'Other'], false],
    ['storage_size', '10GB', false],
    [
      'master_resources',
      { requests: { cpu: '500m', memory: '1G' }, limits: { cpu: '1', memory: '2Gi' } },
      false,
    ],
    ['maxmemory', '1gb', true],
    ['maxmemory_policy', 'lru', false],
    ['maxclients', 99, false],
    ['disabled_commands', ['FLUSHALL', 'CONFIG'], false],
    ['metrics_interval', '30s', false],
    ['metrics_interval', '5s', true],
    ['prometheus_release_label', '', false],
    ['runbook_base_url', 'https://example.org/alerts.md#x', false],
  ],
  [MIGRATION_DIR]: [
    ['redis_port', 0, false],
    ['redis_port', 6379.5, false],
    ['redis_host', 'Redis_Shared', false],
    ['secret_key', 'redis password', false],
    ['deployment_name', 'beersystem.v2', true],
  ],
  [ROOT_MODULE_DIR]: [
    ['kube_context', ' ', false],
    ['kubeconfig_path', '', false],
    ['beersystem_namespace', 'shop', false],
  ],
};

for (const [dir, list] of Object.entries(cases)) {
  const label = dir.split('/').pop();
  t.test(`${label}: the stand-in accepts and refuses as the validation blocks do`, async (t) => {
    const source = await loadStandInModule(dir);
    const mod = await loadModule(dir);
    const defaults = variableDefaults(mod);
    t.same(validationFailures(source.blocks, defaults), [], 'the defaults pass');
    for (const [variable, value, valid] of list) {
      const failures = validationFailures(source.blocks, { ...defaults, [variable]: value });
      const own = failures.filter((f) => f.variable === variable).map((f) => f.message);
      const name = `${variable} = ${JSON.stringify(value)}`;
      if (valid) t.same(own, [], `${name} is accepted`);
      else t.ok(own.length > 0, `${name} is refused: ${own.join(' | ')}`);
      for (const message of own) {
        const declared = (mod.variables[variable]?.validation ?? []).map((v) => v.error_message);
        t.ok(declared.includes(message), `${name}: the message is the block's own error_message`);
      }
      if (bin) {
        const real = await validateWithCli(bin, join(dir, 'variables.tf'), { [variable]: value });
        t.same(
          [...failures.map((f) => f.message)].sort(),
          [...real].sort(),
          `${name}: the same messages as ${bin.name} console`,
        );
      }
    }
  });
}

t.test(
  'the migration precondition: a literal REDIS_PASSWORD is found, a reference is not',
  async (t) => {
    const mainTf = join(MIGRATION_DIR, 'main.tf');
    const text = await readFile(mainTf, 'utf8');
    const parsed = await parse(mainTf, text);
    const local = parsed.locals[0].password_is_literal as string;
    const condition =
      parsed.resource.kubernetes_env.beersystem_redis[0].lifecycle[0].precondition[0];
    t.equal(condition.condition, `\${!local.password_is_literal}`);
    const container = (env: unknown) => ({
      spec: {
        template: { spec: { containers: [{ name: 'sidecar' }, { name: 'beersystem', env }] } },
      },
    });
    const objects: Array<[string, unknown, boolean]> = [
      ['a literal value', container([{ name: 'REDIS_PASSWORD', value: 'hunter2' }]), true],
      [
        'a secretKeyRef (the provider gives value as null)',
        container([
          { name: 'REDIS_HOST', value: 'redis' },
          {
            name: 'REDIS_PASSWORD',
            value: null,
            valueFrom: { secretKeyRef: { name: 's', key: 'k' } },
          },
        ]),
        false,
      ],
      [
        'an empty value beside a reference',
        container([{ name: 'REDIS_PASSWORD', value: '' }]),
        false,
      ],
      ['no env at all', container(null), false],
      [
        'a literal in another container',
        {
          spec: {
            template: {
              spec: {
                containers: [{ name: 'other', env: [{ name: 'REDIS_PASSWORD', value: 'x' }] }],
              },
            },
          },
        },
        false,
      ],
      ['no Deployment (object null)', null, false],
    ];
    const expr = /^\$\{([\s\S]*)\}$/.exec(local)?.[1] as string;
    for (const [label, object, literal] of objects) {
      const scope = {
        var: { container_name: 'beersystem' },
        data: { kubernetes_resource: { deployment: { object } } },
      };
      t.equal(evalHcl(local, scope), literal, `stand-in: ${label}`);
      if (!bin) continue;
      const dir = await mkdtemp(join(tmpdir(), 'tf-precondition-'));
      try {
        // The same expression with the data source's object given as a variable.
        await writeFile(
          join(dir, 'main.tf'),
          'variable "object" {\n  type = any\n}\nvariable "container_name" {\n  default = "beersystem"\n}\n',
        );
        await writeFile(join(dir, 'case.auto.tfvars.json'), JSON.stringify({ object }));
        const result = await runCli(bin, ['console', '-no-color'], {
          cwd: dir,
          // console reads one expression per line.
          input: `${expr.replaceAll('data.kubernetes_resource.deployment.object', 'var.object').replace(/\s*\n\s*/g, ' ')}\n`,
        });
        t.equal(result.stdout.trim(), String(literal), `${bin.name} console: ${label}`);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    }
  },
);

t.test(
  'the stand-in evaluator agrees with terraform on the functions the modules use',
  async (t) => {
    const expressions = [
      'cidrhost("192.168.4.203/24", 0)',
      'cidrhost("127.0.0.0/8", 0)',
      'split("/", "10.0.0.0/8")[1]',
      'tonumber("24") >= 8',
      'can(regex("^[a-z]+$", "abc"))',
      'can(regex("^[a-z]+$", "ABC"))',
      'try(cidrhost("x", 0), "bad")',
      'anytrue([for n in [1, 2, 3] : n > 2])',
      'alltrue([for s in ["a", "b"] : length(s) == 1])',
      'trimsuffix("15s", "s")',
      'floor(6379.5) == 6379.5',
      'contains(["FLUSHDB"], "CONFIG")',
      'length(trimspace("  "))',
      `"\${split("/", "127.0.0.0/24")[0]}/\${split("/", "127.0.0.0/8")[1]}"`,
      'flatten([[1], [2, [3]]])',
      '{for k, v in {a = 1} : v => k}',
    ];
    for (const e of expressions) {
      const mine = evalExpression(e, {});
      if (!bin) {
        t.not(mine, undefined, `${e} evaluates`);
        continue;
      }
      const dir = await mkdtemp(join(tmpdir(), 'tf-console-'));
      try {
        const result = await runCli(bin, ['console', '-no-color'], {
          cwd: dir,
          input: `jsonencode(${e})\n`,
        });
        t.same(mine, JSON.parse(JSON.parse(result.stdout.trim())), `${e}`);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    }
  },
);
