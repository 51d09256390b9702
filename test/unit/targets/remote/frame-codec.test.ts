import assert from 'node:assert/strict';
import fc from 'fast-check';
import { LifeboatError } from '../../../../provider/errors';
import { encodeFrame, encodeFrameHead, FrameDecoder } from '../../../../provider/targets/remote/frame-codec';
import { FLAG_COMPRESSED, type Frame, FrameType, type FrameTypeCode, MAX_FRAME_LENGTH } from '../../../../provider/targets/remote/protocol';

function protocolErrorOf(fn: () => unknown): LifeboatError {
  try {
    fn();
  } catch (e) {
    assert.ok(LifeboatError.isInstance(e), String(e));
    assert.equal(e.code, 'remote.protocolError');
    assert.equal(e.category, 'nonRecoverable');
    return e;
  }
  assert.fail('expected remote.protocolError');
}

const types = Object.values(FrameType) as FrameTypeCode[];

const frameArb = fc.record({
  type: fc.constantFrom(...types),
  flags: fc.constantFrom(0, FLAG_COMPRESSED),
  id: fc.integer({ min: 0, max: 0xffffffff }),
  json: fc.option(fc.dictionary(fc.string({ maxLength: 8 }), fc.oneof(fc.integer(), fc.string({ maxLength: 20 }), fc.boolean(), fc.constant(null)), { maxKeys: 5 }), { nil: undefined }),
  payload: fc.uint8Array({ maxLength: 3000 }).map((a) => Buffer.from(a)),
});

describe('frame codec (docs/replication-protocol.md §3)', () => {
  it('lays a frame out as Length || Type || Flags || Reserved || Id || JsonLength || Json || Payload, big-endian', () => {
    const bytes = encodeFrame(FrameType.Write, FLAG_COMPRESSED, 0x01020304, { a: 1 }, Buffer.from([0xee, 0xff]));
    const json = Buffer.from('{"a":1}');
    const expected = Buffer.concat([
      Buffer.from([0, 0, 0, 12 + json.length + 2]),
      Buffer.from([6, 1, 0, 0, 1, 2, 3, 4, 0, 0, 0, json.length]),
      json,
      Buffer.from([0xee, 0xff]),
    ]);
    assert.ok(bytes.equals(expected), bytes.toString('hex'));
    const head = encodeFrameHead(FrameType.Write, FLAG_COMPRESSED, 0x01020304, { a: 1 }, 2);
    assert.ok(head.equals(expected.subarray(0, expected.length - 2)), 'the head is the frame without its payload');
  });

  it('decodes any sequence of frames, however the stream is cut (fast-check, seed 4242)', () => {
    fc.assert(
      fc.property(fc.array(frameArb, { minLength: 1, maxLength: 8 }), fc.array(fc.integer({ min: 1, max: 4000 }), { minLength: 1, maxLength: 30 }), (frames, cuts) => {
        const stream = Buffer.concat(frames.map((f) => encodeFrame(f.type, f.flags, f.id, f.json, f.payload)));
        const d = new FrameDecoder();
        const out: Frame[] = [];
        let at = 0;
        for (let i = 0; at < stream.length; i++) {
          const n = cuts[i % cuts.length]!;
          out.push(...d.push(stream.subarray(at, at + n)));
          at += n;
        }
        assert.equal(d.pendingBytes, 0);
        assert.equal(out.length, frames.length);
        out.forEach((got, i) => {
          const want = frames[i]!;
          assert.equal(got.type, want.type);
          assert.equal(got.flags, want.flags);
          assert.equal(got.id, want.id);
          assert.deepEqual({ ...got.json }, JSON.parse(JSON.stringify(want.json ?? {})));
          assert.ok(got.payload.equals(want.payload));
        });
      }),
      { seed: 4242, numRuns: 300 },
    );
  });

  it('returns nothing until a frame is complete', () => {
    const f = encodeFrame(FrameType.Ping, 0, 7, undefined);
    const d = new FrameDecoder();
    assert.deepEqual(d.push(f.subarray(0, 3)), []);
    assert.deepEqual(d.push(f.subarray(3, f.length - 1)), []);
    const [frame] = d.push(f.subarray(f.length - 1));
    assert.equal(frame!.id, 7);
    assert.deepEqual(frame!.json, {});
  });

  it('refuses a frame over the limit from its length alone, before buffering it', () => {
    const d = new FrameDecoder();
    const e = protocolErrorOf(() => d.push(Buffer.from([0x01, 0x00, 0x00, 0x01])));
    assert.equal(e.details.length, MAX_FRAME_LENGTH + 1);
    protocolErrorOf(() => new FrameDecoder(1024).push(encodeFrame(FrameType.Data, 0, 1, undefined, Buffer.alloc(2000))));
  });

  it('refuses malformed headers and metadata', () => {
    const good = encodeFrame(FrameType.Request, 0, 1, { op: 'x' });
    const mutate = (fn: (b: Buffer) => void): Buffer => {
      const b = Buffer.from(good);
      fn(b);
      return b;
    };
    protocolErrorOf(() => new FrameDecoder().push(mutate((b) => (b[4] = 0))));
    protocolErrorOf(() => new FrameDecoder().push(mutate((b) => (b[4] = 10))));
    protocolErrorOf(() => new FrameDecoder().push(mutate((b) => (b[5] = 0x02))));
    protocolErrorOf(() => new FrameDecoder().push(mutate((b) => (b[7] = 1))));
    protocolErrorOf(() => new FrameDecoder().push(mutate((b) => b.writeUInt32BE(1000, 12))));
    protocolErrorOf(() => new FrameDecoder().push(mutate((b) => (b[16] = 0x5b))));
    protocolErrorOf(() => new FrameDecoder().push(encodeFrame(FrameType.Request, 0, 1, [1, 2])));
    protocolErrorOf(() => new FrameDecoder().push(Buffer.from([0, 0, 0, 4, 1, 0, 0, 0])));
  });

  it('will not encode a frame over the limit', () => {
    assert.throws(() => encodeFrameHead(FrameType.Data, 0, 1, undefined, MAX_FRAME_LENGTH), (e: unknown) => LifeboatError.isInstance(e) && e.category === 'bug');
  });
});
