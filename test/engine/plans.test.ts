// The runbooks' private plan directory: 0700, one subdirectory per owner (run or attempt), and
// everything but the kept owners removed by the next run. Issue: plans stayed in $TMPDIR after a
// SIGKILL and nothing removed them.
import { existsSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { loadConfig } from '../../lib/config.ts';
import { planDirOf, planOwners, plansRoot, removePlans } from '../../lib/engine/plans.ts';
import { makeRunbookEnv } from '../helpers/runbook-env.ts';

t.test('private, per owner, and removed unless kept', async (t) => {
  const place = makeRunbookEnv(t);
  const cfg = loadConfig({ env: place.env });
  const open = planDirOf(cfg, 'run-open');
  const dead = planDirOf(cfg, 'run-dead');
  writeFileSync(join(open, 'a.tfplan'), 'plan', { mode: 0o600 });
  writeFileSync(join(dead, 'b.tfplan'), 'plan', { mode: 0o600 });
  t.equal(statSync(plansRoot(cfg)).mode & 0o777, 0o700, 'the root is private');
  t.equal(statSync(open).mode & 0o777, 0o700, 'each owner’s directory is private');
  t.equal(plansRoot(cfg), join(place.dir, 'logs', 'plans'), 'beside the audit log, not in TMPDIR');
  t.same(planOwners(cfg).sort(), ['run-dead', 'run-open']);
  t.same(removePlans(cfg, new Set(['run-open'])), ['run-dead']);
  t.ok(existsSync(join(open, 'a.tfplan')), 'the open attempt’s plan stays');
  t.notOk(existsSync(dead), 'a dead run’s plan is gone');
  t.throws(() => planDirOf(cfg, '../elsewhere'), /a plan owner is a run id/);
});
