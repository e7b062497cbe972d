// The root module's variables, from the runbooks' settings: one source of truth, so a plan made
// by a runbook uses the addresses and names the run checks (a setting that changed the checks
// but not the module would be a trap). They go on the command line as -var, which beats every
// tfvars file; the rest keep terraform.tfvars or the module defaults. The cluster (kube_context,
// kubeconfig_path) is added by lib/cluster/tofu.ts to every plan.
import type { Config } from '../config.ts';

export function tofuVars(
  cfg: Pick<Config, 'redis' | 'monitoring' | 'beersystem'>,
  options: { migration: boolean },
): Record<string, string> {
  return {
    redis_namespace: cfg.redis.namespace,
    release_name: cfg.redis.release,
    lb_ip: cfg.redis.lbIp,
    metallb_pool: cfg.redis.metallbPool,
    private_cidr: cfg.redis.privateCidr,
    redis_secret_name: cfg.redis.secretName,
    redis_secret_key: cfg.redis.secretKey,
    monitoring_namespace: cfg.monitoring.namespace,
    // The Secret copy beersystem's pods read lives in beersystem_namespace; the root refuses a
    // namespace that replica_namespaces does not list, so the copy is never missed.
    beersystem_namespace: cfg.beersystem.namespace,
    beersystem_deployment: cfg.beersystem.deployment,
    beersystem_container: cfg.beersystem.container,
    enable_beersystem_migration: String(options.migration),
  };
}

/** `-var name=value` pairs, in a stable order, for a tofu command line. */
export function tofuVarArgs(vars: Record<string, string>): string[] {
  return Object.entries(vars).flatMap(([name, value]) => ['-var', `${name}=${value}`]);
}
