// 05-migrate interrupted (Ctrl-C, SIGINT) inside each step of its window, then resumed or rolled
// back from what it left (`npm run test:crash`; the SIGKILL half is migrate-crash-sigkill.test.ts,
// with the other recovery at each step). docs/crash-matrix.md.
import t from 'tap';
import { crashMatrix } from '../helpers/crash-matrix.ts';
import { assertNoPassword, startCluster } from '../helpers/migrate-cluster.ts';

t.setTimeout(3_600_000);

t.test('Ctrl-C at each step of the window', async (t) => {
  const c = await startCluster(t);
  await crashMatrix(t, c, 'SIGINT', [
    { step: 'T035', recovery: 'resume' },
    { step: 'T036', recovery: 'rollback' },
    { step: 'T039', recovery: 'resume' },
    { step: 'T040', recovery: 'rollback' },
    { step: 'T041', recovery: 'resume' },
    { step: 'P05', recovery: 'rollback' },
  ]);
  assertNoPassword(t, c);
});
