// The sandbox's LoadBalancer address 127.0.0.203:6379 is fixed, and another sandbox (someone
// else's test run) may hold it: an end-to-end test waits until it is free rather than talk to
// the wrong Redis.
import { createServer } from 'node:net';

export function loadBalancerAddressFree(host = '127.0.0.203', port = 6379): Promise<boolean> {
  return new Promise<boolean>((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, host, () => server.close(() => resolve(true)));
  });
}

export async function waitForLoadBalancerAddress(timeoutMs = 300_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await loadBalancerAddressFree())) {
    if (Date.now() > deadline) {
      throw new Error(
        `127.0.0.203:6379 stayed taken by another sandbox for ${timeoutMs / 1000} s: retry when it is free`,
      );
    }
    await new Promise((r) => setTimeout(r, 1000));
  }
}
