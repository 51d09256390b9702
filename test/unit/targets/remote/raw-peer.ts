/**
 * A hand-driven protocol peer for tests that must break the rules: it speaks
 * frames directly over TLS (as a client of a real server, or as a fake
 * server for a real client).
 */
import { type AddressInfo } from 'node:net';
import { connect, createServer, type Server, type TLSSocket } from 'node:tls';
import { encodeFrame, FrameDecoder } from '../../../../provider/targets/remote/frame-codec';
import { type Frame, type FrameTypeCode } from '../../../../provider/targets/remote/protocol';
import { type TestCerts } from './test-certs';

export class RawPeer {
  private readonly frames: Frame[] = [];
  private readonly waiters: Array<(f: Frame | undefined) => void> = [];
  private ended = false;
  /** Resolves when the connection has closed. */
  readonly closed: Promise<void>;

  constructor(readonly socket: TLSSocket) {
    const decoder = new FrameDecoder();
    socket.on('data', (piece: Buffer) => {
      for (const f of decoder.push(piece)) this.deliver(f);
    });
    socket.on('error', () => undefined);
    this.closed = new Promise((resolve) =>
      socket.on('close', () => {
        this.ended = true;
        for (const w of this.waiters.splice(0)) w(undefined);
        resolve();
      }),
    );
  }

  /** Connect to a real server as a client with the test client certificate. */
  static connect(port: number, certs: TestCerts): Promise<RawPeer> {
    return new Promise((resolve, reject) => {
      const s = connect({ host: '127.0.0.1', port, ca: certs.ca, key: certs.client.key, cert: certs.client.cert, minVersion: 'TLSv1.3' });
      s.once('secureConnect', () => resolve(new RawPeer(s)));
      s.once('error', reject);
    });
  }

  send(type: FrameTypeCode, id: number, json: object | undefined, payload?: Buffer, flags = 0): void {
    this.socket.write(encodeFrame(type, flags, id, json, payload));
  }

  /** The next frame, or undefined if the connection closes first. */
  next(): Promise<Frame | undefined> {
    const f = this.frames.shift();
    if (f !== undefined) return Promise.resolve(f);
    if (this.ended) return Promise.resolve(undefined);
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  private deliver(f: Frame): void {
    const w = this.waiters.shift();
    if (w !== undefined) w(f);
    else this.frames.push(f);
  }
}

/** A TLS server with the test server certificate whose connections tests drive by hand. */
export async function fakeServer(certs: TestCerts, onPeer: (p: RawPeer) => void): Promise<{ server: Server; port: number }> {
  const server = createServer(
    { key: certs.server.key, cert: certs.server.cert, ca: certs.ca, requestCert: true, rejectUnauthorized: true, minVersion: 'TLSv1.3' },
    (s) => onPeer(new RawPeer(s)),
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, port: (server.address() as AddressInfo).port };
}
