/**
 * Constants and message shapes of the agent-to-agent replication protocol,
 * docs/replication-protocol.md. Sections are cited as §n of that document.
 */

import { KiB, MiB, SECOND } from '../../units';

/** `protocol` field of the server's HELLO (§4). */
export const PROTOCOL_NAME = 'lifeboat-replication';

/** Protocol versions this implementation speaks, ascending (§4, §11). */
export const SUPPORTED_VERSIONS: readonly number[] = [1];

/** Bytes of Length plus the fixed header (§3). */
export const FRAME_HEAD_BYTES = 16;

/** Bytes of the fixed header counted in Length: Type … JsonLength (§3). */
export const FRAME_HEADER_AFTER_LENGTH = 12;

/** Largest allowed value of the Length field in version 1 (§3). */
export const MAX_FRAME_LENGTH = 16 * MiB;

/** Message types (§5). */
export const FrameType = {
  Hello: 1,
  Request: 2,
  Response: 3,
  Data: 4,
  Error: 5,
  Write: 6,
  Credit: 7,
  Ping: 8,
  Pong: 9,
} as const;
export type FrameTypeCode = (typeof FrameType)[keyof typeof FrameType];

/** Flag bit 0: the payload is zstd-compressed (§3, §8). */
export const FLAG_COMPRESSED = 0x01;

/** Every flag bit version 1 defines. */
export const KNOWN_FLAGS = FLAG_COMPRESSED;

/** PEM text or bytes (keys and certificates). */
export type Pem = string | Buffer;

/** One decoded frame (§3). */
export interface Frame {
  readonly type: FrameTypeCode;
  readonly flags: number;
  /** Request id, handle or 0, as the type says (§5). */
  readonly id: number;
  /** The metadata object; `{}` when JsonLength is 0. */
  readonly json: Readonly<Record<string, unknown>>;
  /** The binary part; a view into the receive buffer, possibly empty. */
  readonly payload: Buffer;
  /**
   * Present when the frame's bytes live in a pooled buffer: call once the
   * payload is no longer used, so the buffer can be reused.
   */
  readonly release?: () => void;
}

/** Payload codecs (§8). */
export type CompressionCodec = 'zstd';

/** The server's HELLO: what it offers (§4). */
export interface ServerHello {
  readonly protocol: string;
  readonly versions: readonly number[];
  readonly targetKind: string;
  readonly compression: readonly CompressionCodec[];
  readonly windowBytes: number;
  readonly maxChunkBytes: number;
}

/** The client's HELLO: what it chose (§4). */
export interface ClientHello {
  readonly version: number;
  readonly compression: CompressionCodec | 'none';
  readonly windowBytes: number;
  readonly maxChunkBytes: number;
}

/** Operations of REQUEST frames (§6). */
export type Operation =
  | 'target.openDisk'
  | 'target.listDisks'
  | 'target.deleteDisk'
  | 'disk.state'
  | 'disk.beginCycle'
  | 'disk.listPoints'
  | 'disk.prunePoints'
  | 'disk.hashBlocks'
  | 'disk.openView'
  | 'disk.materialise'
  | 'disk.close'
  | 'cycle.commit'
  | 'cycle.abort'
  | 'view.read'
  | 'view.close';

/** Defaults shared by client and server (§7). */
export const DEFAULT_WINDOW_BYTES = 16 * MiB;
export const DEFAULT_MAX_CHUNK_BYTES = 1 * MiB;
/** Smallest window either side accepts: one chunk of the smallest useful size. */
export const MIN_WINDOW_BYTES = 4 * KiB;
export const DEFAULT_REQUEST_TIMEOUT_MS = 120 * SECOND;
export const DEFAULT_CONNECT_TIMEOUT_MS = 30 * SECOND;
export const DEFAULT_KEEPALIVE_INTERVAL_MS = 30 * SECOND;
export const DEFAULT_IDLE_TIMEOUT_MS = 120 * SECOND;
/**
 * TLS 1.3 cipher suites of the replication channel, most preferred first
 * (§2). AES-128-GCM runs on AES-NI with 10 rounds instead of 14: the
 * cheapest of the three per byte on hosts with AES-NI. The server's order
 * wins (`honorCipherOrder`); a client offers the same order, so either end
 * alone gets it against a peer with Node.js's default (AES-256 first).
 */
export const TLS_CIPHER_SUITES = 'TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256';
/** TCP keep-alive probe delay on both ends (§7.6). */
export const TCP_KEEPALIVE_MS = 30 * SECOND;
