// The lock-file operations on their own: what each does when the file is absent, ours, or
// someone else's.
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import {
  createLockFile,
  readLockFile,
  removeOwnLockFile,
  replaceLockFile,
  takeOverLockFile,
} from '../../lib/lock/lock-file.ts';

function place(t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'lock-file-test-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return join(dir, 'x.lock');
}

t.test('create only when absent, never leaving a temp file behind', async (t) => {
  const path = place(t);
  t.equal(await readLockFile(path), undefined);
  t.ok(await createLockFile(path, 'a'));
  t.notOk(await createLockFile(path, 'b'));
  t.equal(readFileSync(path, 'utf8'), 'a');
  const file = await readLockFile(path);
  t.equal(file?.text, 'a');
  t.ok((file?.ageMs ?? -1) >= 0);
  await t.rejects(createLockFile(join(path, 'no', 'such', 'dir'), 'x'));
});

t.test('replace swaps the whole content at once', async (t) => {
  const path = place(t);
  await replaceLockFile(path, 'one');
  await replaceLockFile(path, 'two');
  t.equal(readFileSync(path, 'utf8'), 'two');
  await t.rejects(replaceLockFile(join(path, 'missing', 'x'), 'y'));
});

t.test('a takeover replaces only the content that was judged stale', async (t) => {
  const path = place(t);
  writeFileSync(path, 'stale');
  t.notOk(await takeOverLockFile(path, 'something else', 'mine'), 'changed since it was read');
  t.equal(readFileSync(path, 'utf8'), 'stale');
  t.ok(await takeOverLockFile(path, 'stale', 'mine'));
  t.equal(readFileSync(path, 'utf8'), 'mine');
  t.notOk(existsSync(`${path}.takeover`), 'the takeover file is gone');
});

t.test('release removes only our own lock', async (t) => {
  const path = place(t);
  t.notOk(await removeOwnLockFile(path, () => true), 'nothing to remove');
  writeFileSync(path, 'theirs');
  t.notOk(await removeOwnLockFile(path, (text) => text === 'mine'));
  t.equal(readFileSync(path, 'utf8'), 'theirs', "someone else's lock stays");
  writeFileSync(path, 'mine');
  t.ok(await removeOwnLockFile(path, (text) => text === 'mine'));
  t.notOk(existsSync(path));
});
