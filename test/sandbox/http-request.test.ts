import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import t, { type Test } from 'tap';
import { request } from '../../sandbox/http-request.ts';

async function serve(t: Test, handler: (req: IncomingMessage, res: ServerResponse) => void) {
  const server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return `127.0.0.1:${(server.address() as AddressInfo).port}`;
}

t.test('a GET answers with the status, its reason and the body', async (t) => {
  const host = await serve(t, (_req, res) => {
    res.statusCode = 404;
    res.end('{"message":"not found"}');
  });
  t.same(await request(`http://${host}/x`), {
    status: 404,
    statusText: 'Not Found',
    text: '{"message":"not found"}',
  });
});

t.test('a body is sent whole, with its length and the headers given', async (t) => {
  const host = await serve(t, (req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () =>
      res.end(
        JSON.stringify({
          method: req.method,
          body,
          length: req.headers['content-length'],
          type: req.headers['content-type'],
        }),
      ),
    );
  });
  const body = JSON.stringify({ name: 'ünïcode' });
  const answer = await request(`http://${host}/y`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body,
  });
  t.same(JSON.parse(answer.text), {
    method: 'POST',
    body,
    length: String(Buffer.byteLength(body)),
    type: 'application/json',
  });
});

t.test('a server that does not answer in time fails the request', async (t) => {
  const host = await serve(t, () => {
    // never answers
  });
  await t.rejects(request(`http://${host}/slow`, { timeoutMs: 100 }), { name: 'AbortError' });
});

t.test('an https address is spoken to with TLS', async (t) => {
  const host = await serve(t, (_req, res) => res.end('plain'));
  // A plain HTTP server cannot answer a TLS handshake: the request fails instead of reading "plain".
  await t.rejects(request(`https://${host}/`, { timeoutMs: 5000 }));
});
