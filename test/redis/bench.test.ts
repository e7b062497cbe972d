import * as hdr from 'hdr-histogram-js';
import t from 'tap';
import {
  type BenchProgress,
  formatProgress,
  latencyPercentiles,
  parseRedisBenchmarkCsv,
  progressReporter,
  runBench,
} from '../../lib/redis/bench.ts';
import { encodeCommand, RespConnection, replyEnd } from '../../lib/redis/bench-resp.ts';
import { fakeServer, freePort, redisCli, startRedisServer } from '../helpers/redis-server.ts';
import { waitUntil, within } from '../helpers/wait.ts';

const PASSWORD = 'Zq7-bench-Distinctive-Pw-0815';

function leaksPassword(value: unknown): boolean {
  const text = typeof value === 'string' ? value : JSON.stringify(value);
  return text.includes(PASSWORD);
}

function percentilesOrdered(r: { p50: number; p95: number; p99: number; max: number }): boolean {
  return r.p50 > 0 && r.p50 <= r.p95 && r.p95 <= r.p99 && r.p99 <= r.max;
}

t.test(
  'bench counts operations and percentiles against a real server and removes its keys',
  async (t) => {
    const server = await startRedisServer(t, { password: PASSWORD });
    const r = await runBench(server.target, { connections: 8, pipeline: 1, totalOps: 5000 });
    t.equal(r.ops, 5000, 'exactly the requested operations');
    t.equal(r.errors, 0);
    t.equal(r.firstError, undefined);
    t.equal(r.cleanupError, undefined);
    t.ok(r.opsPerSec > 0, `ops/s ${r.opsPerSec}`);
    t.ok(r.durationMs > 0);
    t.equal(r.connections, 8);
    t.equal(r.pipeline, 1);
    t.ok(percentilesOrdered(r), `0 < p50 ≤ p95 ≤ p99 ≤ max (${r.p50} ${r.p95} ${r.p99} ${r.max})`);
    t.equal((await redisCli(server, ['DBSIZE'])).trim(), '0', 'runbook:bench: keys are cleaned up');
    t.notOk(leaksPassword(r));
  },
);

t.test(
  'a pipelined run issues the exact count even when it is not a multiple of the depth',
  async (t) => {
    const server = await startRedisServer(t, { password: PASSWORD });
    const r = await runBench(server.target, {
      connections: 3,
      pipeline: 16,
      totalOps: 1001,
      setRatio: 1,
      keySpace: 50,
      keyPrefix: 'pipetest:',
      valueSize: 10,
      cleanup: false,
    });
    t.equal(r.ops, 1001);
    t.equal(r.errors, 0);
    t.ok(percentilesOrdered(r), `0 < p50 ≤ p95 ≤ p99 ≤ max (${r.p50} ${r.p95} ${r.p99} ${r.max})`);
    const keys = (await redisCli(server, ['KEYS', 'pipetest:*'])).trim().split('\n');
    t.ok(keys.length > 1 && keys.length <= 50, `${keys.length} keys within the key space`);
    t.match(keys[0], /^pipetest:\d{12}$/);
    t.equal(
      (await redisCli(server, ['GET', keys[0]!])).trim(),
      'xxxxxxxxxx',
      'value of valueSize bytes',
    );
  },
);

t.test('a duration-bound run stops by itself and reports progress', async (t) => {
  const server = await startRedisServer(t, { password: PASSWORD });
  const progress: BenchProgress[] = [];
  const r = await runBench(server.target, {
    connections: 2,
    durationMs: 400,
    setRatio: 0,
    onProgress: (p) => progress.push(p),
    progressIntervalMs: 50,
  });
  t.ok(r.ops > 0);
  t.equal(r.errors, 0, 'GET of missing keys is not an error');
  t.ok(progress.length >= 2, `${progress.length} progress reports`);
  t.ok(
    progress.every((p, i) => i === 0 || p.ops >= progress[i - 1]!.ops),
    'progress only grows',
  );
});

t.test(
  'keys that cannot be removed afterwards are reported, and the measurement kept',
  async (t) => {
    const server = await startRedisServer(t, {
      password: PASSWORD,
      config: ['rename-command UNLINK ""'],
    });
    const r = await runBench(server.target, { connections: 2, totalOps: 200, setRatio: 1 });
    t.equal(r.ops, 200);
    t.equal(r.errors, 0);
    t.match(
      r.cleanupError,
      /^the runbook:bench:\* keys were not removed \(.*unknown command.*\); remove them with: redis-cli --scan --pattern 'runbook:bench:\*' \| xargs redis-cli unlink$/,
    );
    t.not((await redisCli(server, ['DBSIZE'])).trim(), '0', 'the keys are still there');
    t.notOk(leaksPassword(r));
  },
);

t.test('error replies are counted, with the first one as evidence', async (t) => {
  const server = await startRedisServer(t, {
    password: PASSWORD,
    config: ['rename-command SET ""'],
  });
  const r = await runBench(server.target, { connections: 2, totalOps: 100, setRatio: 1 });
  t.equal(r.ops, 100);
  t.equal(r.errors, 100);
  t.match(r.firstError, /unknown command/i);
});

/** Resolves at the first progress report that counts a completed operation. */
function firstOperations(): { onProgress: (p: BenchProgress) => void; seen: Promise<void> } {
  let seen: () => void = () => {};
  const promise = new Promise<void>((resolve) => {
    seen = resolve;
  });
  return {
    onProgress: (p) => {
      if (p.ops > 0) seen();
    },
    seen: promise,
  };
}

t.test('a connection dropped by the server ends the run with an error, not a hang', async (t) => {
  const server = await startRedisServer(t, { password: PASSWORD });
  const running = firstOperations();
  // Far longer than the test's own timeout: only the dropped connections can end this run.
  const bench = runBench(server.target, {
    connections: 4,
    durationMs: 3_600_000,
    onProgress: running.onProgress,
    progressIntervalMs: 20,
  });
  await within('the first completed operations', running.seen);
  await redisCli(server, ['CLIENT', 'KILL', 'TYPE', 'normal']);
  const r = await within('the run to end after its connections were dropped', bench);
  t.ok(r.ops > 0);
  t.ok(r.errors > 0, `${r.errors} commands in flight were lost and counted`);
  t.match(r.firstError, /closed|reset/i);
});

t.test(
  'a server that stops answering mid-run ends it with the lost commands counted',
  async (t) => {
    const server = await startRedisServer(t, { password: PASSWORD });
    t.teardown(() => redisCli(server, ['CLIENT', 'UNPAUSE']).catch(() => undefined));
    const running = firstOperations();
    const bench = runBench(server.target, {
      connections: 3,
      pipeline: 2,
      setRatio: 1,
      durationMs: 3_600_000,
      replyTimeoutMs: 300,
      cleanup: false,
      onProgress: running.onProgress,
      progressIntervalMs: 20,
    });
    await within('the first completed operations', running.seen);
    // Writes wait while the server is paused; the connections stay open, so only the reply
    // timeout can end the run.
    await redisCli(server, ['CLIENT', 'PAUSE', '3600000', 'WRITE']);
    const r = await within('the run to end by the reply timeout', bench);
    t.ok(r.ops > 0);
    t.ok(r.errors >= 3, `${r.errors} commands without a reply counted as errors`);
    t.match(r.firstError, /no reply from 127\.0\.0\.1:\d+ within 300 ms/);
    t.notOk(leaksPassword(r));
  },
);

t.test('a wrong password is refused with a masked error', async (t) => {
  const server = await startRedisServer(t, { password: PASSWORD });
  const err = await runBench(
    { ...server.target, password: `${PASSWORD}x` },
    { connections: 2 },
  ).catch((e: Error) => e);
  t.type(err, Error);
  t.match(
    (err as Error).message,
    /benchmark could not connect: .*refused the benchmark connection: WRONGPASS/,
  );
  t.notOk(leaksPassword(`${(err as Error).message}${(err as Error).stack}`));
});

t.test('when some connections are refused, the ones that opened are closed again', async (t) => {
  const server = await startRedisServer(t, { password: PASSWORD, config: ['maxclients 3'] });
  const err = await runBench(server.target, { connections: 6 }).catch((e: Error) => e);
  t.match(
    (err as Error).message,
    /^benchmark could not connect: 127\.0\.0\.1:\d+ refused the benchmark connection: ERR max number of clients reached \([1-3] of 6 connections had opened\)$/,
  );
  // The server notices the closes a moment later: wait for that, not for a fixed time.
  await waitUntil('the server to see every benchmark connection closed', async () => {
    // While the slots are still taken, redis-cli itself may be refused: that means "not yet".
    // A real answer always lists redis-cli's own connection (id=…).
    const list = await redisCli(server, ['CLIENT', 'LIST']).catch(() => '');
    return /\bid=\d+/.test(list) && !list.includes('name=runbook-bench');
  });
  t.pass('no benchmark connection is left on the server');
  t.notOk(leaksPassword((err as Error).message));
});

t.test('an unreachable server is an error, not a hang', async (t) => {
  const port = await freePort();
  const err = await runBench({ host: '127.0.0.1', port }, { connections: 1 }).catch(
    (e: Error) => e,
  );
  t.match((err as Error).message, /benchmark could not connect: .*ECONNREFUSED/);
});

t.test('a server that never answers times out', async (t) => {
  const port = await fakeServer(t);
  const err = await RespConnection.open({ host: '127.0.0.1', port, password: PASSWORD }, 200).catch(
    (e: Error) => e,
  );
  t.match((err as Error).message, /did not answer within 200 ms/);
});

t.test('percentiles never exceed the largest latency recorded', async (t) => {
  const histogram = hdr.build({ lowestDiscernibleValue: 1, numberOfSignificantValueDigits: 3 });
  histogram.recordValueWithCount(50, 49);
  histogram.recordValueWithCount(100_001, 1);
  // The top of 100,001's bucket lies above it: uncapped, p99 would be reported above max.
  t.ok(histogram.getValueAtPercentile(99) > histogram.maxValue, 'the histogram rounds up');
  const r = latencyPercentiles(histogram);
  t.same(r, { p50: 0.05, p95: 0.05, p99: 100.001, max: 100.001 });
  t.ok(r.p50 <= r.p95 && r.p95 <= r.p99 && r.p99 <= r.max);
});

t.test('invalid options are refused before connecting', async (t) => {
  const target = { host: '127.0.0.1', port: 1 };
  await t.rejects(runBench(target, { connections: 0 }), RangeError);
  await t.rejects(runBench(target, { pipeline: 1.5 }), RangeError);
  await t.rejects(runBench(target, { setRatio: 2 }), RangeError);
  await t.rejects(runBench(target, { valueSize: -1 }), RangeError);
  await t.rejects(runBench(target, { keySpace: 10 ** 13 }), RangeError);
  await t.rejects(runBench(target, { replyTimeoutMs: 0 }), RangeError);
});

t.test('RESP replies split into single bytes are reassembled', async (t) => {
  const port = await fakeServer(t, '$5\r\nhello\r\n*2\r\n:1\r\n$-1\r\n-ERR boom\r\n+OK\r\n');
  const conn = await RespConnection.open({ host: '127.0.0.1', port });
  t.teardown(() => conn.close());
  let replies = 0;
  let errors = 0;
  let first: string | undefined;
  const done = new Promise<void>((resolve) => {
    conn.onReplies((n, e, f) => {
      replies += n;
      errors += e;
      first ??= f;
      if (replies === 4) resolve();
    });
  });
  conn.write(encodeCommand(['PING']));
  await within('four replies', done);
  t.equal(replies, 4, 'bulk, array, error and simple string');
  t.equal(errors, 1);
  t.equal(first, 'ERR boom');
});

t.test('replyEnd finds reply boundaries and asks for more when incomplete', async (t) => {
  const b = Buffer.from('*2\r\n$3\r\nfoo\r\n:42\r\n');
  t.equal(replyEnd(b, 0), b.length);
  t.equal(replyEnd(b.subarray(0, 10), 0), -1);
  t.equal(replyEnd(Buffer.from('$3\r\nfo'), 0), -1);
  t.equal(replyEnd(Buffer.from('+OK\r'), 0), -1);
  t.equal(replyEnd(Buffer.from(''), 0), -1);
  t.equal(replyEnd(Buffer.from('$-1\r\n'), 0), 5);
  t.throws(() => replyEnd(Buffer.from('?x\r\n'), 0), /unexpected RESP type/);
  t.same(
    encodeCommand(['SET', 'k', Buffer.from('v')]),
    Buffer.from('*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n'),
  );
});

t.test(
  'parseRedisBenchmarkCsv reads redis-benchmark 7 rows and skips what precedes the header',
  async (t) => {
    const csv = [
      'Pod log preamble, ignored',
      '"test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"',
      '"SET","71377.59","0.394","0.104","0.327","0.847","1.103","4.535"',
      '"GET","78462.14","0.333","0.088","0.327","0.383","0.631","3.911"',
      '"MSET (10 keys)","1000.00","1.000","0.500","0.900","1.500","2.000","3.000"',
      '',
    ].join('\r\n');
    const rows = parseRedisBenchmarkCsv(csv);
    t.equal(rows.length, 3);
    t.same(rows[0], {
      test: 'SET',
      rps: 71377.59,
      avgLatencyMs: 0.394,
      minLatencyMs: 0.104,
      p50LatencyMs: 0.327,
      p95LatencyMs: 0.847,
      p99LatencyMs: 1.103,
      maxLatencyMs: 4.535,
    });
    t.equal(rows[2]?.test, 'MSET (10 keys)');
    t.throws(
      () => parseRedisBenchmarkCsv('SET: 1000 requests per second'),
      /no redis-benchmark CSV header .* --csv\?/,
    );
    t.throws(
      () => parseRedisBenchmarkCsv(`${csv.split('\r\n')[1]}\n"SET","fast","1","1","1","1","1","1"`),
      /malformed redis-benchmark row/,
    );
  },
);

t.test('parseRedisBenchmarkCsv reads real redis-benchmark output', async (t) => {
  const server = await startRedisServer(t);
  const { execFile } = await import('node:child_process');
  const { promisify } = await import('node:util');
  const { stdout } = await promisify(execFile)('redis-benchmark', [
    '-h',
    '127.0.0.1',
    '-p',
    String(server.port),
    '-t',
    'set,get',
    '-n',
    '2000',
    '-c',
    '5',
    '--csv',
  ]);
  const rows = parseRedisBenchmarkCsv(stdout);
  t.same(
    rows.map((r) => r.test),
    ['SET', 'GET'],
  );
  for (const r of rows) {
    t.ok(r.rps > 0);
    t.ok(
      r.p50LatencyMs <= r.p95LatencyMs &&
        r.p95LatencyMs <= r.p99LatencyMs &&
        r.p99LatencyMs <= r.maxLatencyMs,
    );
  }
});

t.test(
  'progress is rewritten in place on a TTY and printed at most once a second otherwise',
  async (t) => {
    const p = (elapsedMs: number, ops: number): BenchProgress => ({
      elapsedMs,
      ops,
      opsPerSec: (ops * 1000) / elapsedMs,
    });
    t.equal(formatProgress(p(12_345, 456_789)), '12.3 s  456,789 ops  37,002 ops/s');

    const ttyOut: string[] = [];
    const tty = progressReporter({ isTTY: true, write: (s: string) => ttyOut.push(s) }, 'SET: ');
    t.equal(tty.intervalMs, 200);
    tty.report(p(200, 10));
    tty.report(p(400, 20));
    tty.end();
    t.equal(ttyOut.length, 3);
    t.match(ttyOut[0], /^\r\x1b\[2KSET: 0\.2 s {2}10 ops/);
    t.equal(ttyOut[2], '\r\x1b[2K', 'the line is cleared at the end');

    const plainOut: string[] = [];
    const plain = progressReporter({ write: (s: string) => plainOut.push(s) });
    t.equal(plain.intervalMs, 1000);
    for (const ms of [100, 500, 1200, 1900, 2300]) plain.report(p(ms, ms));
    plain.end();
    t.same(
      plainOut.map((l) => l.split(' ')[0]),
      ['0.1', '1.2', '2.3'],
      'one line per second at most, each ending in a newline',
    );
    t.ok(plainOut.every((l) => l.endsWith('\n')));
  },
);
