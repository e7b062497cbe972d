// Pods and Services get addresses of their own on the loopback network (all of 127.0.0.0/8 is
// local on Linux), so every Redis can listen on 6379 as in the cluster. Each running sandbox
// takes a /16 of its own, 127.N.0.0/16, recorded in a lock file, so two sandboxes (two test
// files running at once) never hand out the same address; N is also its LoadBalancer pool's
// slot, 127.0.N.200–210 (../lb-pool.ts).
import { closeSync, mkdirSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sandboxNetwork } from '../lb-pool.ts';
import { numberToIp } from './cidr.ts';
import { isAlive } from './supervisor.ts';

const LOCK_DIR = join(tmpdir(), 'redis-shared-sandbox-networks');
// 127.0.x.x holds localhost and the LoadBalancer pool; 127.1–15 are left to anything else.
const FIRST_OCTET = 16;
const LAST_OCTET = 250;
const POD_BASE = 1 << 8; // 127.N.1.0
const SERVICE_BASE = 128 << 8; // 127.N.128.0

export class AddressPool {
  readonly octet: number;
  private readonly lockFile: string;
  private readonly pods = new Map<string, string>();
  private readonly services = new Map<string, string>();
  private nextPod = 0;
  private nextService = 0;

  private constructor(octet: number, lockFile: string) {
    this.octet = octet;
    this.lockFile = lockFile;
  }

  /**
   * Locks the first free network of `candidates` (all of them, from a random one, by default).
   * A network whose Redis LoadBalancer address is held by a process outside the lock files (a
   * sandbox of an older checkout, a stray redis-server) is passed over: its clients would
   * reach that process instead.
   */
  static async acquire(candidates: number[] = shuffledOctets()): Promise<AddressPool> {
    mkdirSync(LOCK_DIR, { recursive: true });
    for (const octet of candidates) {
      const lockFile = join(LOCK_DIR, String(octet));
      if (!tryLock(lockFile)) continue;
      if (await addressFree(sandboxNetwork(octet).redisLbIp, REDIS_PORT)) {
        return new AddressPool(octet, lockFile);
      }
      rmSync(lockFile, { force: true });
    }
    throw new Error(
      `no free sandbox network left under ${LOCK_DIR}: stop a sandbox (npm run sandbox -- down) and retry`,
    );
  }

  /** A stable address per pod name, so a restarted pod keeps its address as its exporter does. */
  podIP(namespace: string, name: string): string {
    return this.allocate(this.pods, `${namespace}/${name}`, POD_BASE, () => this.nextPod++);
  }

  serviceIP(namespace: string, name: string): string {
    return this.allocate(
      this.services,
      `${namespace}/${name}`,
      SERVICE_BASE,
      () => this.nextService++,
    );
  }

  /** The pod that owns an address, if any (the proxies use it to apply partitions). */
  podForIP(ip: string): string | undefined {
    for (const [key, value] of this.pods) if (value === ip) return key;
    return undefined;
  }

  release(): void {
    rmSync(this.lockFile, { force: true });
  }

  private allocate(
    map: Map<string, string>,
    key: string,
    base: number,
    next: () => number,
  ): string {
    const known = map.get(key);
    if (known) return known;
    const index = next();
    // Skip .0 and .255 of every /24 so no address looks like a network or broadcast address.
    const offset = base + Math.floor(index / 254) * 256 + (index % 254) + 1;
    const ip = numberToIp(((127 << 24) | (this.octet << 16) | offset) >>> 0);
    map.set(key, ip);
    return ip;
  }
}

const REDIS_PORT = 6379;

function shuffledOctets(): number[] {
  const span = LAST_OCTET - FIRST_OCTET + 1;
  const start = Math.floor(Math.random() * span);
  return Array.from({ length: span }, (_, i) => FIRST_OCTET + ((start + i) % span));
}

function addressFree(host: string, port: number): Promise<boolean> {
  return new Promise<boolean>((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, host, () => server.close(() => resolve(true)));
  });
}

function tryLock(lockFile: string): boolean {
  try {
    const fd = openSync(lockFile, 'wx');
    writeSync(fd, String(process.pid));
    closeSync(fd);
    return true;
  } catch {
    const owner = Number(readFileOr(lockFile));
    if (Number.isInteger(owner) && owner > 0 && isAlive(owner)) return false;
    // The sandbox that held it is gone: take it over.
    rmSync(lockFile, { force: true });
    try {
      const fd = openSync(lockFile, 'wx');
      writeSync(fd, String(process.pid));
      closeSync(fd);
      return true;
    } catch {
      return false;
    }
  }
}

function readFileOr(path: string): string {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch {
    return '';
  }
}
