/**
 * Constants of the replication log format (docs/log-format.md). Every size,
 * magic and limit the codecs use is here, named after the section that
 * defines it.
 */

import { MiB } from '../units';

/** Format version written and the only one read (§10). */
export const FORMAT_VERSION = 1;

/** Segment header magic, "LBHRL\r\n\x1a" (§3.2). */
export const SEGMENT_MAGIC: Buffer = Buffer.from([0x4c, 0x42, 0x48, 0x52, 0x4c, 0x0d, 0x0a, 0x1a]);

/** Size of the segment header (§3.2). */
export const SEGMENT_HEADER_SIZE = 128;

/** Header flag: the segment is the first of its generation (§3.2). */
export const FLAG_FIRST_OF_GENERATION = 1;

/** Size of every record header, flush marker and seal (§3.3–§3.5). */
export const RECORD_HEADER_SIZE = 32;

/** Record types (§3.3–§3.5). */
export const RecordType = { write: 1, flush: 2, seal: 3 } as const;

/** Largest data of one write record: 32 MiB (§3.3, §12). */
export const MAX_RECORD_DATA = 32 * MiB;

/** Largest record index + 1: records per segment (§12). */
export const MAX_RECORDS_PER_SEGMENT = 0xffff_ffff;

/** Longest disk id (§1). */
export const MAX_DISK_ID_LENGTH = 64;

/** Disk sizes are multiples of this (§1). */
export const SECTOR_SIZE = 512;

/** Bytes of a generation id (§1). */
export const GENERATION_ID_BYTES = 8;

/** Activity-log page magic, "LBACTLOG" (§9.2). */
export const ACTIVITY_LOG_MAGIC: Buffer = Buffer.from('LBACTLOG', 'latin1');

/** Activity-log suspect section magic, "LBSUSPCT" (§9.4). */
export const SUSPECT_MAGIC: Buffer = Buffer.from('LBSUSPCT', 'latin1');

/** Size of one activity-log page (§9.2). */
export const ACTIVITY_LOG_PAGE_SIZE = 4096;

/** Bytes before the slots of an activity-log page (§9.2). */
export const ACTIVITY_LOG_PAGE_HEADER_SIZE = 64;

/** Most slots a page holds (§9.2, §12). */
export const MAX_ACTIVITY_LOG_SLOTS = (ACTIVITY_LOG_PAGE_SIZE - ACTIVITY_LOG_PAGE_HEADER_SIZE - 4) / 8 | 0;

/** Smallest and largest activity-log extent size (§9.2). */
export const MIN_EXTENT_SIZE = 4096;
export const MAX_EXTENT_SIZE = 1024 * MiB;
