// The test helper that runs redis-server must not hide a crash: a server that died by itself
// before the test stopped it fails stop(), and so the teardown.
import t from 'tap';
import { redisCli, startRedisServer } from '../helpers/redis-server.ts';
import { waitUntil } from '../helpers/wait.ts';

t.test('stop() reports a server that had already died, with its exit status', async (t) => {
  const teardowns: (() => unknown)[] = [];
  t.teardown(async () => {
    for (const fn of teardowns) await fn();
  });
  const server = await startRedisServer({ teardown: (fn) => teardowns.push(fn) });
  const pid = Number(/process_id:(\d+)/.exec(await redisCli(server, ['INFO', 'server']))?.[1]);
  t.ok(pid > 0, `redis-server runs as ${pid}`);
  process.kill(pid, 'SIGKILL');
  await waitUntil('redis-server to exit after SIGKILL', () => !server.running);
  await t.rejects(server.stop(), {
    message: new RegExp(
      `^redis-server on port ${server.port} exited by itself \\(SIGKILL\\) before the test stopped it`,
    ),
  });
  await t.resolves(server.stop(), 'reported once; the teardown has nothing left to stop');
});

t.test('stop() of a running server resolves, and start() brings it back', async (t) => {
  const server = await startRedisServer(t);
  await server.stop();
  t.notOk(server.running);
  await server.start();
  t.match(await redisCli(server, ['PING']), 'PONG');
});
