// The variables' validation blocks, each tried with good and bad values twice: through its
// JavaScript port (test/helpers/terraform-validation.ts, runs everywhere) and through the real
// condition evaluated by `tofu`/`terraform console` (where a binary exists), so the port and
// the HCL cannot drift apart unnoticed.
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { findTerraformBinary, needsBinary, validateWithCli } from '../helpers/terraform-cli.ts';
import {
  type HclModule,
  loadModule,
  MIGRATION_DIR,
  REDIS_SHARED_DIR,
  ROOT_MODULE_DIR,
  variableDefaults,
} from '../helpers/terraform-hcl.ts';
import {
  migrationValidations,
  redisSharedValidations,
  rootValidations,
  type ValidationPort,
} from '../helpers/terraform-validation.ts';

interface Case {
  variable: string;
  value: unknown;
  valid: boolean;
  /** Other variables set for this case (cross-variable conditions). */
  with?: Record<string, unknown>;
}

const good = (variable: string, value: unknown, extra?: Record<string, unknown>): Case => ({
  variable,
  value,
  valid: true,
  ...(extra ? { with: extra } : {}),
});
const bad = (variable: string, value: unknown, extra?: Record<string, unknown>): Case => ({
  variable,
  value,
  valid: false,
  ...(extra ? { with: extra } : {}),
});

const resources = (cpu: string, memory: string) => ({
  requests: { cpu, memory },
  limits: { cpu, memory },
});

const redisSharedCases: Case[] = [
  good('namespace', 'redis'),
  bad('namespace', 'Redis'),
  bad('namespace', 'a'.repeat(64)),
  bad('namespace', '-redis'),
  good('release_name', 'redis-shared'),
  bad('release_name', 'r'.repeat(54)),
  bad('release_name', 'redis_shared'),
  good('chart_repository', 'oci://registry-1.docker.io/bitnamicharts'),
  bad('chart_repository', 'http://charts.bitnami.com/bitnami'),
  good('chart_version', '23.1.1'),
  bad('chart_version', '~> 23.1'),
  good('redis_image_repository', 'registry.local/mirror/redis'),
  bad('redis_image_repository', 'bitnamilegacy/redis:8.2'),
  bad('redis_image_repository', 'Bitnami/Redis'),
  good('redis_image_tag', '8.2.1-debian-12-r0'),
  bad('redis_image_tag', 'latest tag'),
  good('exporter_image_repository', 'bitnamilegacy/redis-exporter'),
  bad('exporter_image_repository', ''),
  good('exporter_image_tag', '1.76.0-debian-12-r0'),
  bad('exporter_image_tag', '-leading-dash'),
  good('replica_namespaces', []),
  good('replica_namespaces', ['beersystem', 'other-app']),
  bad('replica_namespaces', ['beersystem', 'Bad_NS']),
  good('replica_count', 1),
  bad('replica_count', 0),
  bad('replica_count', 1.5),
  bad('replica_count', 4),
  good('storage_class', 'local-path'),
  bad('storage_class', ''),
  good('storage_size', '10Gi'),
  good('storage_size', '512Mi'),
  bad('storage_size', '10GB'),
  bad('storage_size', '0Gi'),
  bad('storage_size', '10'),
  good('master_resources', resources('2', '4Gi')),
  bad('master_resources', resources('1 core', '2Gi')),
  bad('master_resources', resources('500m', '2G')),
  good('replica_resources', resources('250m', '1Gi')),
  bad('replica_resources', resources('250m', '0Gi')),
  good('exporter_resources', resources('50m', '64Mi')),
  bad('exporter_resources', resources('0.05.1', '64Mi')),
  good('maxmemory', '768mb'),
  bad('maxmemory', '1GB'),
  bad('maxmemory', '0mb'),
  good('maxmemory_policy', 'volatile-lru'),
  bad('maxmemory_policy', 'lru'),
  good('maxclients', 10000),
  bad('maxclients', 50),
  bad('maxclients', 100.5),
  good('disabled_commands', ['FLUSHDB', 'FLUSHALL', 'SHUTDOWN', 'DEBUG']),
  good('disabled_commands', []),
  bad('disabled_commands', ['FLUSHALL', 'CONFIG']),
  bad('disabled_commands', ['flushall']),
  good('lb_ip', '192.168.4.203'),
  good('lb_ip', '10.1.2.3', { private_cidr: '10.0.0.0/8' }),
  bad('lb_ip', '192.168.5.10'),
  bad('lb_ip', '256.1.1.1'),
  bad('lb_ip', '192.168.4'),
  bad('lb_ip', '192.168.4.203', { private_cidr: '10.0.0.0/8' }),
  good('metallb_pool', 'eero-pool'),
  bad('metallb_pool', 'Eero Pool'),
  good('private_cidr', '192.168.4.0/24'),
  good('private_cidr', '172.16.0.0/12', { lb_ip: '172.16.0.10' }),
  good('private_cidr', '127.0.0.0/24', { lb_ip: '127.0.0.203' }),
  bad('private_cidr', '126.0.0.0/8', { lb_ip: '126.0.0.1' }),
  bad('private_cidr', '0.0.0.0/0', { lb_ip: '0.0.0.1' }),
  bad('private_cidr', '8.8.8.0/24', { lb_ip: '8.8.8.8' }),
  bad('private_cidr', '192.168.4.1/24'),
  bad('private_cidr', '192.168.4.0/33'),
  bad('private_cidr', '172.32.0.0/16', { lb_ip: '172.32.0.1' }),
  good('monitoring_namespace', 'monitoring'),
  bad('monitoring_namespace', 'Monitoring'),
  good('metrics_interval', '15s'),
  good('metrics_interval', '5s'),
  bad('metrics_interval', '30s'),
  bad('metrics_interval', '4s'),
  bad('metrics_interval', '15'),
  bad('metrics_interval', '1m'),
  good('prometheus_release_label', 'kps'),
  bad('prometheus_release_label', ''),
  good('runbook_base_url', 'http://git.local/runbooks/checklists/alerts.md'),
  bad('runbook_base_url', 'ftp://git.local/alerts.md'),
  bad('runbook_base_url', 'https://git.local/alerts.md#redisdown'),
  good('secret_name', 'shared-redis.credentials'),
  bad('secret_name', 'Redis_Credentials'),
  good('secret_key', 'redis.password_1'),
  bad('secret_key', 'redis password'),
];

const migrationCases: Case[] = [
  good('namespace', 'beersystem'),
  bad('namespace', 'beer system'),
  good('deployment_name', 'beersystem'),
  bad('deployment_name', 'BeerSystem'),
  good('container_name', 'beersystem'),
  bad('container_name', 'beer.system'),
  good('redis_host', 'redis-shared-master.redis.svc.cluster.local'),
  bad('redis_host', 'Redis-Shared-Master'),
  bad('redis_host', 'redis..svc'),
  good('redis_port', 6379),
  bad('redis_port', 0),
  bad('redis_port', 70000),
  good('secret_name', 'redis-credentials'),
  bad('secret_name', 'Redis_Credentials'),
  good('secret_key', 'redis.password_1'),
  bad('secret_key', 'redis password'),
  bad('secret_key', ''),
];

const rootCases: Case[] = [
  good('kubeconfig_path', '/etc/rancher/k3s/k3s.yaml'),
  bad('kubeconfig_path', ''),
  good('kube_context', 'chocolandiadc-mvp'),
  bad('kube_context', ''),
  bad('kube_context', '  '),
  good('beersystem_namespace', 'beersystem'),
  good('beersystem_namespace', 'beer', { replica_namespaces: ['beer'] }),
  bad('beersystem_namespace', 'beer'),
  bad('beersystem_namespace', 'beersystem', { replica_namespaces: [] }),
];

const show = (v: unknown) => JSON.stringify(v);
const bin = await findTerraformBinary();

async function checkModule(
  t: Test,
  label: string,
  mod: HclModule,
  ports: Record<string, ValidationPort>,
  cases: Case[],
) {
  const defaults = variableDefaults(mod);
  const validated = Object.entries(mod.variables)
    .filter(([, v]) => (v.validation ?? []).length > 0)
    .map(([name]) => name)
    .sort();

  t.test(`${label}: every validated variable has a JS port and good and bad cases`, async (t) => {
    t.same(Object.keys(ports).sort(), validated, 'one port per variable with validation');
    for (const name of validated) {
      t.ok(
        cases.some((c) => c.variable === name && c.valid),
        `${name}: a good value`,
      );
      t.ok(
        cases.some((c) => c.variable === name && !c.valid),
        `${name}: a bad value`,
      );
    }
  });

  t.test(`${label}: every message names its variable and shows a valid value`, async (t) => {
    for (const name of validated) {
      for (const { error_message: message } of mod.variables[name]?.validation ?? []) {
        t.ok(message.startsWith(`${name} `), `${name}: "${message}" starts with the name`);
        t.match(message, /e\.g\.|such as|like "|from \d+ to \d+|between "/, `${name}: an example`);
      }
    }
  });

  t.test(`${label}: the defaults pass every JS port`, async (t) => {
    for (const name of validated) {
      t.ok(ports[name]?.(defaults[name], defaults), `${name} = ${show(defaults[name])}`);
    }
  });

  t.test(
    `${label}: JS port of each validation condition accepts good and rejects bad values`,
    async (t) => {
      for (const c of cases) {
        const all = { ...defaults, ...c.with, [c.variable]: c.value };
        const port = ports[c.variable] as ValidationPort;
        t.equal(
          port(c.value, all),
          c.valid,
          `${c.variable} = ${show(c.value)}${c.with ? ` with ${show(c.with)}` : ''} is ${c.valid ? 'accepted' : 'rejected'}`,
        );
      }
    },
  );

  t.test(
    `${label}: the real validation blocks, run by tofu/terraform console, agree`,
    needsBinary(bin),
    async (t) => {
      const cli = bin!;
      t.comment(`validation blocks evaluated by ${cli.name} console`);
      const variablesTf = join(mod.dir, 'variables.tf');
      t.same(await validateWithCli(cli, variablesTf, {}), [], 'the defaults pass');
      for (const c of cases) {
        const messages = await validateWithCli(cli, variablesTf, {
          ...c.with,
          [c.variable]: c.value,
        });
        const own = (mod.variables[c.variable]?.validation ?? []).map((v) => v.error_message);
        const rejected = messages.filter((m) => own.includes(m));
        const name = `${c.variable} = ${show(c.value)}${c.with ? ` with ${show(c.with)}` : ''}`;
        if (c.valid) t.same(rejected, [], `${name} is accepted`);
        else t.ok(rejected.length > 0, `${name} is rejected: ${rejected.join(' | ')}`);
      }
    },
  );
}

const redisShared = await loadModule(REDIS_SHARED_DIR);
const migration = await loadModule(MIGRATION_DIR);
await checkModule(t, 'redis-shared', redisShared, redisSharedValidations, redisSharedCases);
await checkModule(t, 'beersystem-migration', migration, migrationValidations, migrationCases);
await checkModule(
  t,
  'chocolandiadc-mvp',
  await loadModule(ROOT_MODULE_DIR),
  rootValidations,
  rootCases,
);
