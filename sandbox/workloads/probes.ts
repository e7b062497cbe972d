// Probes as the chart and the apps define them: Redis answers PING (after AUTH), an HTTP
// endpoint answers 200; and the kubelet's probe handlers for the chart's Redis containers, where
// an exec probe is emulated by what its script checks.
import { connect } from 'node:net';

const PROBE_TIMEOUT_MS = 1000;

/** True when the Redis at host:port answers PONG, authenticating first when a password is set. */
export function redisPing(host: string, port: number, password?: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    let reply = '';
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(PROBE_TIMEOUT_MS, () => done(false));
    socket.on('error', () => done(false));
    socket.on('connect', () => {
      const commands = password ? [resp(['AUTH', password]), resp(['PING'])] : [resp(['PING'])];
      socket.write(commands.join(''));
    });
    socket.on('data', (chunk) => {
      reply += chunk.toString('utf8');
      if (reply.includes('+PONG')) done(true);
      else if (reply.includes('-')) done(false);
    });
  });
}

/**
 * True when a replica's link to its master is up, as the chart's replica readiness probe
 * (which also pings the master) would have it.
 */
export async function replicaLinkUp(
  host: string,
  port: number,
  password?: string,
): Promise<boolean> {
  const info = await redisReply(host, port, password, ['INFO', 'replication']);
  return /master_link_status:up/.test(info);
}

/** The reply to one command (after AUTH when a password is set), as raw protocol text. */
function redisReply(
  host: string,
  port: number,
  password: string | undefined,
  words: string[],
): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    let reply = '';
    const done = (text: string) => {
      socket.destroy();
      resolve(text);
    };
    socket.setTimeout(PROBE_TIMEOUT_MS, () => done(''));
    socket.on('error', () => done(''));
    socket.on('connect', () =>
      socket.write(`${password ? resp(['AUTH', password]) : ''}${resp(words)}`),
    );
    socket.on('data', (chunk) => {
      reply += chunk.toString('utf8');
      const body = password ? reply.replace(/^\+OK\r\n/, '') : reply;
      if (body.startsWith('-')) done(body);
      const bulk = /^\$(\d+)\r\n/.exec(body);
      if (bulk && Buffer.byteLength(body) >= bulk[0].length + Number(bulk[1]) + 2) done(body);
    });
  });
}

export async function httpOk(url: string): Promise<boolean> {
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(PROBE_TIMEOUT_MS) });
    await response.arrayBuffer();
    return response.status === 200;
  } catch {
    return false;
  }
}

/** One command in the Redis protocol. */
export function resp(words: string[]): string {
  return `*${words.length}\r\n${words.map((w) => `$${Buffer.byteLength(w)}\r\n${w}\r\n`).join('')}`;
}

/** A container probe as the API stores it (core/v1 Probe). */
export interface ProbeSpec {
  initialDelaySeconds?: number;
  periodSeconds?: number;
  timeoutSeconds?: number;
  successThreshold?: number;
  failureThreshold?: number;
  exec?: { command?: string[] };
  tcpSocket?: { port: number | string };
  httpGet?: { path?: string; port: number | string };
}

/** What a Redis container's probes reach: its own server and, for a replica, its master. */
export interface RedisProbeTargets {
  local: { host: string; port: number; password?: string };
  /** The master as REDIS_MASTER_HOST resolves from the pod now (undefined: the name does not resolve). */
  master?: () => { host: string; port: number; password?: string } | undefined;
  /** The pod's address: the script runs in the pod, so its connections come from there. */
  podIP: string;
  /** True when the pod's own connections are cut (`fault partition`). */
  cut: () => boolean;
  /** Where a probe the sandbox cannot emulate is reported. */
  report: (line: string) => void;
}

/**
 * The chart's health scripts (templates/health-configmap.yaml of bitnami/redis 23.1.1, copied in
 * ../tofu/chart-scripts.ts), by what each checks with `redis-cli ping` under `timeout <arg>`:
 * ping_readiness_local.sh — the local server answers PONG; ping_liveness_local.sh — PONG, or a
 * reply starting LOADING or MASTERDOWN; ping_readiness_master.sh — the master (REDIS_MASTER_HOST,
 * with the master password) answers PONG; ping_liveness_master.sh — PONG or LOADING; the
 * `_local_and_master` scripts run both and fail when either fails.
 */
const HEALTH_SCRIPT =
  /\/health\/ping_(readiness|liveness)_(local_and_master|local|master)\.sh\s+(\d+)/;

/** Runs one probe of a chart Redis container; false on failure or after `timeoutSeconds`. */
export async function redisContainerProbe(
  probe: ProbeSpec,
  targets: RedisProbeTargets,
  namedPorts: Record<string, number>,
): Promise<boolean> {
  const timeoutMs = (probe.timeoutSeconds ?? 1) * 1000;
  return withTimeout(runHandler(probe, targets, namedPorts), timeoutMs);
}

async function runHandler(
  probe: ProbeSpec,
  targets: RedisProbeTargets,
  namedPorts: Record<string, number>,
): Promise<boolean> {
  const port = (p: number | string) => (typeof p === 'number' ? p : (namedPorts[p] ?? Number(p)));
  if (probe.tcpSocket) return tcpOpen(targets.local.host, port(probe.tcpSocket.port));
  if (probe.httpGet)
    return httpOk(
      `http://${targets.local.host}:${port(probe.httpGet.port)}${probe.httpGet.path ?? '/'}`,
    );
  const command = (probe.exec?.command ?? []).join(' ');
  const script = HEALTH_SCRIPT.exec(command);
  if (!script) {
    targets.report(
      `sandbox: cannot emulate the probe command ${JSON.stringify(command)}; counted as failed`,
    );
    return false;
  }
  const [, kind, scope, seconds] = script;
  const limitMs = Number(seconds) * 1000;
  const accepted =
    kind === 'readiness'
      ? (reply: string, _master: boolean) => reply === '+PONG'
      : (reply: string, master: boolean) =>
          reply === '+PONG' ||
          reply.startsWith('-LOADING') ||
          (!master && reply.startsWith('-MASTERDOWN'));
  const checks: Promise<boolean>[] = [];
  if (scope !== 'master') {
    const { host, port: p, password } = targets.local;
    checks.push(pingReply(host, p, password, limitMs).then((r) => accepted(r, false)));
  }
  if (scope !== 'local') {
    const master = targets.master?.();
    // The pod's own path to the master is cut, or its name does not resolve: redis-cli fails.
    if (!master || targets.cut()) checks.push(Promise.resolve(false));
    else
      checks.push(
        pingReply(master.host, master.port, master.password, limitMs, targets.podIP).then((r) =>
          accepted(r, true),
        ),
      );
  }
  return (await Promise.all(checks)).every(Boolean);
}

function withTimeout(work: Promise<boolean>, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    work.then(
      (ok) => {
        clearTimeout(timer);
        resolve(ok);
      },
      () => {
        clearTimeout(timer);
        resolve(false);
      },
    );
  });
}

function tcpOpen(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    socket.on('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.on('error', () => resolve(false));
  });
}

/** The first line of the reply to PING (after AUTH with the password), '' when none came in time. */
function pingReply(
  host: string,
  port: number,
  password: string | undefined,
  ms: number,
  localAddress?: string,
): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect({ host, port, ...(localAddress ? { localAddress } : {}) });
    let reply = '';
    const done = (line: string) => {
      socket.destroy();
      resolve(line);
    };
    socket.setTimeout(ms, () => done(''));
    socket.on('error', () => done(''));
    socket.on('connect', () =>
      socket.write(`${password ? resp(['AUTH', password]) : ''}${resp(['PING'])}`),
    );
    socket.on('data', (chunk) => {
      reply += chunk.toString('utf8');
      const lines = reply.split('\r\n');
      // With a password the first line answers AUTH (+OK, or an error that the PING repeats).
      const wanted = password ? 2 : 1;
      if (lines.length > wanted) done(lines[wanted - 1] ?? '');
    });
  });
}
