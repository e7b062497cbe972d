#!/bin/sh
//bin/true; exec node --import "$(dirname "$(dirname "$(realpath "$0")")")/lib/ts-loader/register.mjs" "$0" "$@"
// Phase 1 (tasks.md T001–T008) and the preflight checks: is this cluster ready for redis-shared,
// and is the OpenTofu code in place? Reads only, plus `tofu init`. Every failed check is
// collected and listed at once by P13, each with what to fix; nothing is changed.

import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tofuFmtCheck, tofuInit, tofuValidate } from '../lib/cluster/tofu.ts';
import { deferredCheck, verdictStep } from '../lib/engine/check-step.ts';
import type { Judgement } from '../lib/engine/judgement.ts';
import { defineRunbook, runMain, type StepContext } from '../lib/engine/runbook.ts';
import {
  beersystemToday,
  judgeAddressFree,
  judgeAddressInCidr,
  judgeCrds,
  judgeMetallbVersion,
  judgeNamespaceOwnership,
  judgeNodes,
  judgePoolAdmits,
  judgePoolAnnounced,
  judgePoolContains,
  judgePrometheusSelects,
  judgeServiceLbOff,
  MODULE_DEFAULTS,
  moduleLabels,
  monitoringLabels,
  type ObjectLike,
  REQUIRED_CRDS,
} from '../lib/phases/preflight.ts';

const moduleDir = (ctx: StepContext) => resolve(ctx.cfg.tofu.dir, '../../modules/redis-shared');

/** T001–T008 are files in this repository: the step checks the one its task created. */
function fileTask(id: string, title: string, path: (ctx: StepContext) => string) {
  return deferredCheck({
    id,
    title,
    check: (ctx) => {
      const p = path(ctx);
      return existsSync(p)
        ? { ok: true, detail: `${p} present` }
        : { ok: false, detail: `${p} missing`, fix: 'check out the full repository (git status)' };
    },
  });
}

async function toolVersion(ctx: StepContext, argv: string[]): Promise<string | undefined> {
  try {
    const r = await ctx.run(argv, { kind: 'read', retries: 0 });
    return r.exitCode === 0 ? r.stdout.split('\n')[0]?.trim() : undefined;
  } catch {
    return undefined;
  }
}

async function commandJudgement(
  what: string,
  fix: string,
  command: () => Promise<unknown>,
): Promise<Judgement> {
  try {
    await command();
    return { ok: true, detail: `${what} passed` };
  } catch (err) {
    return { ok: false, detail: `${what} failed: ${(err as Error).message}`, fix };
  }
}

export const runbook = defineRunbook({
  id: '01-setup',
  title: 'Setup: preflight checks and the OpenTofu code (phase 1, T001–T008)',
  description:
    'Checks the tools, the cluster (nodes, storage, CRDs, Prometheus selectors, MetalLB pool and address, namespace ownership, beersystem) and the OpenTofu code (T001–T008 present, init, validate, fmt). Reads only, plus `tofu init`; every failed check is listed at once by P13 with what to fix. Run it before 02-deploy.',
  next: (ctx) =>
    `02-deploy deploys redis-shared: ${ctx.commandLine({ runbook: '02-deploy' })} (--dry-run first shows every change)`,
  steps: [
    deferredCheck({
      id: 'P01',
      title: 'Tools on PATH with their versions (kubectl, tofu; redis-cli optional)',
      check: async (ctx) => {
        const kubectl = await toolVersion(ctx, ['kubectl', 'version', '--client']);
        const tofu = await toolVersion(ctx, [ctx.cfg.tofu.bin, 'version']);
        const redisCli = await toolVersion(ctx, ['redis-cli', '--version']);
        await ctx.note('setup.tools', { kubectl, tofu, redisCli: redisCli ?? null });
        const missing = [
          ...(kubectl ? [] : ['kubectl']),
          ...(tofu ? [] : [`tofu (TOFU_BIN=${ctx.cfg.tofu.bin})`]),
        ];
        const found = `kubectl: ${kubectl ?? 'missing'}; tofu: ${tofu ?? 'missing'}; redis-cli: ${redisCli ?? 'not installed (optional)'}`;
        return missing.length === 0
          ? { ok: true, detail: found }
          : {
              ok: false,
              detail: found,
              fix: `install ${missing.join(' and ')} (OpenTofu: https://opentofu.org/docs/intro/install/), or set TOFU_BIN`,
            };
      },
    }),
    deferredCheck({
      id: 'P02',
      title: 'The kube context in use is KUBE_CONTEXT',
      check: async (ctx) => {
        // The engine already refused any other context; this records which cluster answered.
        const version = await ctx.kubectl`version -o json`;
        const server = JSON.parse(version.stdout).serverVersion?.gitVersion ?? 'unknown';
        return { ok: true, detail: `context ${ctx.cfg.kubeContext}, API server ${server}` };
      },
    }),
    deferredCheck({
      id: 'P03',
      title: 'Nodes Ready (count, versions)',
      check: async (ctx) => judgeNodes(await ctx.kube.list<ObjectLike>('v1', 'Node')),
    }),
    deferredCheck({
      id: 'P04',
      title: `StorageClass ${MODULE_DEFAULTS.storageClass} present`,
      check: async (ctx) => {
        const sc = await ctx.kube.get<ObjectLike & { provisioner?: string }>(
          'storage.k8s.io/v1',
          'StorageClass',
          MODULE_DEFAULTS.storageClass,
        );
        return sc
          ? {
              ok: true,
              detail: `StorageClass ${MODULE_DEFAULTS.storageClass} (${sc.provisioner ?? '?'})`,
            }
          : {
              ok: false,
              detail: `StorageClass ${MODULE_DEFAULTS.storageClass} not found`,
              fix: 'install rancher local-path-provisioner, or set the module variable storage_class',
            };
      },
    }),
    deferredCheck({
      id: 'P05',
      title: 'CRDs present: ServiceMonitor, PrometheusRule, MetalLB IPAddressPool',
      check: async (ctx) => {
        const present = new Set<string>();
        for (const { name } of REQUIRED_CRDS) {
          const crd = await ctx.kube.get(
            'apiextensions.k8s.io/v1',
            'CustomResourceDefinition',
            name,
          );
          if (crd) present.add(name);
        }
        return judgeCrds(present);
      },
    }),
    deferredCheck({
      id: 'P06',
      title: "The Prometheus stack's ServiceMonitor and rule selectors match the module's labels",
      check: async (ctx) => {
        const crd = await ctx.kube.get(
          'apiextensions.k8s.io/v1',
          'CustomResourceDefinition',
          'prometheuses.monitoring.coreos.com',
        );
        const prometheuses = crd
          ? await ctx.kube.list<ObjectLike>('monitoring.coreos.com/v1', 'Prometheus')
          : [];
        const ns = ctx.cfg.monitoring.namespace;
        const nsObject = await ctx.kube.get<ObjectLike>('v1', 'Namespace', ns);
        const namespaceLabels = {
          'kubernetes.io/metadata.name': ns,
          ...(nsObject?.metadata?.labels ?? {}),
        };
        const labels = monitoringLabels(ctx.cfg.redis.release);
        const common = { namespace: ns, namespaceLabels };
        const sm = judgePrometheusSelects(prometheuses, {
          ...common,
          kind: 'ServiceMonitor',
          selectorField: 'serviceMonitorSelector',
          namespaceSelectorField: 'serviceMonitorNamespaceSelector',
          labels: labels.serviceMonitor,
        });
        const rule = judgePrometheusSelects(prometheuses, {
          ...common,
          kind: 'PrometheusRule',
          selectorField: 'ruleSelector',
          namespaceSelectorField: 'ruleNamespaceSelector',
          labels: labels.prometheusRule,
        });
        if (sm.ok && rule.ok) return { ok: true, detail: `${sm.detail}; ${rule.detail}` };
        const failed = [sm, rule].filter((j) => !j.ok);
        return {
          ok: false,
          detail: failed.map((j) => j.detail).join('; '),
          fix: failed[0]?.fix ?? '',
        };
      },
    }),
    deferredCheck({
      id: 'P07',
      title:
        'MetalLB gives REDIS_LB_IP: controller >= v0.14.9, K3s ServiceLB off, pool METALLB_POOL contains the address, is announced and admits REDIS_NAMESPACE; no other Service holds it; inside PRIVATE_CIDR',
      check: async (ctx) => {
        const { lbIp, metallbPool, privateCidr, namespace, release } = ctx.cfg.redis;
        const pools = await ctx.kube.list<ObjectLike>('metallb.io/v1beta1', 'IPAddressPool');
        const pool = pools.find((p) => p.metadata?.name === metallbPool);
        const metallbNamespace = pool?.metadata?.namespace ?? 'metallb-system';
        const services = await ctx.kube.list<ObjectLike>('v1', 'Service');
        // An advertisement kind whose CRD is absent announces nothing; any other error stops.
        const listIfServed = async (kind: string) => {
          try {
            const items = await ctx.kube.list<ObjectLike>('metallb.io/v1beta1', kind, {
              namespace: metallbNamespace,
            });
            return items.map((o) => ({ kind, ...o }));
          } catch (err) {
            if ((err as { status?: number }).status === 404) return [];
            throw err;
          }
        };
        const advertisements = [
          ...(await listIfServed('L2Advertisement')),
          ...(await listIfServed('BGPAdvertisement')),
        ];
        const labels = moduleLabels(release, namespace);
        const existingNamespace = await ctx.kube.get<ObjectLike>('v1', 'Namespace', namespace);
        const judgements = [
          judgeMetallbVersion(
            await ctx.kube.list<ObjectLike>('apps/v1', 'Deployment', {
              namespace: metallbNamespace,
            }),
            metallbNamespace,
          ),
          judgeServiceLbOff(
            await ctx.kube.list<ObjectLike>('apps/v1', 'DaemonSet', { namespace: 'kube-system' }),
            await ctx.kube.list<ObjectLike>('v1', 'Pod', { namespace: 'kube-system' }),
            await ctx.kube.list<ObjectLike>('v1', 'Node'),
          ),
          judgePoolContains(pool, metallbPool, lbIp),
          ...(pool
            ? [
                judgePoolAnnounced(pool, metallbPool, advertisements, metallbNamespace),
                judgePoolAdmits(pool, metallbPool, {
                  namespace,
                  namespaceLabels: {
                    ...labels.namespace,
                    ...(existingNamespace?.metadata?.labels ?? {}),
                  },
                  labels: labels.externalService,
                }),
              ]
            : []),
          judgeAddressFree(services, lbIp, `${namespace}/${release}-external`),
          judgeAddressInCidr(lbIp, privateCidr),
        ];
        const failed = judgements.filter((j) => !j.ok);
        return failed.length === 0
          ? { ok: true, detail: judgements.map((j) => j.detail).join('; ') }
          : {
              ok: false,
              detail: failed.map((j) => j.detail).join('; '),
              fix: failed.map((j) => j.fix).join('; '),
            };
      },
    }),
    deferredCheck({
      id: 'P08',
      title:
        'Namespace REDIS_NAMESPACE is absent or already ours (managed-by label), never someone else’s',
      check: async (ctx) =>
        judgeNamespaceOwnership(
          await ctx.kube.get<ObjectLike>('v1', 'Namespace', ctx.cfg.redis.namespace),
          ctx.cfg.redis.namespace,
        ),
    }),
    deferredCheck({
      id: 'P09',
      title: 'beersystem and its old Redis found; what beersystem uses today noted for 05-migrate',
      check: async (ctx) => {
        const b = ctx.cfg.beersystem;
        const old = ctx.cfg.oldRedis;
        const deployment = await ctx.kube.get<ObjectLike>(
          'apps/v1',
          'Deployment',
          b.deployment,
          b.namespace,
        );
        const oldDeployment = await ctx.kube.get(
          'apps/v1',
          'Deployment',
          old.deployment,
          old.namespace,
        );
        const oldService = await ctx.kube.get('v1', 'Service', old.service, old.namespace);
        const missing = [
          ...(deployment ? [] : [`Deployment ${b.namespace}/${b.deployment}`]),
          ...(oldDeployment ? [] : [`Deployment ${old.namespace}/${old.deployment}`]),
          ...(oldService ? [] : [`Service ${old.namespace}/${old.service}`]),
        ];
        if (!deployment || missing.length > 0) {
          return {
            ok: false,
            detail: `not found: ${missing.join(', ')}`,
            fix: 'check BEERSYSTEM_* and OLD_REDIS_* in .env name what runs in the cluster',
          };
        }
        const today = beersystemToday(deployment, b.container);
        await ctx.note('beersystem.before', today);
        return {
          ok: true,
          detail: `beersystem: ${today.replicas} replica(s), ${today.readyReplicas} ready, REDIS_HOST=${today.redisHost ?? 'unset'}, REDIS_PORT=${today.redisPort ?? 'unset'}, password from ${today.passwordFrom}; old Redis ${old.namespace}/${old.deployment} and Service ${old.service} found`,
        };
      },
    }),
    fileTask(
      'T001',
      'Create redis namespace via terraform/modules/redis-shared/namespace.tf',
      (ctx) => join(moduleDir(ctx), 'namespace.tf'),
    ),
    fileTask(
      'T002',
      'Create redis-shared module directory structure (terraform/modules/redis-shared/)',
      (ctx) => moduleDir(ctx),
    ),
    fileTask(
      'T003',
      'Create versions.tf with provider requirements (Helm ~2.0, Kubernetes ~2.0, Random ~3.0) in terraform/modules/redis-shared/',
      (ctx) => join(moduleDir(ctx), 'versions.tf'),
    ),
    fileTask(
      'T004',
      'Create variables.tf with input variables in terraform/modules/redis-shared/',
      (ctx) => join(moduleDir(ctx), 'variables.tf'),
    ),
    fileTask(
      'T005',
      'Create locals.tf with common labels in terraform/modules/redis-shared/',
      (ctx) => join(moduleDir(ctx), 'locals.tf'),
    ),
    fileTask(
      'T006',
      'Create outputs.tf with module outputs in terraform/modules/redis-shared/',
      (ctx) => join(moduleDir(ctx), 'outputs.tf'),
    ),
    // The validation scripts of tasks.md are the runbooks 03-access and 04-monitoring here.
    fileTask(
      'T007',
      'Create validation scripts directory (scripts/redis-shared/) — here runbooks/03-access.mts',
      () => fileURLToPath(new URL('./03-access.mts', import.meta.url)),
    ),
    fileTask(
      'T008',
      'Create environment configuration in terraform/environments/chocolandiadc-mvp/redis-shared.tf',
      (ctx) => join(ctx.cfg.tofu.dir, 'redis-shared.tf'),
    ),
    deferredCheck({
      id: 'P10',
      title: 'tofu init',
      check: (ctx) =>
        commandJudgement(
          'tofu init',
          'read the error above: provider download, backend access',
          () => tofuInit(ctx),
        ),
    }),
    deferredCheck({
      id: 'P11',
      title: 'tofu validate',
      check: (ctx) =>
        commandJudgement('tofu validate', `fix the configuration in ${ctx.cfg.tofu.dir}`, () =>
          tofuValidate(ctx),
        ),
    }),
    deferredCheck({
      id: 'P12',
      title: 'tofu fmt -check',
      check: async (ctx) => {
        const unformatted = await tofuFmtCheck(ctx);
        return unformatted.length === 0
          ? { ok: true, detail: `tofu fmt -check: every file in ${ctx.cfg.tofu.dir} formatted` }
          : {
              ok: false,
              detail: `tofu fmt -check: not formatted: ${unformatted.join(', ')}`,
              fix: `run tofu fmt -recursive in ${ctx.cfg.tofu.dir} and commit`,
            };
      },
    }),
    verdictStep('P13', 'Every preflight check passed (all failures listed at once)'),
  ],
});

await runMain(runbook, import.meta.url);
