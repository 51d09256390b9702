/**
 * A real Azurite blob service for tests and benchmarks: started on loopback on
 * a free port over a temporary folder, with telemetry off (there is no
 * internet). `stop()` ends it (and `start()` brings it back on the same port
 * and folder, for outage tests); `dispose()` stops it and removes the folder.
 * Always call `dispose()` (in an `after` hook), also when a test fails.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

/** The well-known development account that Azurite serves. */
export const AZURITE_ACCOUNT = 'devstoreaccount1';
/** Its well-known key (public, documented by Microsoft; not a secret). */
export const AZURITE_KEY = 'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';

// The package's blob entry point, run with this Node (works from ts-node and from dist/ alike).
const MAIN = require.resolve('azurite/dist/src/blob/main.js');
const STARTUP_MS = 30_000;

export class Azurite {
  private child: ChildProcess | undefined;
  private constructor(readonly location: string, private boundPort: number) {}

  /** Start a new Azurite over a new temporary folder. */
  static async start(): Promise<Azurite> {
    const location = await fs.mkdtemp(path.join(os.tmpdir(), 'lifeboat-azurite-'));
    const a = new Azurite(location, 0);
    try {
      await a.start();
    } catch (e) {
      await a.dispose();
      throw e;
    }
    return a;
  }

  get port(): number {
    return this.boundPort;
  }

  /** Blob endpoint of the development account. */
  get endpoint(): string {
    return `http://127.0.0.1:${this.boundPort}/${AZURITE_ACCOUNT}`;
  }

  /** A connection string for the development account. */
  get connectionString(): string {
    return `DefaultEndpointsProtocol=http;AccountName=${AZURITE_ACCOUNT};AccountKey=${AZURITE_KEY};BlobEndpoint=${this.endpoint};`;
  }

  /** Start (again) on the same port and folder; resolves once it listens. */
  async start(): Promise<void> {
    if (this.child !== undefined) return;
    const child = spawn(process.execPath, [MAIN,
      '--silent', '--location', this.location, '--blobHost', '127.0.0.1', '--blobPort', String(this.boundPort),
      '--disableTelemetry', '--skipApiVersionCheck', '--loose',
    ], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    let out = '';
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => fail(new Error(`Azurite did not start within ${STARTUP_MS} ms: ${out}`)), STARTUP_MS);
      const fail = (e: Error): void => {
        clearTimeout(timer);
        child.kill('SIGKILL');
        this.child = undefined;
        reject(e);
      };
      child.once('error', fail);
      child.once('exit', (code) => fail(new Error(`Azurite exited (${code}) before listening: ${out}`)));
      const onData = (d: Buffer): void => {
        out += d.toString();
        const m = /listens on https?:\/\/[^:]+:(\d+)/.exec(out);
        if (m !== null) {
          clearTimeout(timer);
          child.removeAllListeners('exit');
          child.removeAllListeners('error');
          child.stdout?.removeListener('data', onData);
          child.stdout?.resume();
          child.stderr?.resume();
          this.boundPort = Number(m[1]);
          resolve();
        }
      };
      child.stdout?.on('data', onData);
      child.stderr?.on('data', (d: Buffer) => {
        out += d.toString();
      });
    });
  }

  /** Stop gracefully (Azurite saves its state), waiting for the exit. */
  async stop(): Promise<void> {
    const child = this.child;
    if (child === undefined) return;
    this.child = undefined;
    if (child.exitCode !== null || child.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      const hard = setTimeout(() => child.kill('SIGKILL'), 10_000);
      child.once('exit', () => {
        clearTimeout(hard);
        resolve();
      });
      child.kill('SIGTERM');
    });
  }

  /** Stop and remove the folder. Idempotent. */
  async dispose(): Promise<void> {
    await this.stop();
    await fs.rm(this.location, { recursive: true, force: true });
  }
}
