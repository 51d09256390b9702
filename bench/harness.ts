/**
 * Shared pieces of the benchmarks: test-disk generation, timing of our code
 * and of baseline commands in the same run, peak memory, and the report.
 *
 * Every benchmark runs its baseline (cp, rsync, raw writes) on the same data
 * in the same run and reports ratios, so results compare across machines.
 * Each measurement is taken warm: the data is read once beforehand, so the
 * page cache serves both our code and the baseline alike.
 */
import { spawn } from 'node:child_process';
import { createCipheriv, createHash } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { MiB, formatBytes } from '../provider/units';

export interface Measurement {
  readonly name: string;
  readonly seconds: number;
  /** Bytes of payload the step moved (for throughput). */
  readonly bytes?: number;
  /** Bytes that crossed to the replica side, when that differs from `bytes`. */
  readonly bytesSent?: number;
  /** Peak resident set size in bytes, when measured. */
  readonly peakRssBytes?: number;
}

export interface BenchResult {
  readonly benchmark: string;
  readonly measurements: readonly Measurement[];
  /** Named ratios, e.g. "lifeboat / cp throughput". */
  readonly ratios: Readonly<Record<string, number>>;
  /** Target per the issue, and whether it was met. */
  readonly targets: ReadonlyArray<{ readonly what: string; readonly met: boolean }>;
  /** Settings used and facts worth recording with the numbers. */
  readonly notes?: readonly string[];
}

/** Time an async function. */
export async function timeIt<T>(fn: () => Promise<T>): Promise<{ result: T; seconds: number }> {
  const start = process.hrtime.bigint();
  const result = await fn();
  return { result, seconds: Number(process.hrtime.bigint() - start) / 1e9 };
}

/** Run a command to completion; rejects on a non-zero exit with its stderr. */
export async function run(cmd: string, args: readonly string[]): Promise<{ seconds: number; stdout: string; stderr: string }> {
  const start = process.hrtime.bigint();
  const { stdout, stderr } = await new Promise<{ stdout: string; stderr: string }>((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { err += d.toString(); });
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve({ stdout: out, stderr: err }) : reject(new Error(`${cmd} ${args.join(' ')}: exit ${code}: ${err}`))));
  });
  return { seconds: Number(process.hrtime.bigint() - start) / 1e9, stdout, stderr };
}

/** A temporary folder for one benchmark, removed by `dispose`. */
export async function scratch(prefix: string): Promise<{ dir: string; dispose: () => Promise<void> }> {
  const base = process.env.LIFEBOAT_BENCH_DIR ?? os.tmpdir();
  const dir = await fs.mkdtemp(path.join(base, `lifeboat-bench-${prefix}-`));
  return { dir, dispose: () => fs.rm(dir, { recursive: true, force: true }) };
}

/** A small seeded PRNG (xorshift128+), so test disks are the same every run. */
export class Prng {
  private s0: bigint;
  private s1: bigint;
  constructor(seed: number) {
    this.s0 = BigInt(seed) * 0x9e3779b97f4a7c15n + 1n;
    this.s1 = BigInt(seed) ^ 0xdeadbeefcafebaben;
  }
  next(): number {
    const mask = (1n << 64n) - 1n;
    let x = this.s0;
    const y = this.s1;
    this.s0 = y;
    x = (x ^ (x << 23n)) & mask;
    this.s1 = (x ^ y ^ (x >> 17n) ^ (y >> 26n)) & mask;
    return Number((this.s1 + y) & 0xffffffffn) / 0x100000000;
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
}

export type ChunkKind = 'random' | 'zero' | 'text';

/**
 * Write a test disk of `size` bytes in 1 MiB chunks whose kinds follow
 * `mix` (fractions summing to 1), shuffled with a seed. Zero chunks are holes
 * (the file is sparse). Random chunks are an AES-256-CTR keystream keyed by
 * the seed and the chunk index, so they do not compress and cost little to make.
 */
export async function makeDisk(
  file: string,
  size: number,
  mix: Readonly<Record<ChunkKind, number>>,
  seed = 1,
): Promise<Record<ChunkKind, number>> {
  const chunks = Math.ceil(size / MiB);
  const kinds: ChunkKind[] = [];
  for (const k of ['random', 'zero', 'text'] as const) {
    for (let i = 0; i < Math.round(chunks * mix[k]); i++) kinds.push(k);
  }
  while (kinds.length < chunks) kinds.push('random');
  kinds.length = chunks;
  const prng = new Prng(seed);
  for (let i = kinds.length - 1; i > 0; i--) {
    const j = prng.int(i + 1);
    [kinds[i], kinds[j]] = [kinds[j]!, kinds[i]!];
  }
  const text = Buffer.from(
    'Lifeboat replicates the disks of virtual machines to a recovery site and keeps recovery points. '.repeat(
      Math.ceil(MiB / 96),
    ),
  ).subarray(0, MiB);
  const counts: Record<ChunkKind, number> = { random: 0, zero: 0, text: 0 };
  const fh = await fs.open(file, 'w');
  try {
    await fh.truncate(size);
    const buf = Buffer.alloc(MiB);
    for (let i = 0; i < chunks; i++) {
      const kind = kinds[i]!;
      counts[kind]++;
      if (kind === 'zero') continue;
      if (kind === 'text') {
        text.copy(buf);
        buf.writeUInt32LE(i, 0); // no two text chunks are identical
      } else {
        randomChunk(seed, i).copy(buf);
      }
      const len = Math.min(MiB, size - i * MiB);
      await fh.write(buf, 0, len, i * MiB);
    }
  } finally {
    await fh.close();
  }
  return counts;
}

const ZERO_MIB = Buffer.alloc(MiB);

/** 1 MiB of incompressible bytes, the same for the same seed and index. */
export function randomChunk(seed: number, index: number): Buffer {
  const key = createHash('sha256').update(`${seed}:${index}`).digest();
  const cipher = createCipheriv('aes-256-ctr', key, Buffer.alloc(16));
  return Buffer.concat([cipher.update(ZERO_MIB), cipher.final()]);
}

/**
 * Write every dirty page of the system to disk, so that one contender's
 * write-back does not land in the next one's time.
 */
export async function settle(): Promise<void> {
  await run('sync', []);
}

/** Read a file once so the page cache holds it for every contender. */
export async function warm(file: string): Promise<void> {
  const fh = await fs.open(file, 'r');
  try {
    const buf = Buffer.alloc(8 * MiB);
    for (let pos = 0; ; pos += buf.length) {
      const { bytesRead } = await fh.read(buf, 0, buf.length, pos);
      if (bytesRead === 0) break;
    }
  } finally {
    await fh.close();
  }
}

/** SHA-256 of a whole file, for checking a benchmark's copy is right. */
export async function fileDigest(file: string): Promise<string> {
  const h = createHash('sha256');
  const fh = await fs.open(file, 'r');
  try {
    const buf = Buffer.alloc(8 * MiB);
    for (let pos = 0; ; pos += buf.length) {
      const { bytesRead } = await fh.read(buf, 0, buf.length, pos);
      if (bytesRead === 0) break;
      h.update(buf.subarray(0, bytesRead));
    }
  } finally {
    await fh.close();
  }
  return h.digest('hex');
}

/** Throughput in MiB/s. */
export function mibPerSecond(bytes: number, seconds: number): number {
  return bytes / MiB / seconds;
}

/** The machine, for the record in docs/benchmarks.md. */
export function machine(): string {
  const cpus = os.cpus();
  return `${cpus.length} × ${cpus[0]?.model ?? 'unknown CPU'}, ${formatBytes(os.totalmem())} RAM, ${os.type()} ${os.release()}, Node ${process.version}`;
}

/** Print a result as a markdown section and save it as JSON under bench/out/. */
export async function report(result: BenchResult): Promise<void> {
  const lines = [`### ${result.benchmark}`, '', '| step | seconds | MiB/s | sent | peak RSS |', '|---|---:|---:|---:|---:|'];
  for (const m of result.measurements) {
    const rate = m.bytes === undefined ? '' : mibPerSecond(m.bytes, m.seconds).toFixed(1);
    const sent = m.bytesSent === undefined ? '' : formatBytes(m.bytesSent);
    const rss = m.peakRssBytes === undefined ? '' : formatBytes(m.peakRssBytes);
    lines.push(`| ${m.name} | ${m.seconds.toFixed(2)} | ${rate} | ${sent} | ${rss} |`);
  }
  lines.push('');
  for (const [k, v] of Object.entries(result.ratios)) lines.push(`- ${k}: **${v.toFixed(2)}**`);
  for (const t of result.targets) lines.push(`- target ${t.what}: ${t.met ? 'met' : '**not met**'}`);
  for (const n of result.notes ?? []) lines.push(`- ${n}`);
  lines.push(`- machine: ${machine()}; load average at the end: ${loadAverage()}`);
  lines.push('');
  console.log(lines.join('\n'));
  const out = path.join(process.env.LIFEBOAT_ROOT ?? process.cwd(), 'bench', 'out');
  await fs.mkdir(out, { recursive: true });
  await fs.writeFile(path.join(out, `${result.benchmark.replace(/[^a-z0-9]+/gi, '-').toLowerCase()}.json`), JSON.stringify({ machine: machine(), loadAverage: loadAverage(), ...result }, null, 2));
}

/** A numeric knob of a benchmark, overridable from the environment (for tuning sweeps). */
export function knob(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const v = Number(raw);
  if (!Number.isFinite(v) || v <= 0) throw new Error(`${name}=${raw}: expected a positive number`);
  return v;
}

/** Fail the benchmark unless `copy` holds exactly the bytes of `original`: a fast wrong copy is a failure. */
export async function assertSameContent(what: string, original: string, copy: string): Promise<void> {
  await assertDigest(what, copy, await fileDigest(original));
}

/** Fail the benchmark unless `file` has the SHA-256 `expected` (hex). */
export async function assertDigest(what: string, file: string, expected: string): Promise<void> {
  const got = await fileDigest(file);
  if (got !== expected) throw new Error(`${what}: ${file} is wrong (sha256 ${got}, expected ${expected})`);
}

/** Bytes a file occupies on disk (allocated blocks), to show what stayed sparse. */
export async function allocatedBytes(file: string): Promise<number> {
  return (await fs.stat(file)).blocks * 512;
}

/** Load average over the last minute, recorded with results: the cores are shared. */
export function loadAverage(): string {
  return os.loadavg().map((l) => l.toFixed(2)).join(' ');
}

/** Median of a non-empty list. */
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** One side of a comparison: `timed` runs the step and returns its seconds. */
export interface Contender {
  readonly name: string;
  /** Untimed, before every run of this contender (after the shared `prepare`). @default none */
  readonly before?: () => Promise<void>;
  readonly timed: () => Promise<number>;
  /** Untimed, after every run: check the result (a fast wrong copy is a failure). @default none */
  readonly verify?: () => Promise<void>;
  /** Run only in the first this many rounds (a slow contender whose verdict one run settles). @default every round */
  readonly rounds?: number;
}

/** Times of one contender: the median and every run. */
export interface ContenderTimes {
  readonly name: string;
  readonly seconds: number;
  readonly all: readonly number[];
}

/**
 * Run the contenders in `runs` interleaved rounds (a, b, c, a, b, c, …), each
 * run after `prepare`, so that a drift of the machine (other processes on the
 * shared cores) falls on every contender alike. Returns each one's median.
 */
/** Every run's time of each contender, for a report note: `a: 1.20, 1.31 s; b: …`. */
export function everyRun(times: readonly ContenderTimes[]): string {
  return times.map((t) => `${t.name}: ${t.all.map((x) => x.toFixed(2)).join(', ')} s`).join('; ');
}

export async function compete(runs: number, prepare: () => Promise<void>, contenders: readonly Contender[]): Promise<ContenderTimes[]> {
  const all = contenders.map(() => [] as number[]);
  for (let round = 0; round < runs; round++) {
    for (const [i, c] of contenders.entries()) {
      if (round >= (c.rounds ?? runs)) continue;
      await prepare();
      await c.before?.();
      global.gc?.();
      all[i]!.push(await c.timed());
      await c.verify?.();
    }
  }
  return contenders.map((c, i) => ({ name: c.name, seconds: median(all[i]!), all: all[i]! }));
}

/** Wait `seconds`. */
export function rest(seconds: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, seconds * 1000));
}
