// The in-cluster checks of 03-access (US1, SC-001, SC-002) run as short-lived Jobs in the
// beersystem namespace, as an application pod would connect: the password comes from the Secret
// by secretKeyRef into the container's environment, never as a literal in the Job spec. Their
// output is sections a parser turns into evidence.
import { parseRedisBenchmarkCsv, type RedisBenchmarkRow } from '../redis/bench.ts';
import { parseInfo, type ReplicationInfo, replicationFromInfo } from '../redis/redis-info.ts';

export interface ProbeJobInput {
  name: string;
  namespace: string;
  /** an image with sh, redis-cli and redis-benchmark (the Redis image the release runs) */
  image: string;
  secretName: string;
  secretKey: string;
  masterHost: string;
  replicaHost: string;
  port: number;
  /** the replicas Service's port, when it differs */
  replicaPort?: number;
  /** a unique key for the SET/GET and the replication marker */
  probeKey: string;
  /** round trips timed by redis-benchmark (SC-001) */
  roundTrips: number;
}

// redis-cli reads REDISCLI_AUTH; redis-benchmark 7 has no such variable, so it gets the
// password as "$REDIS_PASSWORD", expanded inside the container's shell (FACTS: redis-benchmark).
const PASSWORD_ENV = 'REDIS_PASSWORD';

function section(name: string): string {
  return `echo "==${name}=="`;
}

/** The shell script of the probe Job. Every value in it is a name, a host or a number. */
export function probeScript(input: ProbeJobInput): string {
  const { masterHost: m, replicaHost: r, port, probeKey: key, roundTrips } = input;
  const rPort = input.replicaPort ?? port;
  const cli = (host: string) =>
    `redis-cli --no-auth-warning -h ${host} -p ${host === r ? rPort : port}`;
  return [
    'export REDISCLI_AUTH="$REDIS_PASSWORD"',
    section('dns'),
    `getent hosts ${m} || echo "unresolved ${m}"`,
    section('ping'),
    `${cli(m)} PING`,
    section('set'),
    `${cli(m)} SET ${key} "$HOSTNAME" EX 300`,
    section('get'),
    `${cli(m)} GET ${key}`,
    section('bench'),
    `redis-benchmark -h ${m} -p ${port} -a "$${PASSWORD_ENV}" -c 1 -n ${roundTrips} -t set,get --csv 2>/dev/null`,
    section('info-replica'),
    // A replica deployed moments ago may still be in its first sync: its link is given the
    // marker's 5 s to come up before its INFO is taken (the same INFO at once otherwise), and
    // the master's INFO, which counts its replicas, is taken after it.
    'i=0',
    `while [ $i -lt 50 ]; do s=$(${cli(r)} INFO replication); case "$s" in *master_link_status:up*) break ;; esac; i=$((i+1)); sleep 0.1; done`,
    'printf \'%s\\n\' "$s"',
    section('info-master'),
    `${cli(m)} INFO replication`,
    section('marker'),
    // US1 AS-2: the marker written on the master, read on the replica (asynchronous: retried).
    'i=0',
    `while [ $i -lt 50 ]; do v=$(${cli(r)} GET ${key}); [ "$v" = "$HOSTNAME" ] && break; i=$((i+1)); sleep 0.1; done`,
    'echo "tries=$i value=$v"',
    `${cli(m)} DEL ${key} >/dev/null`,
    section('end'),
  ].join('\n');
}

// biome-ignore lint/suspicious/noExplicitAny: a plain JSON manifest
type Manifest = Record<string, any>;

function jobManifest(
  name: string,
  namespace: string,
  image: string,
  script: string,
  secret: { name: string; key: string },
  deadlineSeconds: number,
): Manifest {
  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: {
      name,
      namespace,
      labels: {
        'app.kubernetes.io/name': 'redis-shared-probe',
        'app.kubernetes.io/part-of': 'redis-shared',
      },
    },
    spec: {
      backoffLimit: 0,
      activeDeadlineSeconds: deadlineSeconds,
      ttlSecondsAfterFinished: 600,
      template: {
        metadata: { labels: { 'app.kubernetes.io/name': 'redis-shared-probe' } },
        spec: {
          restartPolicy: 'Never',
          containers: [
            {
              name: 'probe',
              image,
              command: ['sh', '-c', script],
              env: [
                {
                  name: PASSWORD_ENV,
                  valueFrom: { secretKeyRef: { name: secret.name, key: secret.key } },
                },
              ],
            },
          ],
        },
      },
    },
  };
}

export function probeJobManifest(input: ProbeJobInput): Manifest {
  return jobManifest(
    input.name,
    input.namespace,
    input.image,
    probeScript(input),
    { name: input.secretName, key: input.secretKey },
    300,
  );
}

export interface ProbeOutput {
  /** the address the master's name resolved to, or undefined */
  resolved: string | undefined;
  pong: boolean;
  setOk: boolean;
  getMatched: boolean;
  bench: RedisBenchmarkRow[];
  master: ReplicationInfo;
  replica: ReplicationInfo;
  /** tries until the marker was read on the replica (each 100 ms apart), or undefined */
  markerTries: number | undefined;
  /** the script ran to its end */
  complete: boolean;
}

export function splitSections(log: string): Record<string, string> {
  const out: Record<string, string> = {};
  let current: string | undefined;
  for (const line of log.split(/\r?\n/)) {
    const header = /^==([a-z-]+)==$/.exec(line.trim());
    if (header) {
      current = header[1] as string;
      out[current] = '';
    } else if (current !== undefined) {
      out[current] += `${line}\n`;
    }
  }
  return out;
}

/** Parses the probe Job's log; anything missing parses as a failed check, never as success. */
export function parseProbeOutput(log: string, hostname?: string): ProbeOutput {
  const s = splitSections(log);
  const text = (name: string) => (s[name] ?? '').trim();
  const dns = text('dns');
  let bench: RedisBenchmarkRow[] = [];
  try {
    bench = parseRedisBenchmarkCsv(s.bench ?? '');
  } catch {
    bench = [];
  }
  const marker = /tries=(\d+) value=(.*)$/m.exec(s.marker ?? '');
  const markerSeen =
    marker !== null &&
    Number(marker[1]) < 50 &&
    (marker[2] ?? '') !== '' &&
    (hostname === undefined || marker[2] === hostname);
  const get = text('get');
  return {
    resolved: dns === '' || dns.startsWith('unresolved') ? undefined : dns.split(/\s+/)[0],
    pong: text('ping') === 'PONG',
    setOk: text('set') === 'OK',
    getMatched:
      get !== '' && (hostname === undefined || get === hostname) && !/ERR|NOAUTH/.test(get),
    bench,
    master: replicationFromInfo(parseInfo(s['info-master'] ?? '')),
    replica: replicationFromInfo(parseInfo(s['info-replica'] ?? '')),
    markerTries: markerSeen ? Number(marker?.[1]) : undefined,
    complete: Object.hasOwn(s, 'end'),
  };
}

export interface ReadLoopInput {
  name: string;
  namespace: string;
  image: string;
  secretName: string;
  secretKey: string;
  replicaHost: string;
  port: number;
  /** read until this value is found under `doneKey` (written to the master after the restore) */
  markerKey: string;
  doneKey: string;
  /** stop anyway after this long */
  maxSeconds: number;
}

/** The line the read loop prints once the replica has the marker: the drill may stop the master. */
export const MARKER_SEEN = 'marker seen on the replica';

/**
 * SC-002: reads from the replica every 200 ms, until the done key (written to the master once
 * it is back) has replicated — which also proves the link healthy again. Reads are counted from
 * the first one that finds the marker (MARKER_SEEN is printed then): before it, the replica is
 * still catching up and the master has not been stopped. Prints each failed read and a tally.
 */
export function readLoopScript(input: ReadLoopInput): string {
  const cli = `redis-cli --no-auth-warning -h ${input.replicaHost} -p ${input.port}`;
  return [
    'export REDISCLI_AUTH="$REDIS_PASSWORD"',
    'ok=0; failed=0; seen=0; start=$(date +%s)',
    'while :; do',
    `  v=$(${cli} GET ${input.markerKey} 2>&1)`,
    '  case "$v" in',
    '    ""|ERR*|NOAUTH*|WRONGPASS*|"Could not"*|*rror*)',
    '      if [ $seen = 1 ]; then failed=$((failed+1)); echo "read failed: $v"; fi ;;',
    `    *) ok=$((ok+1)); if [ $seen = 0 ]; then seen=1; echo "${MARKER_SEEN}"; fi ;;`,
    '  esac',
    `  [ "$(${cli} GET ${input.doneKey} 2>/dev/null)" = "done" ] && break`,
    `  [ $(( $(date +%s) - start )) -ge ${input.maxSeconds} ] && { echo "gave up after ${input.maxSeconds}s"; break; }`,
    '  sleep 0.2',
    'done',
    'echo "reads ok=$ok failed=$failed"',
  ].join('\n');
}

export function readLoopJobManifest(input: ReadLoopInput): Manifest {
  return jobManifest(
    input.name,
    input.namespace,
    input.image,
    readLoopScript(input),
    { name: input.secretName, key: input.secretKey },
    input.maxSeconds + 60,
  );
}

export interface ReadLoopOutput {
  ok: number;
  failed: number;
  /** the done key was seen: the replica follows the restored master again */
  sawDone: boolean;
}

export function parseReadLoopOutput(log: string): ReadLoopOutput | undefined {
  const tally = /^reads ok=(\d+) failed=(\d+)$/m.exec(log);
  if (!tally) return undefined;
  return {
    ok: Number(tally[1]),
    failed: Number(tally[2]),
    sawDone: !/^gave up after/m.test(log),
  };
}

/** Nothing in a manifest may carry the password as a literal (env value, argv). */
export function manifestHasLiteral(manifest: Manifest, secret: string): boolean {
  return secret !== '' && JSON.stringify(manifest).includes(secret);
}
