// The SC-004 probe from a source address, against a real server and listeners that misbehave.
import { createServer } from 'node:net';
import t from 'tap';
import { isBlocked, probeFromSource } from '../../lib/redis/source-probe.ts';
import { startRedisServer } from '../helpers/redis-server.ts';

const SECRET = 'probe-job-secret-7f3a9c1e55';

t.test(
  'SC-004 probe: a reply means reached; reset, refused and timeout mean blocked',
  async (t) => {
    const server = await startRedisServer(t, { password: SECRET });
    const reached = await probeFromSource('127.0.0.1', server.host, server.port);
    t.equal(reached.outcome, 'reached');
    t.match(reached.detail, /NOAUTH/);
    t.notOk(isBlocked(reached));
    const own = await probeFromSource(undefined, server.host, server.port);
    t.equal(own.outcome, 'reached', "without a source the system picks this machine's address");
    t.equal(own.source, '127.0.0.1', 'and the probe says which it was');
    // A listener that resets whatever connects.
    const resetter = createServer((socket) => socket.resetAndDestroy());
    await new Promise<void>((resolve) => resetter.listen(0, '127.0.0.1', resolve));
    t.teardown(() => resetter.close());
    const port = (resetter.address() as { port: number }).port;
    const reset = await probeFromSource('127.0.0.5', '127.0.0.1', port);
    t.ok(isBlocked(reset), `reset counts as blocked (${reset.outcome})`);
    const refused = await probeFromSource('127.0.0.1', '127.0.0.1', 1);
    t.equal(refused.outcome, 'refused');
    t.ok(isBlocked(refused));
    const silent = createServer(() => {});
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    t.teardown(() => silent.close());
    const timeout = await probeFromSource(
      '127.0.0.1',
      '127.0.0.1',
      (silent.address() as { port: number }).port,
      200,
    );
    t.equal(timeout.outcome, 'timeout');
    t.ok(isBlocked(timeout));
    const badSource = await probeFromSource('203.0.113.9', '127.0.0.1', server.port, 500);
    t.equal(badSource.outcome, 'error', 'a source address this host does not have proves nothing');
    t.notOk(isBlocked(badSource));
  },
);
