// Parsers for the text Redis answers to INFO and CLIENT LIST. Pure functions, so the runbooks can
// also parse what an in-cluster Job printed with `redis-cli INFO`.

/** INFO as `section → field → raw value`; section names are lower-case (`replication`, …). */
export type InfoSections = Record<string, Record<string, string>>;

export interface ReplicaLink {
  /** Address the primary sees for this replica. */
  ip: string;
  port: number;
  state: string;
  offset: number;
  lag: number;
}

export interface ReplicationInfo {
  role: 'master' | 'slave' | string;
  connectedSlaves: number;
  masterReplOffset: number;
  replicas: ReplicaLink[];
  /** Only on a replica. */
  masterHost?: string;
  masterPort?: number;
  masterLinkStatus?: 'up' | 'down' | string;
  masterLastIoSecondsAgo?: number;
  slaveReplOffset?: number;
}

export interface PersistenceInfo {
  aofEnabled: boolean;
  aofLastWriteStatus?: string;
  rdbLastBgsaveStatus?: string;
  rdbChangesSinceLastSave?: number;
  loading: boolean;
}

export interface KeyspaceDb {
  db: number;
  keys: number;
  expires: number;
  avgTtl: number;
}

export interface ClientInfo {
  id: number;
  /** `ip:port` of the peer as the server sees it. */
  addr: string;
  /** `ip:port` of the server side of the connection. */
  laddr?: string;
  name: string;
  ageSeconds: number;
  idleSeconds: number;
  db: number;
  lastCommand: string;
  user?: string;
  /** Every field as Redis printed it, for evidence. */
  fields: Record<string, string>;
}

export function parseInfo(text: string): InfoSections {
  const sections: InfoSections = {};
  let current: Record<string, string> = {};
  sections.default = current;
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (!line) continue;
    if (line.startsWith('#')) {
      const name = line.slice(1).trim().toLowerCase();
      current = sections[name] ?? {};
      sections[name] = current;
      continue;
    }
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    current[line.slice(0, colon)] = line.slice(colon + 1);
  }
  if (Object.keys(sections.default ?? {}).length === 0) delete sections.default;
  return sections;
}

/** All fields of every section in one map: INFO field names are unique across sections. */
export function flattenInfo(info: InfoSections): Record<string, string> {
  return Object.assign({}, ...Object.values(info));
}

function num(value: string | undefined): number | undefined {
  if (value === undefined || value === '') return undefined;
  const n = Number(value);
  return Number.isFinite(n) ? n : undefined;
}

/** `a=1,b=x` → `{a:'1', b:'x'}` (the shape of `slave0:` and `db0:` values). */
function parseCommaPairs(value: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of value.split(',')) {
    const eq = part.indexOf('=');
    if (eq > 0) out[part.slice(0, eq)] = part.slice(eq + 1);
  }
  return out;
}

export function replicationFromInfo(info: InfoSections): ReplicationInfo {
  const f = flattenInfo(info);
  const replicas: ReplicaLink[] = [];
  for (const [key, value] of Object.entries(f)) {
    if (!/^slave\d+$/.test(key)) continue;
    const p = parseCommaPairs(value);
    replicas.push({
      ip: p.ip ?? '',
      port: num(p.port) ?? 0,
      state: p.state ?? '',
      offset: num(p.offset) ?? 0,
      lag: num(p.lag) ?? 0,
    });
  }
  const out: ReplicationInfo = {
    role: f.role ?? 'unknown',
    connectedSlaves: num(f.connected_slaves) ?? 0,
    masterReplOffset: num(f.master_repl_offset) ?? 0,
    replicas,
  };
  if (f.master_host !== undefined) out.masterHost = f.master_host;
  const masterPort = num(f.master_port);
  if (masterPort !== undefined) out.masterPort = masterPort;
  if (f.master_link_status !== undefined) out.masterLinkStatus = f.master_link_status;
  const lastIo = num(f.master_last_io_seconds_ago);
  if (lastIo !== undefined) out.masterLastIoSecondsAgo = lastIo;
  const slaveOffset = num(f.slave_repl_offset);
  if (slaveOffset !== undefined) out.slaveReplOffset = slaveOffset;
  return out;
}

export function persistenceFromInfo(info: InfoSections): PersistenceInfo {
  const f = flattenInfo(info);
  const out: PersistenceInfo = { aofEnabled: f.aof_enabled === '1', loading: f.loading === '1' };
  if (f.aof_last_write_status !== undefined) out.aofLastWriteStatus = f.aof_last_write_status;
  if (f.rdb_last_bgsave_status !== undefined) out.rdbLastBgsaveStatus = f.rdb_last_bgsave_status;
  const changes = num(f.rdb_changes_since_last_save);
  if (changes !== undefined) out.rdbChangesSinceLastSave = changes;
  return out;
}

export function keyspaceFromInfo(info: InfoSections): KeyspaceDb[] {
  const out: KeyspaceDb[] = [];
  for (const [key, value] of Object.entries(info.keyspace ?? {})) {
    const m = /^db(\d+)$/.exec(key);
    if (!m) continue;
    const p = parseCommaPairs(value);
    out.push({
      db: Number(m[1]),
      keys: num(p.keys) ?? 0,
      expires: num(p.expires) ?? 0,
      avgTtl: num(p.avg_ttl) ?? 0,
    });
  }
  return out.sort((a, b) => a.db - b.db);
}

/** One CLIENT LIST line per client, `key=value` pairs separated by spaces. */
export function parseClientList(text: string): ClientInfo[] {
  const clients: ClientInfo[] = [];
  for (const line of text.split(/\r?\n/)) {
    if (!line.trim()) continue;
    const fields: Record<string, string> = {};
    for (const pair of line.trim().split(' ')) {
      const eq = pair.indexOf('=');
      if (eq > 0) fields[pair.slice(0, eq)] = pair.slice(eq + 1);
    }
    if (fields.addr === undefined) continue;
    const client: ClientInfo = {
      id: num(fields.id) ?? 0,
      addr: fields.addr,
      name: fields.name ?? '',
      ageSeconds: num(fields.age) ?? 0,
      idleSeconds: num(fields.idle) ?? 0,
      db: num(fields.db) ?? 0,
      lastCommand: fields.cmd ?? '',
      fields,
    };
    if (fields.laddr !== undefined) client.laddr = fields.laddr;
    if (fields.user !== undefined) client.user = fields.user;
    clients.push(client);
  }
  return clients;
}

/** The host part of `ip:port`, IPv6 included (`[::1]:6379` or `::1:6379`). */
export function hostOfAddr(addr: string): string {
  const bracket = /^\[(.*)\]:\d+$/.exec(addr);
  if (bracket) return bracket[1] ?? addr;
  const colon = addr.lastIndexOf(':');
  return colon > 0 ? addr.slice(0, colon) : addr;
}
