// IPv4 arithmetic for the sandbox's loopback networks and for loadBalancerSourceRanges.
// Not lib/cluster/network.ts: lib checks the operator's PRIVATE_CIDR and rejects host bits, while the
// sandbox must enforce ranges as Kubernetes 1.32 accepted them (host bits masked away, e.g.
// 127.0.0.1/24), and it also needs address ↔ number for its pools and the IPv4-mapped IPv6
// remote addresses Node reports.

export function ipToNumber(ip: string): number {
  const parts = ip.split('.').map(Number);
  if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255)) {
    throw new Error(`not an IPv4 address: ${ip}`);
  }
  return parts.reduce((n, part) => ((n << 8) | part) >>> 0, 0);
}

export function numberToIp(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

/** Strips the IPv4-mapped IPv6 prefix Node gives remote addresses on dual-stack sockets. */
export function plainIPv4(address: string | undefined): string {
  return (address ?? '').replace(/^::ffff:/, '');
}

export function ipInCidr(ip: string, cidr: string): boolean {
  const [base = '', bitsText = '32'] = cidr.split('/');
  const bits = Number(bitsText);
  if (!Number.isInteger(bits) || bits < 0 || bits > 32) throw new Error(`not a CIDR: ${cidr}`);
  let address: number;
  try {
    address = ipToNumber(plainIPv4(ip));
  } catch {
    return false;
  }
  const mask = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
  return (address & mask) === (ipToNumber(base) & mask);
}

/** True when the address is allowed by the ranges; no ranges means everyone is allowed. */
export function sourceAllowed(ip: string, ranges: readonly string[] | undefined): boolean {
  if (!ranges || ranges.length === 0) return true;
  return ranges.some((range) => ipInCidr(ip, range));
}
