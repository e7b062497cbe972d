// The root module's variables, from the runbooks' settings: one source of truth, so a plan made
// by a runbook uses the addresses and names the run checks. Only variables the settings name
// are passed; the rest keep terraform.tfvars or the module defaults. The cluster (kube_context,
// kubeconfig_path) is pinned by lib/cluster/tofu.ts through TF_VAR_* for every tofu call.
import type { Config } from '../config.ts';

export function tofuVars(
  cfg: Pick<Config, 'redis' | 'monitoring'>,
  options: { migration: boolean },
): Record<string, string> {
  return {
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
