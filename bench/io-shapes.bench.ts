/**
 * Two facts about this machine and runtime that the other benchmarks'
 * interpretations rest on (docs/benchmarks.md §3, §6), measured so they can
 * be checked rather than believed:
 *
 * 1. Writing into a fresh sparse file (new page-cache pages) in 1 MiB pieces
 *    against 128 KiB pieces (`cp`'s size), with `fs.writeSync`.
 * 2. SHA-256 digests of 4 KiB blocks with one asynchronous read per block
 *    (what `HostReplicaDisk.hashBlocks` did for blocks under 1 MiB before it
 *    read 4 MiB spans) against
 *    1 MiB reads hashed block by block.
 *
 * No target: these are references. Knobs: BENCH_WRITE_MIB, BENCH_HASH_MIB,
 * BENCH_RUNS, BENCH_REST_S.
 */
import { closeSync, ftruncateSync, openSync, writeSync } from 'node:fs';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { KiB, MiB, formatBytes } from '../provider/units';
import { type Contender, compete, knob, makeDisk, randomChunk, report, rest, scratch, settle, timeIt, warm, everyRun } from './harness';

/** Write `total` bytes of random data into a fresh sparse file in `piece`-sized writes. */
function writePieces(file: string, total: number, piece: number, data: Buffer): number {
  if (data.length % piece !== 0 || total % piece !== 0) throw new Error('pieces must divide the data and the total');
  const start = process.hrtime.bigint();
  const fd = openSync(file, 'w+');
  try {
    ftruncateSync(fd, total);
    for (let at = 0; at < total; at += piece) {
      if (writeSync(fd, data, at % data.length, piece, at) !== piece) throw new Error('short write');
    }
  } finally {
    closeSync(fd);
  }
  return Number(process.hrtime.bigint() - start) / 1e9;
}

/** Digests of every `block` of `file`, reading `readSize` at a time. */
async function digestBlocks(file: string, block: number, readSize: number): Promise<number> {
  const fh = await fs.open(file, 'r');
  try {
    const size = (await fh.stat()).size;
    const buf = Buffer.alloc(readSize);
    let digests = 0;
    for (let at = 0; at < size; at += readSize) {
      const { bytesRead } = await fh.read(buf, 0, Math.min(readSize, size - at), at);
      for (let o = 0; o < bytesRead; o += block) {
        createHash('sha256').update(buf.subarray(o, Math.min(o + block, bytesRead))).digest();
        digests++;
      }
    }
    return digests;
  } finally {
    await fh.close();
  }
}

async function main(): Promise<void> {
  const writeTotal = knob('BENCH_WRITE_MIB', 1536) * MiB;
  const hashTotal = knob('BENCH_HASH_MIB', 512) * MiB;
  const runs = knob('BENCH_RUNS', 3);
  const restSeconds = knob('BENCH_REST_S', 4);
  const { dir, dispose } = await scratch('io-shapes');
  try {
    // The data must not fit a CPU cache, or larger pieces would be unfairly slow.
    const data = Buffer.concat([0, 1, 2, 3, 4, 5, 6, 7].map((i) => randomChunk(3, i)));
    const out = path.join(dir, 'fresh.raw');
    const writer = (piece: number): Contender => ({
      name: `write ${formatBytes(writeTotal)} into a fresh file, ${formatBytes(piece)} pieces`,
      timed: async () => writePieces(out, writeTotal, piece, data),
    });
    const writes = await compete(
      runs,
      async () => {
        await fs.rm(out, { force: true });
        await settle();
        await rest(restSeconds);
      },
      [writer(128 * KiB), writer(MiB)],
    );
    await fs.rm(out, { force: true });

    const disk = path.join(dir, 'hash.raw');
    await makeDisk(disk, hashTotal, { random: 1, zero: 0, text: 0 });
    const hasher = (readSize: number): Contender => ({
      name: `SHA-256 of the 4 KiB blocks of ${formatBytes(hashTotal)}, ${readSize === 4 * KiB ? 'one read per block' : `${formatBytes(readSize)} reads`}`,
      timed: async () => (await timeIt(() => digestBlocks(disk, 4 * KiB, readSize))).seconds,
    });
    const hashes = await compete(1, () => warm(disk), [hasher(4 * KiB), hasher(MiB)]);

    const [w128, w1m] = writes;
    const [perBlock, spans] = hashes;
    await report({
      benchmark: 'io-shapes',
      measurements: [
        ...writes.map((t) => ({ name: t.name, seconds: t.seconds, bytes: writeTotal })),
        ...hashes.map((t) => ({ name: t.name, seconds: t.seconds, bytes: hashTotal })),
      ],
      ratios: {
        '1 MiB pieces / 128 KiB pieces, time to fill a fresh file': w1m!.seconds / w128!.seconds,
        'one read per 4 KiB block / 1 MiB reads, time to digest': perBlock!.seconds / spans!.seconds,
      },
      targets: [],
      notes: [
        `writes: median of ${runs} interleaved rounds, each after \`sync\` and ${restSeconds} s of rest; every run: ${everyRun(writes)}`,
        'digests: one run each, file in the page cache',
      ],
    });
  } finally {
    await dispose();
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
