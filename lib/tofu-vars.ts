// The root module's variables, from the runbooks' settings: one source of truth, so a plan made
// by a runbook targets the cluster, addresses and names the run is pinned to. Only variables the
// settings name are passed; the rest keep terraform.tfvars or the module defaults.
import type { Config } from './config.ts';

export function tofuVars(
  cfg: Pick<Config, 'kubeContext' | 'kubeconfig' | 'redis' | 'monitoring'>,
  options: { migration: boolean },
): Record<string, string> {
  return {
    kube_context: cfg.kubeContext,
    ...(cfg.kubeconfig ? { kubeconfig_path: cfg.kubeconfig } : {}),
    redis_namespace: cfg.redis.namespace,
    release_name: cfg.redis.release,
    lb_ip: cfg.redis.lbIp,
    metallb_pool: cfg.redis.metallbPool,
    private_cidr: cfg.redis.privateCidr,
    monitoring_namespace: cfg.monitoring.namespace,
    enable_beersystem_migration: String(options.migration),
  };
}

/** `-var name=value` pairs, in a stable order, for a tofu command line. */
export function tofuVarArgs(vars: Record<string, string>): string[] {
  return Object.entries(vars).flatMap(([name, value]) => ['-var', `${name}=${value}`]);
}
