/**
 * A TCP relay between a client and a server that can cut the connection after
 * a given number of client-to-server bytes: the network failing mid-cycle.
 * It forwards bytes only (TLS stays end to end).
 */
import { type AddressInfo, connect, createServer, type Server, type Socket } from 'node:net';

export class FaultProxy {
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();
  private budget: number | undefined;
  /** Connections accepted so far. */
  connections = 0;
  /** Connections cut so far. */
  cuts = 0;

  constructor(private readonly targetPort: number) {
    this.server = createServer((client) => this.relay(client));
  }

  async listen(): Promise<number> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return (this.server.address() as AddressInfo).port;
  }

  /** Cut every connection once `bytes` more client-to-server bytes have passed; undefined: never. */
  cutAfter(bytes: number | undefined): void {
    this.budget = bytes;
  }

  /** Cut every open connection now. */
  cutNow(): void {
    for (const s of this.sockets) s.destroy();
    this.cuts++;
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private relay(client: Socket): void {
    this.connections++;
    const upstream = connect(this.targetPort, '127.0.0.1');
    for (const s of [client, upstream]) {
      this.sockets.add(s);
      s.on('error', () => undefined);
      s.on('close', () => this.sockets.delete(s));
    }
    const cut = (): void => {
      this.cuts++;
      client.destroy();
      upstream.destroy();
    };
    client.on('data', (chunk: Buffer) => {
      if (this.budget === undefined) {
        upstream.write(chunk);
        return;
      }
      if (chunk.length < this.budget) {
        this.budget -= chunk.length;
        upstream.write(chunk);
        return;
      }
      const part = chunk.subarray(0, this.budget);
      this.budget = 0;
      if (part.length > 0) upstream.write(part, cut);
      else cut();
    });
    upstream.on('data', (chunk: Buffer) => client.write(chunk));
    client.on('end', () => upstream.end());
    upstream.on('end', () => client.end());
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  }
}
