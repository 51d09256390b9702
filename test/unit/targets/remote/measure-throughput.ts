/**
 * Rough throughput of one large cycle over loopback TLS, against `cp` of the
 * same bytes on the same machine (docs/replication-protocol.md §10). Not a
 * test: run it by hand, it prints a table.
 *
 *   node -r ts-node/register/transpile-only test/unit/targets/remote/measure-throughput.ts [MiB]
 *
 * The source is a file of random bytes (incompressible, in the page cache),
 * read in 1 MiB pieces as an initial copy would; the replica is (a) a plain
 * file written at offsets (the protocol's own cost) and (b) a HostReplicaTarget
 * store. Neither side fsyncs except where the store's format requires it.
 * The server runs in a child process, as the recovery-site agent would (one
 * process per agent); "same process" rows put both ends on one event loop.
 */
import { execFile, fork } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, open, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import {
  type CycleMeta,
  type CycleWriter,
  type OpenDiskOptions,
  type ReplicaDisk,
  type ReplicaTarget,
} from '../../../../provider/replication/target';
import { HostReplicaTarget } from '../../../../provider/targets/host/host-replica-target';
import { ReplicaServer } from '../../../../provider/targets/remote/replica-server';
import { RemoteReplicaTarget } from '../../../../provider/targets/remote/remote-replica-target';
import { MiB } from '../../../../provider/units';
import { testCerts, type TestCerts } from './test-certs';

const run = promisify(execFile);

/** A target that writes straight into one file per disk: no undo, no points. */
class FileSinkTarget implements ReplicaTarget {
  readonly kind = 'file-sink';
  constructor(private readonly dir: string) {}
  async openDisk(o: OpenDiskOptions): Promise<ReplicaDisk> {
    const fh = await open(join(this.dir, 'sink.img'), 'w+');
    await fh.truncate(o.sizeBytes);
    const unsupported = (): never => {
      throw new Error('not supported by the sink');
    };
    return {
      diskId: o.diskId,
      sizeBytes: o.sizeBytes,
      state: async () => ({ diskId: o.diskId, sizeBytes: o.sizeBytes, generation: undefined, appliedSeq: 0, points: [] }),
      beginCycle: async (_m: CycleMeta): Promise<CycleWriter> => ({
        write: async (offset, data) => {
          await fh.write(data, 0, data.length, offset);
        },
        commit: async () => undefined,
        abort: async () => undefined,
      }),
      listPoints: async () => [],
      prunePoints: async () => [],
      hashBlocks: unsupported,
      openView: unsupported,
      materialise: unsupported,
      close: async () => fh.close(),
    };
  }
  async listDisks(): Promise<readonly string[]> {
    return [];
  }
  async deleteDisk(): Promise<void> {}
  async close(): Promise<void> {}
}

/** Serve a target of `kind` in `dir` from a child process; resolves with its port and a stop function. */
async function serveInChild(kind: 'file-sink' | 'host', dir: string): Promise<{ port: number; stop: () => Promise<void> }> {
  const child = fork(__filename, ['serve', kind, dir], { execArgv: ['-r', 'ts-node/register/transpile-only'] });
  child.send(await testCerts());
  const port = await new Promise<number>((resolve, reject) => {
    child.once('message', (m) => resolve(Number(m)));
    child.once('exit', (code) => reject(new Error(`server child exited with ${code}`)));
  });
  return {
    port,
    stop: async () => {
      const exited = new Promise<void>((r) => child.once('exit', () => r()));
      child.send('stop');
      await exited;
    },
  };
}

/** The child: serve until told to stop. */
async function childServer(kind: string, dir: string): Promise<void> {
  const certs = await new Promise<TestCerts>((resolve) => process.once('message', (m) => resolve(m as TestCerts)));
  const target: ReplicaTarget = kind === 'host' ? await HostReplicaTarget.open({ root: dir }) : new FileSinkTarget(dir);
  const server = new ReplicaServer({ target, key: certs.server.key, cert: certs.server.cert, ca: certs.ca });
  const { port } = await server.listen();
  process.send!(port);
  process.once('message', () => {
    void server.close().then(async () => {
      await target.close();
      process.exit(0);
    });
  });
}

async function replicate(source: string, size: number, where: ReplicaTarget | number, kind: string, compression: 'zstd' | 'none'): Promise<number> {
  const certs = await testCerts();
  const server = typeof where === 'number' ? undefined : new ReplicaServer({ target: where, key: certs.server.key, cert: certs.server.cert, ca: certs.ca });
  const port = server === undefined ? (where as number) : (await server.listen()).port;
  const client = new RemoteReplicaTarget({ host: '127.0.0.1', port, ca: certs.ca, key: certs.client.key, cert: certs.client.cert, kind, compression });
  const src = await open(source, 'r');
  try {
    const disk = await client.openDisk({ diskId: 'bench', sizeBytes: size });
    const buf = Buffer.allocUnsafe(MiB);
    const t0 = process.hrtime.bigint();
    const w = await disk.beginCycle({ generation: 'g', seq: 1, time: Date.now(), point: 'crashConsistent' });
    for (let at = 0; at < size; at += MiB) {
      const { bytesRead } = await src.read(buf, 0, MiB, at);
      await w.write(at, buf.subarray(0, bytesRead));
    }
    await w.commit();
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    return seconds;
  } finally {
    await src.close();
    await client.close();
    await server?.close();
  }
}

async function main(): Promise<void> {
  const mib = Number(process.argv[2] ?? 256);
  const size = mib * MiB;
  const dir = await mkdtemp(join(tmpdir(), 'lifeboat-measure-'));
  try {
    const source = join(dir, 'source.img');
    const piece = randomBytes(16 * MiB);
    const fh = await open(source, 'w');
    for (let at = 0; at < size; at += piece.length) await fh.write(piece.map((b, i) => (b + at + i) & 0xff), 0, piece.length, at);
    await fh.close();
    await writeFile(join(dir, 'warm'), '');
    await run('cat', [source], { maxBuffer: 2 * size });

    const t0 = process.hrtime.bigint();
    await run('cp', [source, join(dir, 'copy.img')]);
    const cp = Number(process.hrtime.bigint() - t0) / 1e9;
    await rm(join(dir, 'copy.img'));
    const rows: Array<[string, number]> = [['cp', cp]];

    for (const [name, kind, compression] of [
      ['TLS → file sink', 'file-sink', 'none'],
      ['TLS → file sink, zstd', 'file-sink', 'zstd'],
      ['TLS → HostReplicaTarget', 'host', 'none'],
    ] as const) {
      const child = await serveInChild(kind, await mkdtemp(join(dir, `${kind}-`)));
      rows.push([name, await replicate(source, size, child.port, kind, compression)]);
      await child.stop();
    }
    rows.push(['TLS → file sink, same process', await replicate(source, size, new FileSinkTarget(await mkdtemp(join(dir, 'inproc-'))), 'file-sink', 'none')]);

    console.log(`\n${mib} MiB, random data, ${new Date().toISOString()}`);
    for (const [name, s] of rows) console.log(`${name.padEnd(32)} ${s.toFixed(2).padStart(7)} s ${(mib / s).toFixed(0).padStart(6)} MiB/s  ${(cp / s).toFixed(2)}× cp`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

if (process.argv[2] === 'serve') {
  childServer(process.argv[3]!, process.argv[4]!).catch((e) => {
    console.error(e);
    process.exit(1);
  });
} else {
  main().catch((e) => {
    console.error(e);
    process.exit(1);
  });
}
