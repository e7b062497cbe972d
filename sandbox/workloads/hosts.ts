// The sandbox's cluster DNS is a set of hosts files, one per namespace: every process the
// sandbox runs sees its namespace's file bind-mounted over /etc/hosts in a mount namespace of
// its own. Fully qualified names are in every file; the short `<svc>` name only in the file of
// the Service's own namespace, as a pod's DNS search path gives it. Files are rewritten in place
// (same inode), so a bind mount made before a Service existed sees its name once it is added.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

interface Entry {
  ip: string;
  /** Names valid in every namespace. */
  global: string[];
  /** Names valid only inside `namespace`. */
  namespace: string;
  local: string[];
}

export class HostsFile {
  readonly dir: string;
  private readonly base: string;
  private readonly entries = new Map<string, Entry>();
  private readonly namespaces = new Set<string>();

  constructor(dir: string) {
    this.dir = dir;
    mkdirSync(dir, { recursive: true });
    let system = '127.0.0.1 localhost\n';
    try {
      system = readFileSync('/etc/hosts', 'utf8');
    } catch {
      // No /etc/hosts to copy: localhost alone will do.
    }
    this.base = `${system.trimEnd()}\n# cluster DNS of the sandbox\n`;
  }

  /** The hosts file the processes of this namespace see as /etc/hosts. */
  pathFor(namespace: string): string {
    const path = join(this.dir, `hosts.${namespace}`);
    if (!this.namespaces.has(namespace)) {
      this.namespaces.add(namespace);
      this.writeOne(namespace);
    }
    return path;
  }

  setService(namespace: string, service: string, ip: string): void {
    this.entries.set(`svc/${namespace}/${service}`, {
      ip,
      global: serviceNames(namespace, service),
      namespace,
      local: [service],
    });
    this.writeAll();
  }

  /** A StatefulSet pod's stable name under its headless Service. */
  setPodHostname(namespace: string, service: string, pod: string, ip: string): void {
    this.entries.set(`pod/${namespace}/${service}/${pod}`, {
      ip,
      global: serviceNames(namespace, service).map((name) => `${pod}.${name}`),
      namespace,
      local: [`${pod}.${service}`],
    });
    this.writeAll();
  }

  removePodHostname(namespace: string, service: string, pod: string): void {
    if (this.entries.delete(`pod/${namespace}/${service}/${pod}`)) this.writeAll();
  }

  removeService(namespace: string, service: string): void {
    for (const key of [...this.entries.keys()]) {
      if (key === `svc/${namespace}/${service}` || key.startsWith(`pod/${namespace}/${service}/`)) {
        this.entries.delete(key);
      }
    }
    this.writeAll();
  }

  /** What a process in `namespace` gets for `name`. */
  resolve(namespace: string, name: string): string | undefined {
    for (const entry of this.entries.values()) {
      if (entry.global.includes(name)) return entry.ip;
      if (entry.namespace === namespace && entry.local.includes(name)) return entry.ip;
    }
    return undefined;
  }

  private writeAll(): void {
    for (const namespace of this.namespaces) this.writeOne(namespace);
  }

  private writeOne(namespace: string): void {
    const lines: string[] = [];
    for (const entry of this.entries.values()) {
      const names =
        entry.namespace === namespace ? [...entry.global, ...entry.local] : entry.global;
      lines.push(`${entry.ip} ${names.join(' ')}`);
    }
    writeFileSync(join(this.dir, `hosts.${namespace}`), `${this.base}${lines.join('\n')}\n`);
  }
}

/** The fully qualified names a Service answers to, as cluster DNS gives them. */
export function serviceNames(namespace: string, service: string): string[] {
  return [
    `${service}.${namespace}.svc.cluster.local`,
    `${service}.${namespace}.svc`,
    `${service}.${namespace}`,
  ];
}
