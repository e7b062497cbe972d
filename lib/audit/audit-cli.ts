import { resolve } from 'node:path';
import { type Config, ConfigError, loadConfig, rawSetting } from '../config.ts';

/** `--log` wins; else AUDIT_LOG from the config. A config error ends the process with exit 2. */
export function resolveAuditLogPath(
  logFlag: string | undefined,
  envFile: string | undefined,
): string {
  if (logFlag) return resolve(logFlag);
  try {
    return loadConfig({ envFile }).auditLog;
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
}

function configOrExit(envFile: string | undefined): Config {
  try {
    return loadConfig({ envFile });
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
}

/**
 * The AUDIT_HMAC_KEY_FILE key, when the settings name one; verify then checks every line's
 * HMAC. A key that is set but unusable ends the process with exit 2: checking without it would
 * call a rewritten log intact.
 */
export async function auditKeyForVerify(envFile: string | undefined): Promise<Buffer | undefined> {
  let file: string | undefined;
  try {
    file = loadConfig({ envFile }).auditHmacKeyFile;
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    // Another setting is invalid: the key is still honoured, or a forged log would pass.
    try {
      file = rawSetting('AUDIT_HMAC_KEY_FILE', { envFile }) || undefined;
    } catch (unreadable) {
      if (!(unreadable instanceof ConfigError)) throw unreadable;
      process.stderr.write(`${unreadable.message}\n`);
      process.exit(2);
    }
  }
  if (file === undefined) return undefined;
  const { AuditKeyError, loadAuditKey } = await import('./audit-hmac.ts');
  try {
    return await loadAuditKey(resolve(file));
  } catch (err) {
    if (!(err instanceof AuditKeyError)) throw err;
    process.stderr.write(`audit: ${err.message}\n`);
    process.exit(2);
  }
}

/** `verify`'s second half: the intact chain against the cluster's anchors; the exit code. */
export async function anchorCheck(
  logPath: string,
  envFile: string | undefined,
  required: boolean,
): Promise<number> {
  const { formatAnchorVerdict, verifyAgainstCluster } = await import('./audit-anchor.ts');
  let cfg: Config;
  try {
    cfg = loadConfig({ envFile });
  } catch (err) {
    // Only the cluster's address needs the settings; the chain was checked without them.
    if (!(err instanceof ConfigError)) throw err;
    if (required) {
      process.stderr.write(`${err.message}\n`);
      return 2;
    }
    process.stdout.write('anchors: not checked, the settings that name the cluster are invalid\n');
    return 0;
  }
  const verdict = await verifyAgainstCluster(cfg, logPath);
  process.stdout.write(`${formatAnchorVerdict(verdict)}\n`);
  if (verdict.status === 'differs') return 1;
  return verdict.status === 'not-checked' && required ? 1 : 0;
}

/** `list --cluster`: the runs and completions every operator left in the cluster. */
export async function listClusterRuns(envFile: string | undefined, json: boolean): Promise<number> {
  const { ClusterRecords } = await import('./cluster-records.ts');
  const { formatClusterRuns } = await import('./audit-anchor.ts');
  const records = new ClusterRecords(configOrExit(envFile));
  try {
    const snapshot = await records.read();
    process.stdout.write(
      json
        ? `${JSON.stringify(snapshot, null, 2)}\n`
        : `${formatClusterRuns(snapshot, records.location)}\n`,
    );
    return 0;
  } catch (err) {
    process.stderr.write(`audit: cannot read ${records.location}: ${(err as Error).message}\n`);
    return 1;
  }
}
