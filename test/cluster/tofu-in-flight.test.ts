// An OpenTofu apply still running in the working directory (a killed run's, finishing) is found,
// so 05 waits for it before T039/R03 instead of applying again beside it.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import {
  describeInFlight,
  STATE_LOCK_INFO,
  stateLockInfo,
  tofuProcessesIn,
} from '../../lib/cluster/tofu-in-flight.ts';
import { waitUntil } from '../helpers/wait.ts';

t.test(
  'a live apply in the working directory is found, with the state lock it holds',
  async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'tofu-in-flight-'));
    const other = mkdtempSync(join(tmpdir(), 'tofu-elsewhere-'));
    t.teardown(() => {
      rmSync(dir, { recursive: true, force: true });
      rmSync(other, { recursive: true, force: true });
    });
    const start = (cwd: string) =>
      spawn(process.execPath, ['-e', 'setTimeout(() => {}, 300000)', '/x/tofu/main.ts', 'apply'], {
        cwd,
        stdio: 'ignore',
      });
    const apply = start(dir);
    const elsewhere = start(other);
    t.teardown(() => {
      apply.kill('SIGKILL');
      elsewhere.kill('SIGKILL');
    });
    await waitUntil('the apply to show in /proc', () => tofuProcessesIn(dir, 'tofu').length > 0, {
      timeoutMs: 30_000,
      intervalMs: 50,
    });
    t.same(
      tofuProcessesIn(dir, 'tofu').map((p) => p.pid),
      [apply.pid],
      'only the one in this directory',
    );
    writeFileSync(
      join(dir, STATE_LOCK_INFO),
      JSON.stringify({
        ID: 'abc-123',
        Operation: 'OperationTypeApply',
        Who: 'alice@laptop',
        Created: '2026-12-06T02:00:00Z',
      }),
    );
    t.match(
      describeInFlight(tofuProcessesIn(dir, 'tofu'), stateLockInfo(dir)),
      /^pid \d+ \(.*apply\); the state lock abc-123 is held for OperationTypeApply by alice@laptop since 2026-12-06T02:00:00Z$/,
    );
    apply.kill('SIGKILL');
    await waitUntil('the apply to end', () => tofuProcessesIn(dir, 'tofu').length === 0, {
      timeoutMs: 30_000,
      intervalMs: 50,
    });
    t.ok(stateLockInfo(dir), 'a stale lock info file alone is not an apply in flight');
  },
);
