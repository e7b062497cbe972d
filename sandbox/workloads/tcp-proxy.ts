// One listening address of a Service (its ClusterIP or its LoadBalancer address) forwarding each
// connection to an endpoint chosen when it arrives. A connection from a source outside
// loadBalancerSourceRanges is dropped as kube-proxy drops it (KUBE-PROXY-FIREWALL, `-j DROP` in
// pkg/proxy/iptables/proxier.go): nothing ever comes back, so the client's request times out. A
// userspace proxy cannot drop the SYN itself without privileges (a socket filter needs them on
// this kind of machine), so the handshake completes and the connection is then held silent — a
// bare connect() succeeds here where it would time out on the cluster, a request never does.
// A connection from or to a partitioned pod is reset, as a dropped path would end it.
import { connect, createServer, type Server, type Socket } from 'node:net';
import type { KubeObject } from '../runtime.ts';
import { plainIPv4, sourceAllowed } from './cidr.ts';

export interface Endpoint {
  ip: string;
  port: number;
  /** The pod behind the address (absent for what the sandbox runs in a Service's place). */
  pod?: KubeObject;
}

export interface TcpProxyOptions {
  host: string;
  port: number;
  /** loadBalancerSourceRanges; empty or undefined allows every source. */
  sourceRanges?: () => readonly string[] | undefined;
  /** The endpoints that may take a connection now (ready pods). */
  endpoints: () => Endpoint[];
  /** True when traffic from or to this address is cut (`fault partition`). */
  blocked?: (ip: string) => boolean;
  /** NetworkPolicy: why a connection from `client` to `endpoint` is refused, or undefined. */
  refusal?: (client: { ip: string; port: number }, endpoint: Endpoint) => string | undefined;
  /** Where refusals and errors are reported. */
  log?: (line: string) => void;
}

interface Connection {
  client: Socket;
  upstream: Socket;
  source: string;
  target: string;
}

export class TcpProxy {
  readonly options: TcpProxyOptions;
  private server?: Server;
  private readonly connections = new Set<Connection>();
  private readonly held = new Set<Socket>();
  private next = 0;

  constructor(options: TcpProxyOptions) {
    this.options = options;
  }

  listen(): Promise<void> {
    const server = createServer((client) => this.accept(client));
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.options.port, this.options.host, () => {
        server.off('error', reject);
        server.on('error', (err) => this.options.log?.(`proxy ${this.address}: ${err.message}`));
        this.server = server;
        resolve();
      });
    });
  }

  /** Dropped connections still open because their clients have not given up yet. */
  get heldConnections(): number {
    return this.held.size;
  }

  get address(): string {
    return `${this.options.host}:${this.options.port}`;
  }

  /** Ends the connections that a partition now cuts. */
  enforce(): void {
    const blocked = this.options.blocked;
    if (!blocked) return;
    for (const c of this.connections) {
      if (blocked(c.source) || blocked(c.target)) this.drop(c);
    }
  }

  async close(): Promise<void> {
    for (const c of this.connections) this.drop(c);
    for (const client of this.held) client.destroy();
    this.held.clear();
    const server = this.server;
    this.server = undefined;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private accept(client: Socket): void {
    const source = plainIPv4(client.remoteAddress);
    const ranges = this.options.sourceRanges?.();
    if (!sourceAllowed(source, ranges)) {
      this.options.log?.(`${this.address}: dropped ${source} (not in ${ranges?.join(',')})`);
      this.hold(client);
      return;
    }
    if (this.options.blocked?.(source)) {
      client.resetAndDestroy();
      return;
    }
    const candidates = this.options.endpoints().filter((e) => !this.options.blocked?.(e.ip));
    const endpoint = candidates[this.next++ % Math.max(candidates.length, 1)];
    if (!endpoint) {
      client.resetAndDestroy();
      return;
    }
    const refused = this.options.refusal?.({ ip: source, port: client.remotePort ?? 0 }, endpoint);
    if (refused) {
      // A real cluster drops the packets and the client times out; a reset says the same sooner.
      this.options.log?.(`${this.address}: ${refused}`);
      client.resetAndDestroy();
      return;
    }
    const upstream = connect({ host: endpoint.ip, port: endpoint.port });
    const connection: Connection = { client, upstream, source, target: endpoint.ip };
    this.connections.add(connection);
    client.pipe(upstream);
    upstream.pipe(client);
    const end = () => this.drop(connection);
    client.on('error', end);
    upstream.on('error', end);
    client.on('close', end);
    upstream.on('close', end);
  }

  /** Keeps a dropped connection open and silent until the client gives up (or the proxy closes). */
  private hold(client: Socket): void {
    // Read and discard (as a dropped packet goes nowhere), so the client's own close is seen.
    client.on('data', () => undefined);
    this.held.add(client);
    const release = () => {
      this.held.delete(client);
      client.destroy();
    };
    client.on('end', release);
    client.on('error', release);
    client.on('close', release);
  }

  private drop(c: Connection): void {
    if (!this.connections.delete(c)) return;
    reset(c.client);
    reset(c.upstream);
  }
}

function reset(socket: Socket): void {
  if (socket.destroyed) return;
  // A socket still connecting has nothing to reset yet; resetAndDestroy would wait for it.
  if (socket.connecting) socket.destroy();
  else socket.resetAndDestroy();
}
