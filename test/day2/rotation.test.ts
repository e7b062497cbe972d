// The password rotation's judgement on plain values: a plan that replaces the password and only
// updates its Secret copies, the downtime a Deployment's restart costs, the refusal a wrong
// password gets, and the writer's figures.
import t from 'tap';
import type { TofuChange } from '../../lib/cluster/tofu.ts';
import { EVIDENCE_IDS } from '../../lib/names.ts';
import {
  describeWrites,
  isWrongPassword,
  judgeRotationPlan,
  lostWrites,
  PASSWORD_ADDRESS,
  ROTATION_EVIDENCE,
  restartCost,
  rotationMet,
  SECRET_COPIES_ADDRESS,
  scaledValue,
  type WriterTally,
} from '../../lib/phases/rotation.ts';

const copy = (ns: string, action: TofuChange['action'] = 'update'): TofuChange => ({
  address: `${SECRET_COPIES_ADDRESS}["${ns}"]`,
  type: 'kubernetes_secret_v1',
  action,
});
const password = (action: TofuChange['action'] = 'replace'): TofuChange => ({
  address: PASSWORD_ADDRESS,
  type: 'random_password',
  action,
});

t.test('a rotation plan replaces the password and updates every Secret copy', async (t) => {
  const v = judgeRotationPlan([password(), copy('beersystem'), copy('redis')]);
  t.ok(v.ok, v.problems.join('; '));
  t.same(v.copies, [`${SECRET_COPIES_ADDRESS}["beersystem"]`, `${SECRET_COPIES_ADDRESS}["redis"]`]);
});

t.test('a plan that does not replace the password, or does more, is refused', async (t) => {
  t.same(judgeRotationPlan([password('no-op'), copy('redis', 'no-op')]).problems, [
    `the plan does not replace ${PASSWORD_ADDRESS}`,
    `the plan updates no Secret copy (${SECRET_COPIES_ADDRESS})`,
  ]);
  t.match(
    judgeRotationPlan([password('delete')]).problems[0],
    /does not replace .* \(it would delete it\)/,
  );
  const more = judgeRotationPlan([
    password(),
    copy('redis'),
    {
      address: 'module.redis_shared.helm_release.redis_shared',
      type: 'helm_release',
      action: 'update',
    },
    copy('beersystem', 'delete'),
  ]);
  t.notOk(more.ok);
  t.same(more.problems, [
    'the plan would also update module.redis_shared.helm_release.redis_shared',
    `the plan would also delete ${SECRET_COPIES_ADDRESS}["beersystem"]`,
  ]);
});

t.test('percentages of replicas round as the Deployment controller rounds them', async (t) => {
  t.equal(scaledValue(undefined, 1, '25%', false), 0, 'maxUnavailable 25% of 1 rounds down');
  t.equal(scaledValue(undefined, 1, '25%', true), 1, 'maxSurge 25% of 1 rounds up');
  t.equal(scaledValue('50%', 4, '25%', false), 2);
  t.equal(scaledValue(1, 3, '25%', false), 1);
  t.equal(scaledValue('2', 3, '25%', false), 2);
});

t.test(
  'restarting one replica: RollingUpdate by default costs no downtime, Recreate does',
  async (t) => {
    const rolling = restartCost(undefined, 1);
    t.notOk(rolling.downtime);
    t.match(rolling.line, /maxUnavailable 0, maxSurge 1: at least 1 pod\(s\) stay Ready/);
    const recreate = restartCost({ type: 'Recreate' }, 1);
    t.ok(recreate.downtime);
    t.match(recreate.line, /Recreate: all 1 pod\(s\) stop/);
    const all = restartCost({ type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 1 } }, 1);
    t.ok(all.downtime, 'maxUnavailable 1 of 1 replica may stop the only pod first');
    t.notOk(restartCost({ rollingUpdate: { maxUnavailable: '50%' } }, 3).downtime);
  },
);

t.test('a wrong password is told from other failures', async (t) => {
  t.ok(isWrongPassword('WRONGPASS invalid username-password pair or user is disabled.'));
  t.ok(isWrongPassword('ERR invalid password'));
  t.notOk(isWrongPassword('connect ECONNREFUSED 10.0.0.1:6379'));
  t.notOk(isWrongPassword('OK'));
});

const tally = (over: Partial<WriterTally> = {}): WriterTally => ({
  writes: 400,
  errors: 0,
  longestWaitMs: 21_340,
  counterAtEnd: 400,
  acknowledged: 400,
  startedAt: '2026-12-06T11:00:00.000Z',
  stoppedAt: '2026-12-06T11:01:00.000Z',
  ...over,
});

t.test('the writer’s figures: errors, writes lost, the longest wait', async (t) => {
  t.ok(rotationMet(tally()));
  t.equal(
    describeWrites(tally()),
    '400 writes through the LoadBalancer from 2026-12-06T11:00:00.000Z to 2026-12-06T11:01:00.000Z: 0 write errors, 0 acknowledged writes lost, the longest wait for an answer 21.3 s',
  );
  const failed = tally({ errors: 2, firstError: 'WRONGPASS invalid username-password pair' });
  t.notOk(rotationMet(failed));
  t.match(describeWrites(failed), /2 write errors \(first: WRONGPASS/);
  t.equal(lostWrites(tally({ acknowledged: 400, counterAtEnd: 398 })), 2);
  t.equal(
    lostWrites(tally({ acknowledged: 398, counterAtEnd: 400 })),
    0,
    'a resent INCR is no loss',
  );
  t.notOk(rotationMet(tally({ counterAtEnd: 398 })), 'a lost write fails it');
  t.notOk(
    rotationMet(tally({ writes: 0, acknowledged: 0, counterAtEnd: 0 })),
    'no write, no proof',
  );
});

t.test('the figures are recorded under an evidence id the report knows', async (t) => {
  t.ok(EVIDENCE_IDS.includes(ROTATION_EVIDENCE));
});
