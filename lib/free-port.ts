import { once } from 'node:events';
import { createServer } from 'node:net';

/** A TCP port on `host` that nothing listens on now (the system's choice for listen(0)). */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  const server = createServer();
  server.listen(0, host);
  await once(server, 'listening');
  const address = server.address();
  server.close();
  await once(server, 'close');
  if (!address || typeof address === 'string') throw new Error('the system gave no free port');
  return address.port;
}
