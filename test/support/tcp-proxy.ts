import { createServer, connect, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';

/**
 * A loopback TCP proxy in front of a hub. `inspect` sees every chunk from the server and may cut
 * the connection (both sides, the chunk not forwarded). `freeze()` stops forwarding without
 * closing anything, like a dead network path; `refuse()` cuts every connection and closes new
 * ones as they arrive, like a server gone away, until `accept()`.
 */
export class TcpProxy {
  private readonly server: Server;
  private readonly pairs = new Set<[Socket, Socket]>();
  private frozen = false;
  private refusing = false;
  port = 0;
  /** Return true to cut the connection instead of forwarding this server → client chunk. */
  inspect: ((chunk: Buffer) => boolean) | undefined;

  constructor(private readonly targetPort: number) {
    this.server = createServer((client) => {
      if (this.refusing) {
        client.destroy();
        return;
      }
      const upstream = connect(this.targetPort, '127.0.0.1');
      const pair: [Socket, Socket] = [client, upstream];
      this.pairs.add(pair);
      const cut = (): void => {
        this.pairs.delete(pair);
        client.destroy();
        upstream.destroy();
      };
      client.on('close', cut).on('error', cut);
      upstream.on('close', cut).on('error', cut);
      client.on('data', (chunk: Buffer) => {
        if (!this.frozen) upstream.write(chunk);
      });
      upstream.on('data', (chunk: Buffer) => {
        if (this.frozen) return;
        if (this.inspect?.(chunk)) {
          cut();
          return;
        }
        client.write(chunk);
      });
    });
  }

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as AddressInfo).port;
    return this;
  }

  get connections(): number {
    return this.pairs.size;
  }

  /** Cuts every open connection (both sides) at once. */
  cutAll(): void {
    for (const [a, b] of this.pairs) {
      a.destroy();
      b.destroy();
    }
    this.pairs.clear();
  }

  /** Cuts every connection and refuses new ones until `accept()`. */
  refuse(): void {
    this.refusing = true;
    this.cutAll();
  }

  accept(): void {
    this.refusing = false;
  }

  freeze(): void {
    this.frozen = true;
  }

  thaw(): void {
    this.frozen = false;
  }

  async close(): Promise<void> {
    this.cutAll();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
