// JavaScript ports of the `validation` conditions in terraform/modules/*/variables.tf, one per
// variable, so the conditions are exercised even where no tofu/terraform binary exists. The
// test checks each port against the real binary when one is installed, so a port that drifts
// from its HCL fails there.

export type VariableValues = Record<string, unknown>;

/** Returns true when `value` (with the other variables in `all`) passes every validation. */
export type ValidationPort = (value: unknown, all: VariableValues) => boolean;

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;
const IMAGE_REPOSITORY = /^[a-z0-9]+([._/-][a-z0-9]+)*$/;
const IMAGE_TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
const IPV4 =
  /^((25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.){3}(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])$/;
const CPU = /^([0-9]+m|[0-9]+(\.[0-9]+)?)$/;
const MEMORY = /^[1-9][0-9]*(Ki|Mi|Gi)$/;

// Terraform's regex() searches; every pattern here is anchored, so test() is equivalent.
const matches = (re: RegExp, v: unknown) => typeof v === 'string' && re.test(v);
const isWhole = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v);

/** cidrhost(prefix, 0) for IPv4: the network address, or null where Terraform would error. */
export function networkAddress(cidr: string): string | null {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/.exec(cidr);
  if (!m) return null;
  const octets = m.slice(1, 5).map(Number);
  const bits = Number(m[5]);
  if (octets.some((o) => o > 255) || bits > 32) return null;
  const ip = octets.reduce((acc, o) => acc * 256 + o, 0);
  const mask = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
  const net = (ip & mask) >>> 0;
  return [24, 16, 8, 0].map((s) => (net >>> s) & 255).join('.');
}

function prefixLength(cidr: string): number | null {
  const m = /\/(\d{1,2})$/.exec(cidr);
  return m ? Number(m[1]) : null;
}

const resourcesValid = (v: unknown): boolean => {
  const r = v as { requests?: Record<string, unknown>; limits?: Record<string, unknown> };
  if (!r?.requests || !r.limits) return false;
  return (
    matches(CPU, r.requests.cpu) &&
    matches(CPU, r.limits.cpu) &&
    matches(MEMORY, r.requests.memory) &&
    matches(MEMORY, r.limits.memory)
  );
};

// RFC 1918, and loopback (never leaves the host; the sandbox rehearses on it).
const PRIVATE_RANGES = ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', '127.0.0.0/8'];

/** Ports of terraform/modules/redis-shared/variables.tf. */
export const redisSharedValidations: Record<string, ValidationPort> = {
  namespace: (v) => matches(DNS_LABEL, v),
  release_name: (v) => matches(/^[a-z0-9]([-a-z0-9]{0,51}[a-z0-9])?$/, v),
  chart_repository: (v) => matches(/^(https:\/\/|oci:\/\/)/, v),
  chart_version: (v) => matches(/^[0-9]+\.[0-9]+\.[0-9]+$/, v),
  redis_image_repository: (v) => matches(IMAGE_REPOSITORY, v),
  redis_image_tag: (v) => matches(IMAGE_TAG, v),
  exporter_image_repository: (v) => matches(IMAGE_REPOSITORY, v),
  exporter_image_tag: (v) => matches(IMAGE_TAG, v),
  replica_namespaces: (v) => Array.isArray(v) && v.every((ns) => matches(DNS_LABEL, ns)),
  replica_count: (v) => isWhole(v) && v >= 1 && v <= 3,
  storage_class: (v) => matches(DNS_SUBDOMAIN, v),
  storage_size: (v) => matches(/^[1-9][0-9]*(Mi|Gi|Ti)$/, v),
  master_resources: resourcesValid,
  replica_resources: resourcesValid,
  exporter_resources: resourcesValid,
  maxmemory: (v) => matches(/^[1-9][0-9]*(mb|gb)$/, v),
  maxmemory_policy: (v) =>
    typeof v === 'string' &&
    [
      'allkeys-lru',
      'allkeys-lfu',
      'allkeys-random',
      'volatile-lru',
      'volatile-lfu',
      'volatile-random',
      'volatile-ttl',
      'noeviction',
    ].includes(v),
  maxclients: (v) => isWhole(v) && v >= 100 && v <= 65000,
  disabled_commands: (v) =>
    Array.isArray(v) && v.every((c) => matches(/^[A-Z]+$/, c)) && !v.includes('CONFIG'),
  lb_ip: (v, all) => {
    if (!matches(IPV4, v)) return false;
    const cidr = String(all.private_cidr);
    const bits = prefixLength(cidr);
    const net = networkAddress(cidr);
    return bits !== null && net !== null && networkAddress(`${v}/${bits}`) === net;
  },
  metallb_pool: (v) => matches(DNS_SUBDOMAIN, v),
  private_cidr: (v) => {
    if (!matches(/^([0-9]{1,3}\.){3}[0-9]{1,3}\/([0-9]|[12][0-9]|3[0-2])$/, v)) return false;
    const cidr = v as string;
    const [ip] = cidr.split('/') as [string];
    if (networkAddress(cidr) !== ip) return false;
    const bits = prefixLength(cidr) as number;
    return PRIVATE_RANGES.some((range) => {
      const rangeBits = prefixLength(range) as number;
      return bits >= rangeBits && networkAddress(`${ip}/${rangeBits}`) === networkAddress(range);
    });
  },
  monitoring_namespace: (v) => matches(DNS_LABEL, v),
  metrics_interval: (v) => {
    if (!matches(/^[0-9]+s$/, v)) return false;
    const seconds = Number((v as string).slice(0, -1));
    return seconds >= 5 && seconds <= 15;
  },
  prometheus_release_label: (v) => typeof v === 'string' && v.length > 0,
  runbook_base_url: (v) => matches(/^https?:\/\/[^#\s]+$/, v),
  secret_name: (v) => matches(DNS_SUBDOMAIN, v),
  secret_key: (v) => matches(/^[-._a-zA-Z0-9]{1,253}$/, v),
};

/** Ports of terraform/modules/beersystem-migration/variables.tf. */
export const migrationValidations: Record<string, ValidationPort> = {
  namespace: (v) => matches(DNS_LABEL, v),
  deployment_name: (v) => matches(DNS_SUBDOMAIN, v),
  container_name: (v) => matches(DNS_LABEL, v),
  redis_host: (v) =>
    matches(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/, v),
  redis_port: (v) => isWhole(v) && v >= 1 && v <= 65535,
  secret_name: (v) => matches(DNS_SUBDOMAIN, v),
  secret_key: (v) => matches(/^[-._a-zA-Z0-9]{1,253}$/, v),
};

const nonBlank = (v: unknown) => typeof v === 'string' && v.trim().length > 0;

/** Ports of terraform/environments/chocolandiadc-mvp/variables.tf. */
export const rootValidations: Record<string, ValidationPort> = {
  kubeconfig_path: nonBlank,
  kube_context: nonBlank,
  beersystem_namespace: (v, all) =>
    Array.isArray(all.replica_namespaces) && all.replica_namespaces.includes(v),
};
