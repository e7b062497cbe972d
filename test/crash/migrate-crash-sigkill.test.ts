// 05-migrate killed with SIGKILL inside each step of its window, then resumed or rolled back from
// what the kill left (`npm run test:crash`; the SIGINT half is migrate-crash-sigint.test.ts, and
// between the two files every step is both resumed and rolled back). docs/crash-matrix.md.
import t from 'tap';
import { crashMatrix } from '../helpers/crash-matrix.ts';
import { assertNoPassword, startCluster } from '../helpers/migrate-cluster.ts';

t.setTimeout(3_600_000);

t.test('SIGKILL at each step of the window', async (t) => {
  const c = await startCluster(t);
  await crashMatrix(t, c, 'SIGKILL', [
    { step: 'T035', recovery: 'rollback' },
    { step: 'T036', recovery: 'resume' },
    { step: 'T039', recovery: 'rollback' },
    { step: 'T040', recovery: 'resume' },
    { step: 'T041', recovery: 'rollback' },
    { step: 'P05', recovery: 'resume' },
  ]);
  assertNoPassword(t, c);
});
