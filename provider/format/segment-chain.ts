/**
 * Chain verification (docs/log-format.md §5): sealed segments of one
 * generation, consecutive and linked by checksums. Pure.
 */

import { ResyncRequiredError } from '../errors';
import { type SegmentHeader } from './segment-header';

/** One sealed segment as the chain check needs it. */
export interface ChainLink {
  readonly header: SegmentHeader;
  /** Its segment checksum, from its seal (§3.5). */
  readonly segmentChecksum: number;
}

/** Codes of a broken chain (§5). */
export type ChainProblemCode = 'chain.diskMismatch' | 'chain.generationMismatch' | 'chain.gap' | 'chain.linkMismatch';

/** Why a list of segments is not a valid chain, and where. */
export interface ChainProblem {
  readonly code: ChainProblemCode;
  /** Index in the list of the segment that does not follow its predecessor. */
  readonly index: number;
  readonly message: string;
}

/**
 * The first problem of `links` as a chain (§5), or `undefined` if they form
 * one. An empty list or a single segment is a valid chain. Pure.
 */
export function verifyChain(links: readonly ChainLink[]): ChainProblem | undefined {
  for (let i = 1; i < links.length; i++) {
    const prev = links[i - 1]!.header;
    const cur = links[i]!.header;
    if (cur.diskId !== prev.diskId || cur.diskSize !== prev.diskSize) {
      return { code: 'chain.diskMismatch', index: i, message: `segment ${cur.seq} belongs to another disk (${cur.diskId}, ${cur.diskSize} bytes)` };
    }
    if (cur.generation !== prev.generation) {
      return { code: 'chain.generationMismatch', index: i, message: `segment ${cur.seq} is of generation ${cur.generation}, not ${prev.generation}` };
    }
    if (cur.seq !== prev.seq + 1) {
      return { code: 'chain.gap', index: i, message: `segment ${cur.seq} follows segment ${prev.seq}: segments ${prev.seq + 1} … ${cur.seq - 1} are missing` };
    }
    if (cur.previousChecksum !== links[i - 1]!.segmentChecksum) {
      return { code: 'chain.linkMismatch', index: i, message: `segment ${cur.seq} does not link to the checksum of segment ${prev.seq}` };
    }
  }
  return undefined;
}

/**
 * Throws `ResyncRequiredError` with the problem's code if `links` is not a
 * valid chain (a broken chain is never patched, §5). Pure otherwise.
 */
export function assertChain(links: readonly ChainLink[]): void {
  const problem = verifyChain(links);
  if (problem !== undefined) {
    throw new ResyncRequiredError(problem.code, problem.message, {
      hint: 'A segment of the replication log is missing or does not belong; the item needs a resynchronisation (a new generation).',
      details: { index: problem.index },
    });
  }
}
