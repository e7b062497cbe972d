// The sandbox's MetalLB address pool and the settings that point the runbooks at it. Every
// sandbox answers LoadBalancer Services on a pool of its own, 127.0.S.200–210 (slot S), so two
// sandboxes on one machine (two test files, a rehearsal beside a test) never serve the same
// address. Slot 0 (127.0.0.200–210) is for sandboxes that listen on no address (fake
// workloads); the workload half takes its slot with its pod network (workloads/addresses.ts).
//
// As in the homelab, the pool's first three addresses are held by Services that were there
// before (Postgres, Pi-hole, Traefik) and the shared Redis gets the first free one.
export const METALLB_POOL = 'eero-pool';
/**
 * The sandbox's private network: every pool (127.0.S.x) and the operator's machine, which
 * reaches a loopback address from 127.0.0.1 (the kernel's source for 127.0.0.0/8).
 */
export const SANDBOX_PRIVATE_CIDR = '127.0.0.0/16';
/** A loopback address outside SANDBOX_PRIVATE_CIDR: the LoadBalancer proxy resets connections from it. */
export const OUTSIDE_PROBE_SOURCE = '127.1.0.5';
export const MAX_SLOT = 255;

export interface SandboxNetwork {
  slot: number;
  pool: { name: string; first: string; last: string };
  /** The addresses the homelab's Services hold before the change, in pool order. */
  held: { postgres: string; pihole: string; traefik: string };
  /** REDIS_LB_IP: the pool's first free address. */
  redisLbIp: string;
  privateCidr: string;
  outsideProbeSource: string;
}

export function sandboxNetwork(slot = 0): SandboxNetwork {
  if (!Number.isInteger(slot) || slot < 0 || slot > MAX_SLOT) {
    throw new Error(`sandbox address slot ${slot}: expected an integer 0–${MAX_SLOT}`);
  }
  const at = (last: number) => `127.0.${slot}.${last}`;
  return {
    slot,
    pool: { name: METALLB_POOL, first: at(200), last: at(210) },
    held: { postgres: at(200), pihole: at(201), traefik: at(202) },
    redisLbIp: at(203),
    privateCidr: SANDBOX_PRIVATE_CIDR,
    outsideProbeSource: OUTSIDE_PROBE_SOURCE,
  };
}

/** The runbooks' settings that depend on the sandbox's addresses (.env.sandbox). */
export function runbookNetworkSettings(network: SandboxNetwork): Record<string, string> {
  return {
    REDIS_LB_IP: network.redisLbIp,
    PRIVATE_CIDR: network.privateCidr,
    OUTSIDE_PROBE_SOURCE: network.outsideProbeSource,
    METALLB_POOL: network.pool.name,
  };
}

/** The root module's variables that depend on the sandbox's addresses (TF_VAR_… or -var). */
export function tofuNetworkVars(network: SandboxNetwork): { lb_ip: string; private_cidr: string } {
  return { lb_ip: network.redisLbIp, private_cidr: network.privateCidr };
}
