// The LoadBalancer proxy drops a source outside loadBalancerSourceRanges as kube-proxy does: no
// reset, no reply, the client times out; the held connection goes once the client gives up.
import { connect, createServer } from 'node:net';
import t from 'tap';
import { TcpProxy } from '../../sandbox/workloads/tcp-proxy.ts';
import { eventually } from '../helpers/workloads-cluster.ts';

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

/** Sends a line from `source` and answers what came back: the reply, 'timeout', or the error. */
function ask(source: string, port: number, timeoutMs: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port, localAddress: source });
    const timer = setTimeout(() => {
      socket.destroy();
      resolve('timeout');
    }, timeoutMs);
    socket.on('connect', () => socket.write('hello\n'));
    socket.on('data', (d) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(d.toString().trim());
    });
    socket.on('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      resolve(err.code ?? err.message);
    });
  });
}

t.test('outside the source ranges: dropped (timeout), not reset; inside: answered', async (t) => {
  const echo = createServer((c) => c.pipe(c)).listen(0, '127.0.0.1');
  await new Promise((r) => echo.once('listening', r));
  t.teardown(() => echo.close());
  const port = await freePort();
  const proxy = new TcpProxy({
    host: '127.0.0.1',
    port,
    sourceRanges: () => ['127.0.0.1/32'],
    endpoints: () => [{ ip: '127.0.0.1', port: (echo.address() as { port: number }).port }],
  });
  await proxy.listen();
  t.teardown(() => proxy.close());
  t.equal(await ask('127.0.0.1', port, 2000), 'hello', 'inside the range: forwarded');
  t.equal(await ask('127.0.0.2', port, 500), 'timeout', 'outside: nothing ever comes back');
  t.equal(
    await eventually('the held connection released', () => proxy.heldConnections === 0 && 'gone'),
    'gone',
    'released once the client gave up',
  );
});
