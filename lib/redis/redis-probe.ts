// Evidence for the success criteria, gathered with ioredis: SC-001/SC-003 (round trips), SC-002 and
// US1 AS-2/AS-3 (replication), SC-007 (persistence), SC-008 (auth required), US4 (who is connected).
// A probe never throws for a failed check: it answers `ok: false` with evidence. It throws only
// for misuse (a target without host or port). The password is registered for masking first, and
// every message that leaves a probe is masked.
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { Redis } from 'ioredis';
import { maskError, maskSecrets, registerSecret } from '../mask.ts';
import {
  type ClientInfo,
  type InfoSections,
  type KeyspaceDb,
  keyspaceFromInfo,
  type PersistenceInfo,
  parseClientList,
  parseInfo,
  persistenceFromInfo,
  type ReplicationInfo,
  replicationFromInfo,
} from './redis-info.ts';

export interface RedisTarget {
  host: string;
  port: number;
  password?: string;
  /** TLS is not used in this deployment; the field exists so a caller cannot assume otherwise. */
  tls?: false;
  /** CLIENT SETNAME, so the connection can be recognised in CLIENT LIST. */
  name?: string;
}

export interface ProbeOptions {
  /** TCP connect plus handshake. Default 2000 ms. */
  connectTimeoutMs?: number;
  /** Each command. Default 2000 ms. */
  commandTimeoutMs?: number;
}

export interface ProbeResult<T> {
  ok: boolean;
  value: T | undefined;
  /** One or more human-readable lines for the report; never contains the password. */
  evidence: string;
  durationMs: number;
  /** Set when the check could not be made or failed with an error. */
  error?: string;
}

export interface LatencySummary {
  samples: number;
  p50Ms: number;
  p95Ms: number;
  p99Ms: number;
  maxMs: number;
}

export interface ConnectivityValue {
  pong: string;
  setGet: boolean;
  latency: LatencySummary;
}

export interface AuthRequiredValue {
  /** What the server answered to PING without a password. */
  reply: string;
}

export interface ReplicationValue {
  primary: ReplicationInfo;
  replica: ReplicationInfo;
  /** Bytes the replica is behind, from the two offsets. */
  offsetLagBytes: number;
  /** Time until the marker written on the primary was read on the replica. */
  markerSeenAfterMs?: number;
}

export interface PersistenceSettings {
  appendonly: string;
  appendfsync?: string;
  save?: string;
  info: PersistenceInfo;
}

export interface PersistenceMarker {
  key: string;
  value: string;
  writtenAt: string;
  settings: PersistenceSettings;
}

export interface PersistenceCheckValue {
  found: boolean;
  settings: PersistenceSettings;
}

export interface KeyCountValue {
  dbsize: number;
  keyspace: KeyspaceDb[];
}

export const PROBE_KEY_PREFIX = 'runbook:probe:';
const DEFAULT_TIMEOUT_MS = 2000;
const PROBE_KEY_TTL_S = 60;
// Long enough to outlive a pod restart and the runbook's wait for it; short enough not to linger.
const PERSISTENCE_MARKER_TTL_S = 24 * 3600;

type ProbeError = Error & { code?: string };

function validateTarget(target: RedisTarget): void {
  if (!target || typeof target.host !== 'string' || target.host === '') {
    throw new TypeError('redis target needs a host');
  }
  if (!Number.isInteger(target.port) || target.port <= 0 || target.port > 65535) {
    throw new TypeError(`redis target ${target.host} needs a port between 1 and 65535`);
  }
}

function where(target: RedisTarget): string {
  return `${target.host}:${target.port}`;
}

/** A clear, masked sentence for an ioredis or socket error, ending with what to check next. */
export function describeRedisError(err: unknown, target: RedisTarget): string {
  const e = err as ProbeError;
  const message = String(e?.message ?? err);
  const at = where(target);
  let text: string;
  if (/WRONGPASS|invalid password/i.test(message)) {
    text = `${at} rejected the password (WRONGPASS): check the password in the redis-credentials secret`;
  } else if (/NOAUTH/i.test(message)) {
    text = `${at} requires a password and none was given (NOAUTH): pass the password from the secret`;
  } else if (e?.code === 'ECONNREFUSED' || /ECONNREFUSED/.test(message)) {
    text = `${at} refused the connection: is Redis running there and is the port right?`;
  } else if (/ETIMEDOUT|timed? ?out/i.test(message)) {
    text = `${at} did not answer in time (${message}): check the address, firewall and loadBalancerSourceRanges`;
  } else if (/ENOTFOUND|EAI_AGAIN/.test(message)) {
    text = `${at}: the host name does not resolve (${message})`;
  } else {
    text = `${at}: ${message}`;
  }
  return maskSecrets(text);
}

function withDeadline<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(Object.assign(new Error(`${what} timed out after ${ms} ms`), { code: 'ETIMEDOUT' })),
      ms,
    );
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

interface OpenOptions extends ProbeOptions {
  /** false: connect without the password (the SC-008 check). */
  auth?: boolean;
}

/**
 * An ioredis connection that fails fast: no reconnects, no offline queue, RESP2 (so a missing
 * password shows as NOAUTH on the first command rather than inside a HELLO handshake). The error
 * thrown carries the first socket/server error, masked, instead of ioredis' "Connection is closed".
 */
export async function openRedis(target: RedisTarget, opts: OpenOptions = {}): Promise<Redis> {
  validateTarget(target);
  registerSecret(target.password);
  const connectTimeout = opts.connectTimeoutMs ?? DEFAULT_TIMEOUT_MS;
  const commandTimeout = opts.commandTimeoutMs ?? DEFAULT_TIMEOUT_MS;
  const auth = opts.auth ?? true;
  // Loaded here, not at the top: a runbook's --help (and every step that talks to no Redis)
  // never pays for ioredis.
  const { Redis } = await import('ioredis');
  const client = new Redis({
    host: target.host,
    port: target.port,
    ...(auth && target.password ? { password: target.password } : {}),
    ...(target.name ? { connectionName: target.name } : {}),
    protocol: 2,
    lazyConnect: true,
    connectTimeout,
    commandTimeout,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    enableOfflineQueue: false,
    enableReadyCheck: auth,
  });
  let firstError: unknown;
  // Without a listener ioredis prints "Unhandled error event" with the raw message.
  client.on('error', (err) => {
    firstError ??= err;
  });
  try {
    await withDeadline(
      client.connect(),
      connectTimeout + commandTimeout,
      `connecting to ${where(target)}`,
    );
    return client;
  } catch (err) {
    client.disconnect();
    const cause = (firstError ?? err) as ProbeError;
    const masked = maskError(new Error(describeRedisError(cause, target)));
    if (cause?.code) Object.assign(masked, { code: cause.code });
    throw masked;
  }
}

async function runProbe<T>(
  body: () => Promise<{ ok: boolean; value: T | undefined; evidence: string; error?: string }>,
): Promise<ProbeResult<T>> {
  const start = performance.now();
  const finish = (r: { ok: boolean; value: T | undefined; evidence: string; error?: string }) => {
    const out: ProbeResult<T> = {
      ok: r.ok,
      value: r.value,
      evidence: maskSecrets(r.evidence),
      durationMs: Math.round((performance.now() - start) * 10) / 10,
    };
    if (r.error !== undefined) out.error = maskSecrets(r.error);
    return out;
  };
  try {
    return finish(await body());
  } catch (err) {
    const message = maskError(err).message;
    return finish({ ok: false, value: undefined, evidence: message, error: message });
  }
}

async function withClient<T>(
  target: RedisTarget,
  opts: OpenOptions,
  fn: (client: Redis) => Promise<T>,
): Promise<T> {
  const client = await openRedis(target, opts);
  try {
    return await fn(client);
  } catch (err) {
    throw new Error(describeRedisError(err, target));
  } finally {
    client.disconnect();
  }
}

function probeKey(kind: string): string {
  return `${PROBE_KEY_PREFIX}${kind}:${Date.now()}:${randomBytes(4).toString('hex')}`;
}

export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0;
  const rank = Math.ceil((p / 100) * sorted.length) - 1;
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank))] ?? 0;
}

function round2(n: number): number {
  return Math.round(n * 100) / 100;
}

export function summarizeLatencies(samplesMs: readonly number[]): LatencySummary {
  const sorted = [...samplesMs].sort((a, b) => a - b);
  return {
    samples: sorted.length,
    p50Ms: round2(percentile(sorted, 50)),
    p95Ms: round2(percentile(sorted, 95)),
    p99Ms: round2(percentile(sorted, 99)),
    maxMs: round2(sorted.at(-1) ?? 0),
  };
}

async function sampleRoundTrips(client: Redis, samples: number): Promise<LatencySummary> {
  const times: number[] = [];
  for (let i = 0; i < samples; i++) {
    const t0 = performance.now();
    await client.ping();
    times.push(performance.now() - t0);
  }
  return summarizeLatencies(times);
}

function formatLatency(l: LatencySummary): string {
  return `${l.samples} round trips: p50 ${l.p50Ms} ms, p95 ${l.p95Ms} ms, p99 ${l.p99Ms} ms, max ${l.maxMs} ms`;
}

/** SC-001/SC-003: connect with the password, PING, SET/GET a probe key (then delete it), and time N round trips. */
export function probeConnectivity(
  target: RedisTarget,
  opts: ProbeOptions & { samples?: number } = {},
): Promise<ProbeResult<ConnectivityValue>> {
  validateTarget(target);
  return runProbe(() =>
    withClient(target, opts, async (client) => {
      const pong = await client.ping();
      const key = probeKey('connectivity');
      const written = randomBytes(8).toString('hex');
      await client.set(key, written, 'EX', PROBE_KEY_TTL_S);
      const read = await client.get(key);
      await client.del(key);
      const latency = await sampleRoundTrips(client, opts.samples ?? 100);
      const setGet = read === written;
      return {
        ok: pong === 'PONG' && setGet,
        value: { pong, setGet, latency },
        evidence: `${where(target)}: PING → ${pong}; SET/GET ${key} ${setGet ? 'matched' : `returned ${JSON.stringify(read)}`}; ${formatLatency(latency)}`,
      };
    }),
  );
}

/** Round-trip latency only (PING), for SC-001/SC-003 as lib/phases/verdicts.ts judges them. */
export function measureLatency(
  target: RedisTarget,
  opts: ProbeOptions & { samples?: number } = {},
): Promise<ProbeResult<LatencySummary>> {
  validateTarget(target);
  return runProbe(() =>
    withClient(target, opts, async (client) => {
      const latency = await sampleRoundTrips(client, opts.samples ?? 100);
      return { ok: true, value: latency, evidence: `${where(target)}: ${formatLatency(latency)}` };
    }),
  );
}

/** SC-008: a connection without the password must be refused — ok only on NOAUTH/WRONGPASS. */
export function probeAuthRequired(
  target: RedisTarget,
  opts: ProbeOptions = {},
): Promise<ProbeResult<AuthRequiredValue>> {
  validateTarget(target);
  return runProbe(async () => {
    const client = await openRedis(target, { ...opts, auth: false });
    try {
      const reply = await client.ping();
      return {
        ok: false,
        value: { reply },
        evidence: `${where(target)} answered PING without a password (${reply}): authentication is NOT enforced`,
      };
    } catch (err) {
      const reply = maskError(err).message;
      const refused = /NOAUTH|WRONGPASS/.test(reply);
      return {
        ok: refused,
        value: { reply },
        evidence: refused
          ? `${where(target)} refused PING without a password: ${reply}`
          : `${where(target)}: no refusal seen, the check failed with ${reply}`,
        ...(refused ? {} : { error: reply }),
      };
    } finally {
      client.disconnect();
    }
  });
}

async function readSection(client: Redis, section: string): Promise<InfoSections> {
  return parseInfo(await client.info(section));
}

/**
 * SC-002, US1 AS-2/AS-3: both sides report a healthy link, the replica follows this primary
 * (same replication ID), and a marker written on the primary is read on the replica in time.
 */
export function probeReplication(
  primary: RedisTarget,
  replica: RedisTarget,
  opts: ProbeOptions & { markerTimeoutMs?: number } = {},
): Promise<ProbeResult<ReplicationValue>> {
  validateTarget(primary);
  validateTarget(replica);
  const markerTimeoutMs = opts.markerTimeoutMs ?? 5000;
  return runProbe(async () => {
    const p = await openRedis(primary, opts).catch((err: Error) => {
      throw new Error(`primary unreachable: ${err.message}`);
    });
    try {
      const r = await openRedis(replica, opts).catch((err: Error) => {
        throw new Error(`replica unreachable: ${err.message}`);
      });
      try {
        const pInfo = await readSection(p, 'replication');
        const rInfo = await readSection(r, 'replication');
        const pRepl = replicationFromInfo(pInfo);
        const rRepl = replicationFromInfo(rInfo);
        const problems: string[] = [];
        if (pRepl.role !== 'master') problems.push(`primary role is ${pRepl.role}, not master`);
        if (pRepl.connectedSlaves < 1) problems.push('primary has no connected replica');
        if (rRepl.role !== 'slave') problems.push(`replica role is ${rRepl.role}, not slave`);
        if (rRepl.role === 'slave' && rRepl.masterLinkStatus !== 'up') {
          problems.push(`replica master_link_status is ${rRepl.masterLinkStatus}`);
        }
        const pId = pInfo.replication?.master_replid;
        const rId = rInfo.replication?.master_replid;
        if (pId && rId && pId !== rId) {
          problems.push(`replica follows replication ID ${rId}, the primary has ${pId}`);
        }
        const offsetLagBytes = Math.max(
          0,
          pRepl.masterReplOffset - (rRepl.slaveReplOffset ?? rRepl.masterReplOffset),
        );

        const key = probeKey('replication');
        const marker = randomBytes(8).toString('hex');
        await p.set(key, marker, 'EX', PROBE_KEY_TTL_S);
        const t0 = performance.now();
        let seenAfter: number | undefined;
        while (performance.now() - t0 < markerTimeoutMs) {
          if ((await r.get(key)) === marker) {
            seenAfter = Math.round(performance.now() - t0);
            break;
          }
          await new Promise((resolve) => setTimeout(resolve, 25));
        }
        await p.del(key);
        if (seenAfter === undefined) {
          problems.push(
            `marker ${key} written on the primary was not on the replica after ${markerTimeoutMs} ms`,
          );
        }
        const value: ReplicationValue = { primary: pRepl, replica: rRepl, offsetLagBytes };
        if (seenAfter !== undefined) value.markerSeenAfterMs = seenAfter;
        const facts = [
          `primary ${where(primary)}: role=${pRepl.role} connected_slaves=${pRepl.connectedSlaves} master_repl_offset=${pRepl.masterReplOffset}`,
          `replica ${where(replica)}: role=${rRepl.role} master_link_status=${rRepl.masterLinkStatus ?? '-'} slave_repl_offset=${rRepl.slaveReplOffset ?? '-'} (lag ${offsetLagBytes} bytes)`,
          seenAfter !== undefined
            ? `marker seen on the replica after ${seenAfter} ms`
            : 'marker not seen on the replica',
        ];
        return {
          ok: problems.length === 0,
          value,
          evidence: [...facts, ...problems.map((x) => `problem: ${x}`)].join('\n'),
          ...(problems.length ? { error: problems.join('; ') } : {}),
        };
      } finally {
        r.disconnect();
      }
    } finally {
      p.disconnect();
    }
  });
}

async function readPersistenceSettings(client: Redis): Promise<PersistenceSettings> {
  const info = persistenceFromInfo(await readSection(client, 'persistence'));
  const settings: PersistenceSettings = { appendonly: info.aofEnabled ? 'yes' : 'no', info };
  try {
    const pairs = (await client.config('GET', 'append*')) as string[];
    const save = (await client.config('GET', 'save')) as string[];
    const cfg: Record<string, string> = {};
    for (let i = 0; i + 1 < pairs.length; i += 2) cfg[pairs[i]!] = pairs[i + 1]!;
    if (cfg.appendonly) settings.appendonly = cfg.appendonly;
    if (cfg.appendfsync) settings.appendfsync = cfg.appendfsync;
    if (save[1] !== undefined) settings.save = save[1];
  } catch {
    // CONFIG may be renamed or disabled on a hardened server; INFO persistence is still evidence.
  }
  return settings;
}

function formatSettings(s: PersistenceSettings): string {
  return `appendonly=${s.appendonly} appendfsync=${s.appendfsync ?? '?'} save="${s.save ?? '?'}" aof_last_write_status=${s.info.aofLastWriteStatus ?? '?'} rdb_last_bgsave_status=${s.info.rdbLastBgsaveStatus ?? '?'}`;
}

/** SC-007, first half: write a marker before the restart. Keep the returned value for the check. */
export function writePersistenceMarker(
  target: RedisTarget,
  opts: ProbeOptions = {},
): Promise<ProbeResult<PersistenceMarker>> {
  validateTarget(target);
  return runProbe(() =>
    withClient(target, opts, async (client) => {
      const key = probeKey('persistence');
      const value = randomBytes(12).toString('hex');
      await client.set(key, value, 'EX', PERSISTENCE_MARKER_TTL_S);
      const settings = await readPersistenceSettings(client);
      const marker: PersistenceMarker = {
        key,
        value,
        writtenAt: new Date().toISOString(),
        settings,
      };
      return {
        ok: true,
        value: marker,
        evidence: `${where(target)}: wrote ${key} at ${marker.writtenAt}; ${formatSettings(settings)}`,
      };
    }),
  );
}

/** SC-007, second half: after the restart, the marker must still hold its value. Removes it. */
export function checkPersistenceMarker(
  target: RedisTarget,
  marker: Pick<PersistenceMarker, 'key' | 'value'>,
  opts: ProbeOptions = {},
): Promise<ProbeResult<PersistenceCheckValue>> {
  validateTarget(target);
  return runProbe(() =>
    withClient(target, opts, async (client) => {
      const read = await client.get(marker.key);
      const settings = await readPersistenceSettings(client);
      const found = read === marker.value;
      if (found) await client.del(marker.key);
      return {
        ok: found,
        value: { found, settings },
        evidence: found
          ? `${where(target)}: marker ${marker.key} survived the restart; ${formatSettings(settings)}`
          : `${where(target)}: marker ${marker.key} was LOST (read ${JSON.stringify(read)}); ${formatSettings(settings)}`,
      };
    }),
  );
}

/** US4: who is connected, with names and addresses (CLIENT LIST). */
export function listClients(
  target: RedisTarget,
  opts: ProbeOptions = {},
): Promise<ProbeResult<ClientInfo[]>> {
  validateTarget(target);
  return runProbe(() =>
    withClient(target, opts, async (client) => {
      const ownId = Number(await client.client('ID'));
      const all = parseClientList(String(await client.client('LIST')));
      const others = all.filter((c) => c.id !== ownId);
      const lines = others.map(
        (c) =>
          `${c.addr} name=${c.name || '-'} age=${c.ageSeconds}s idle=${c.idleSeconds}s cmd=${c.lastCommand}`,
      );
      return {
        ok: true,
        value: others,
        evidence: `${where(target)}: ${others.length} other client(s)${lines.length ? `\n${lines.join('\n')}` : ''}`,
      };
    }),
  );
}

/** INFO (all sections, or one) parsed into typed sections. */
export function readInfo(
  target: RedisTarget,
  opts: ProbeOptions & { section?: string } = {},
): Promise<ProbeResult<InfoSections>> {
  validateTarget(target);
  return runProbe(() =>
    withClient(target, opts, async (client) => {
      const info = parseInfo(opts.section ? await client.info(opts.section) : await client.info());
      const server = info.server ?? {};
      return {
        ok: true,
        value: info,
        evidence: `${where(target)}: INFO ${Object.keys(info).join(', ')}${server.redis_version ? `; redis_version=${server.redis_version}` : ''}`,
      };
    }),
  );
}

/** For the migration report: DBSIZE of the selected db and the keyspace of every db. */
export function countKeys(
  target: RedisTarget,
  opts: ProbeOptions = {},
): Promise<ProbeResult<KeyCountValue>> {
  validateTarget(target);
  return runProbe(() =>
    withClient(target, opts, async (client) => {
      const dbsize = await client.dbsize();
      const keyspace = keyspaceFromInfo(await readSection(client, 'keyspace'));
      return {
        ok: true,
        value: { dbsize, keyspace },
        evidence: `${where(target)}: DBSIZE ${dbsize}${keyspace.map((d) => `; db${d.db} keys=${d.keys} expires=${d.expires}`).join('')}`,
      };
    }),
  );
}
