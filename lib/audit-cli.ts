import { resolve } from 'node:path';
import { ConfigError, loadConfig } from './config.ts';

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
