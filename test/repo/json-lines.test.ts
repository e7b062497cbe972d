import t from 'tap';
import { jsonLines } from '../helpers/json-lines.ts';

t.test('complete lines are entries', async (t) => {
  t.same(jsonLines('{"a":1}\n{"a":2}\n'), [{ a: 1 }, { a: 2 }]);
  t.same(jsonLines(''), []);
  t.same(jsonLines('\n\n{"a":1}\n\n'), [{ a: 1 }]);
});

t.test('a line still being written is not an entry yet', async (t) => {
  // what a read sees while a writer's append is halfway: the case that failed a crash-matrix run
  t.same(jsonLines('{"a":1}\n{"event":"step-st'), [{ a: 1 }]);
  t.same(jsonLines('{"a":1'), []);
});

t.test('a complete line that is not JSON still fails', async (t) => {
  t.throws(() => jsonLines('{"a":1}\nnot json\n'), SyntaxError);
});
