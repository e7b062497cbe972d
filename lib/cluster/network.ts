export interface Cidr {
  network: number;
  prefix: number;
}

const OCTET = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;

export function isIPv4(text: string): boolean {
  const parts = text.split('.');
  return parts.length === 4 && parts.every((p) => OCTET.test(p));
}

function toNumber(ip: string): number {
  return ip.split('.').reduce((acc, octet) => acc * 256 + Number(octet), 0);
}

function maskOf(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

/** `192.168.4.0/24` → its network and prefix; undefined when malformed or host bits are set. */
export function parseCidr(text: string): Cidr | undefined {
  const match = /^([\d.]+)\/(\d{1,2})$/.exec(text);
  if (!match || !isIPv4(match[1] as string)) return undefined;
  const prefix = Number(match[2]);
  if (prefix > 32) return undefined;
  const network = toNumber(match[1] as string);
  if ((network & ~maskOf(prefix)) >>> 0 !== 0) return undefined;
  return { network, prefix };
}

export function ipInCidr(ip: string, cidr: Cidr): boolean {
  const mask = maskOf(cidr.prefix);
  return (toNumber(ip) & mask) >>> 0 === (cidr.network & mask) >>> 0;
}

/** RFC 1918 private networks, and loopback (the sandbox's LoadBalancer addresses live there). */
export const PRIVATE_NETWORKS = ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', '127.0.0.0/8'];

/** Whether every address of `cidr` lies inside one of PRIVATE_NETWORKS. */
export function isPrivateNetwork(cidr: Cidr): boolean {
  return PRIVATE_NETWORKS.some((text) => {
    const range = parseCidr(text) as Cidr;
    return cidr.prefix >= range.prefix && ipInCidr(fromNumber(cidr.network), range);
  });
}

export function isPrivateAddress(ip: string): boolean {
  return isPrivateNetwork({ network: toNumber(ip), prefix: 32 });
}

/** The network and broadcast addresses of a CIDR; a /31 or /32 has neither (RFC 3021). */
export function reservedAddresses(cidr: Cidr): string[] {
  if (cidr.prefix >= 31) return [];
  const broadcast = (cidr.network | ~maskOf(cidr.prefix)) >>> 0;
  return [fromNumber(cidr.network), fromNumber(broadcast)];
}

function fromNumber(n: number): string {
  return [24, 16, 8, 0].map((shift) => (n >>> shift) & 255).join('.');
}
