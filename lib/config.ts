// Every setting the runbooks read, validated once into a frozen typed object. Each variable is
// documented in .env.example with the same default as below (a test keeps the two in step).
import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import dotenv from 'dotenv';
import {
  ipInCidr,
  isIPv4,
  isPrivateAddress,
  isPrivateNetwork,
  PRIVATE_NETWORKS,
  parseCidr,
  reservedAddresses,
} from './cluster/network.ts';
import { parseDuration } from './duration.ts';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
/** `node --import` this to run the project's TypeScript (what the runbooks' shebang line does). */
export const TS_LOADER = resolve(REPO_ROOT, 'lib', 'ts-loader', 'register.mjs');

export interface Config {
  kubeContext: string;
  kubeconfig: string | undefined;
  redis: {
    namespace: string;
    release: string;
    port: number;
    lbIp: string;
    metallbPool: string;
    privateCidr: string;
    secretName: string;
    secretKey: string;
    /** a local address outside PRIVATE_CIDR to prove SC-004 from, when the operator has one */
    outsideProbeSource: string | undefined;
  };
  beersystem: { namespace: string; deployment: string; container: string };
  oldRedis: { namespace: string; deployment: string; service: string };
  monitoring: { namespace: string; prometheusService: string; prometheusPort: number };
  tofu: { bin: string; dir: string };
  auditLog: string;
  /** a key file: when set, every audit line carries an HMAC made with it (lib/audit/audit-hmac.ts) */
  auditHmacKeyFile: string | undefined;
  backupsDir: string;
  /** how many redis-shared backups runbooks/backup.mts keeps (the newest) */
  backupKeep: number;
  reportsDir: string;
  /** where 07 (T047) writes the MetalLB address table: a tracked file for the real cluster */
  ipTableFile: string;
  validationWindowMs: number;
  timeouts: { commandMs: number; waitMs: number; lockTtlMs: number };
  /** where the runbooks keep their shared state in the cluster: the Lease lock, the records */
  runbooks: { namespace: string; leaseName: string; recordName: string };
}

export interface ConfigProblem {
  variable: string;
  value: string;
  expected: string;
}

export class ConfigError extends Error {
  readonly problems: ConfigProblem[];
  constructor(problems: ConfigProblem[], source?: string) {
    super(formatProblems(problems, source));
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

type Kind =
  | 'text'
  | 'label'
  | 'secret-key'
  | 'ipv4'
  | 'cidr'
  | 'port'
  | 'count'
  | 'duration'
  | 'timeout'
  | 'path'
  | 'command';

interface Setting {
  kind: Kind;
  default: string;
  optional?: boolean;
}

/** The variables, their kinds and defaults, in the order .env.example documents them. */
export const SETTINGS = {
  KUBE_CONTEXT: { kind: 'text', default: 'chocolandiadc-mvp' },
  KUBECONFIG: { kind: 'path', default: '', optional: true },
  REDIS_NAMESPACE: { kind: 'label', default: 'redis' },
  REDIS_RELEASE: { kind: 'label', default: 'redis-shared' },
  REDIS_PORT: { kind: 'port', default: '6379' },
  REDIS_LB_IP: { kind: 'ipv4', default: '192.168.4.203' },
  METALLB_POOL: { kind: 'label', default: 'eero-pool' },
  PRIVATE_CIDR: { kind: 'cidr', default: '192.168.4.0/24' },
  REDIS_SECRET_NAME: { kind: 'label', default: 'redis-credentials' },
  REDIS_SECRET_KEY: { kind: 'secret-key', default: 'redis-password' },
  OUTSIDE_PROBE_SOURCE: { kind: 'ipv4', default: '', optional: true },
  BEERSYSTEM_NAMESPACE: { kind: 'label', default: 'beersystem' },
  BEERSYSTEM_DEPLOYMENT: { kind: 'label', default: 'beersystem' },
  BEERSYSTEM_CONTAINER: { kind: 'label', default: 'beersystem' },
  OLD_REDIS_NAMESPACE: { kind: 'label', default: 'beersystem' },
  OLD_REDIS_DEPLOYMENT: { kind: 'label', default: 'redis' },
  OLD_REDIS_SERVICE: { kind: 'label', default: 'redis' },
  MONITORING_NAMESPACE: { kind: 'label', default: 'monitoring' },
  PROMETHEUS_SERVICE: { kind: 'label', default: 'kube-prometheus-stack-prometheus' },
  PROMETHEUS_PORT: { kind: 'port', default: '9090' },
  TOFU_BIN: { kind: 'command', default: 'tofu' },
  TOFU_DIR: { kind: 'path', default: 'terraform/environments/chocolandiadc-mvp' },
  AUDIT_LOG: { kind: 'path', default: 'logs/audit.jsonl' },
  AUDIT_HMAC_KEY_FILE: { kind: 'path', default: '', optional: true },
  BACKUP_DIR: { kind: 'path', default: 'logs/backups' },
  BACKUP_KEEP: { kind: 'count', default: '7' },
  REPORT_DIR: { kind: 'path', default: 'logs/reports' },
  IP_TABLE_FILE: { kind: 'path', default: 'docs/ip-assignments.md' },
  VALIDATION_WINDOW: { kind: 'duration', default: '24h' },
  COMMAND_TIMEOUT: { kind: 'timeout', default: '2m' },
  WAIT_TIMEOUT: { kind: 'timeout', default: '5m' },
  LOCK_TTL: { kind: 'timeout', default: '15s' },
  RUNBOOKS_NAMESPACE: { kind: 'label', default: 'default' },
  RUNBOOKS_LEASE_NAME: { kind: 'label', default: 'redis-shared-runbooks' },
  RUNBOOKS_RECORD_NAME: { kind: 'label', default: 'redis-shared-runbooks' },
} as const satisfies Record<string, Setting>;

export type SettingName = keyof typeof SETTINGS;

// Node's timers fire at once for anything longer (about 24.8 days), so a timeout above it would
// expire immediately instead of never.
const MAX_TIMER_MS = 2 ** 31 - 1;
const MIN_VALIDATION_WINDOW_MS = 24 * 3_600_000;

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const SECRET_KEY = /^[-._a-zA-Z0-9]+$/;

const EXPECTED: Record<Kind, string> = {
  text: 'a non-empty value',
  label: 'a DNS-1123 label: lowercase letters, digits and "-", 1–63 characters, e.g. redis-shared',
  'secret-key': 'a Secret data key: letters, digits, "-", "_" or ".", e.g. redis-password',
  ipv4: 'an IPv4 address, four numbers 0–255, e.g. 192.168.4.203',
  cidr: 'an IPv4 network in CIDR form, prefix 0–32, no host bits set, e.g. 192.168.4.0/24',
  port: 'a TCP port, a whole number 1–65535, e.g. 6379',
  count: 'a whole number of at least 1, e.g. 7',
  duration: 'a duration such as 90s, 5m, 24h, 1h30m (units ms, s, m, h, d)',
  timeout: 'a duration above zero and at most 24d, such as 90s, 5m, 1h30m (units ms, s, m, h, d)',
  path: 'a file or directory path',
  command: 'a command name or path, e.g. tofu',
};

function checkValue(kind: Kind, value: string): string | undefined {
  if (value === '') return 'must not be empty';
  switch (kind) {
    case 'label':
      return value.length <= 63 && DNS1123_LABEL.test(value) ? undefined : 'invalid';
    case 'secret-key':
      return SECRET_KEY.test(value) ? undefined : 'invalid';
    case 'ipv4':
      return isIPv4(value) ? undefined : 'invalid';
    case 'cidr':
      return parseCidr(value) ? undefined : 'invalid';
    case 'port': {
      const n = Number(value);
      return /^\d+$/.test(value) && n >= 1 && n <= 65535 ? undefined : 'invalid';
    }
    case 'count':
      return /^\d+$/.test(value) && Number(value) >= 1 ? undefined : 'invalid';
    case 'duration':
      return parseDuration(value) !== undefined ? undefined : 'invalid';
    case 'timeout': {
      const ms = parseDuration(value);
      return ms !== undefined && ms > 0 && ms <= MAX_TIMER_MS ? undefined : 'invalid';
    }
    default:
      return undefined;
  }
}

export interface LoadConfigOptions {
  /** A dotenv file to read; it must exist. Without it, `<repo>/.env` is read when present. */
  envFile?: string;
  /** The process environment (wins over the file). */
  env?: Record<string, string | undefined>;
}

/**
 * One setting as given (environment, then the env file, then its default), unchecked, with a
 * path resolved as loadConfig resolves it: for readers that must honour a setting even when
 * others are invalid (audit verify and AUDIT_HMAC_KEY_FILE).
 */
export function rawSetting(name: SettingName, options: LoadConfigOptions = {}): string {
  const env = options.env ?? process.env;
  const value = (
    env[name] ??
    readEnvFile(options.envFile).values[name] ??
    SETTINGS[name].default
  ).trim();
  if (value === '' || SETTINGS[name].kind !== 'path') return value;
  return isAbsolute(value) ? value : resolve(REPO_ROOT, value);
}

/**
 * The settings the process environment gives and the env file (or the default) would not: a
 * command printed for an operator to paste carries them, or it would act on another cluster or
 * another audit log than the run that printed it.
 */
export function settingsFromEnvironment(options: LoadConfigOptions = {}): Record<string, string> {
  const env = options.env ?? process.env;
  const fromFile = readEnvFile(options.envFile).values;
  const given: Record<string, string> = {};
  for (const [name, setting] of Object.entries(SETTINGS) as [SettingName, Setting][]) {
    const value = env[name];
    if (value === undefined) continue;
    if (value.trim() !== (fromFile[name] ?? setting.default).trim()) given[name] = value;
  }
  return given;
}

/** Reads the env file and the environment, validates every setting, and throws ConfigError with all problems at once. */
export function loadConfig(options: LoadConfigOptions = {}): Config {
  const env = options.env ?? process.env;
  const fromFile = readEnvFile(options.envFile);
  const raw = {} as Record<SettingName, string>;
  const problems: ConfigProblem[] = [];

  for (const [name, setting] of Object.entries(SETTINGS) as [SettingName, Setting][]) {
    const value = (env[name] ?? fromFile.values[name] ?? setting.default).trim();
    raw[name] = value;
    if (setting.optional && value === '') continue;
    const problem = checkValue(setting.kind, value);
    if (problem) {
      problems.push({
        variable: name,
        value,
        expected:
          problem === 'must not be empty'
            ? `${EXPECTED[setting.kind]}; it must not be empty`
            : EXPECTED[setting.kind],
      });
    }
  }

  problems.push(...networkProblems(raw.PRIVATE_CIDR, raw.REDIS_LB_IP));
  // The module and the chart serve Redis on 6379 only: another port would move the runbooks'
  // checks but not the cluster, so it is refused rather than half-honoured.
  if (raw.REDIS_PORT !== SETTINGS.REDIS_PORT.default && !checkValue('port', raw.REDIS_PORT)) {
    problems.push({
      variable: 'REDIS_PORT',
      value: raw.REDIS_PORT,
      expected: `${SETTINGS.REDIS_PORT.default}: terraform/modules/redis-shared serves Redis on ${SETTINGS.REDIS_PORT.default} only (services.tf, values.yaml.tftpl); remove the setting`,
    });
  }
  const window = parseDuration(raw.VALIDATION_WINDOW);
  if (window !== undefined && window < MIN_VALIDATION_WINDOW_MS) {
    problems.push({
      variable: 'VALIDATION_WINDOW',
      value: raw.VALIDATION_WINDOW,
      expected:
        'a duration of at least 24h (the spec asks for 24 hours of proof before the old Redis is removed); to go ahead sooner, use --override-gate "<reason>" on that run, which audits the reason',
    });
  }

  if (problems.length > 0) throw new ConfigError(problems, fromFile.path);

  // Relative paths are the repository's, so a runbook behaves the same from any directory.
  const path = (p: string) => (isAbsolute(p) ? p : resolve(REPO_ROOT, p));
  const duration = (name: SettingName) => parseDuration(raw[name]) as number;

  return deepFreeze({
    kubeContext: raw.KUBE_CONTEXT,
    kubeconfig: raw.KUBECONFIG === '' ? undefined : path(raw.KUBECONFIG),
    redis: {
      namespace: raw.REDIS_NAMESPACE,
      release: raw.REDIS_RELEASE,
      port: Number(raw.REDIS_PORT),
      lbIp: raw.REDIS_LB_IP,
      metallbPool: raw.METALLB_POOL,
      privateCidr: raw.PRIVATE_CIDR,
      secretName: raw.REDIS_SECRET_NAME,
      secretKey: raw.REDIS_SECRET_KEY,
      outsideProbeSource: raw.OUTSIDE_PROBE_SOURCE === '' ? undefined : raw.OUTSIDE_PROBE_SOURCE,
    },
    beersystem: {
      namespace: raw.BEERSYSTEM_NAMESPACE,
      deployment: raw.BEERSYSTEM_DEPLOYMENT,
      container: raw.BEERSYSTEM_CONTAINER,
    },
    oldRedis: {
      namespace: raw.OLD_REDIS_NAMESPACE,
      deployment: raw.OLD_REDIS_DEPLOYMENT,
      service: raw.OLD_REDIS_SERVICE,
    },
    monitoring: {
      namespace: raw.MONITORING_NAMESPACE,
      prometheusService: raw.PROMETHEUS_SERVICE,
      prometheusPort: Number(raw.PROMETHEUS_PORT),
    },
    tofu: {
      bin: raw.TOFU_BIN.includes('/') ? path(raw.TOFU_BIN) : raw.TOFU_BIN,
      dir: path(raw.TOFU_DIR),
    },
    auditLog: path(raw.AUDIT_LOG),
    auditHmacKeyFile: raw.AUDIT_HMAC_KEY_FILE === '' ? undefined : path(raw.AUDIT_HMAC_KEY_FILE),
    backupsDir: path(raw.BACKUP_DIR),
    backupKeep: Number(raw.BACKUP_KEEP),
    reportsDir: path(raw.REPORT_DIR),
    ipTableFile: path(raw.IP_TABLE_FILE),
    validationWindowMs: duration('VALIDATION_WINDOW'),
    timeouts: {
      commandMs: duration('COMMAND_TIMEOUT'),
      waitMs: duration('WAIT_TIMEOUT'),
      lockTtlMs: duration('LOCK_TTL'),
    },
    runbooks: {
      namespace: raw.RUNBOOKS_NAMESPACE,
      leaseName: raw.RUNBOOKS_LEASE_NAME,
      recordName: raw.RUNBOOKS_RECORD_NAME,
    },
  });
}

const PRIVATE_ONLY = `a private network: inside ${PRIVATE_NETWORKS.slice(0, 3).join(', ')} (RFC 1918) or ${PRIVATE_NETWORKS[3]} (loopback)`;

// The LoadBalancer's source ranges come from PRIVATE_CIDR: a public range would open Redis to
// the internet.
function networkProblems(cidrText: string, lbIp: string): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  const cidr = parseCidr(cidrText);
  if (cidr && !isPrivateNetwork(cidr)) {
    problems.push({
      variable: 'PRIVATE_CIDR',
      value: cidrText,
      expected: `${PRIVATE_ONLY}, e.g. 192.168.4.0/24; it becomes the LoadBalancer's allowed source range`,
    });
  }
  if (!isIPv4(lbIp)) return problems;
  if (!isPrivateAddress(lbIp)) {
    problems.push({
      variable: 'REDIS_LB_IP',
      value: lbIp,
      expected: `an address in ${PRIVATE_ONLY}`,
    });
  } else if (cidr && !ipInCidr(lbIp, cidr)) {
    problems.push({
      variable: 'REDIS_LB_IP',
      value: lbIp,
      expected: `an address inside PRIVATE_CIDR ${cidrText}, where the private network can reach it`,
    });
  } else if (cidr && reservedAddresses(cidr).includes(lbIp)) {
    problems.push({
      variable: 'REDIS_LB_IP',
      value: lbIp,
      expected: `a host address inside PRIVATE_CIDR ${cidrText}, not the network or broadcast address of ${cidrText}`,
    });
  }
  return problems;
}

function readEnvFile(envFile: string | undefined): {
  path: string | undefined;
  values: Record<string, string>;
} {
  const path = envFile ? resolve(envFile) : resolve(REPO_ROOT, '.env');
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if (!envFile && (err as NodeJS.ErrnoException).code === 'ENOENT') {
      return { path: undefined, values: {} };
    }
    throw new ConfigError([
      {
        variable: '--env-file',
        value: envFile ?? path,
        expected: `a readable dotenv file (${(err as NodeJS.ErrnoException).code ?? 'unreadable'}); copy .env.example to start one`,
      },
    ]);
  }
  return { path, values: dotenv.parse(text) };
}

function formatProblems(problems: ConfigProblem[], source?: string): string {
  const from = source ? ` (read from ${source} and the environment)` : '';
  const lines = problems.map(
    (p) => `  ${p.variable}=${JSON.stringify(p.value)}: expected ${p.expected}`,
  );
  const noun = problems.length === 1 ? 'setting is' : 'settings are';
  return [
    `${problems.length} ${noun} invalid${from}:`,
    ...lines,
    'Fix them in .env (or the file given with --env-file); .env.example documents each one.',
  ].join('\n');
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object') {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}
