/** File durability shared by every layer: folder fsync, atomic replace of a small file. */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';

/**
 * Replace `file` atomically with `text`, created with `mode`. After a crash
 * the file holds the old or the new content, never a mix; a leftover
 * `.tmp-*` file may remain and is harmless.
 */
export async function writeFileAtomic(file: string, text: string, mode = 0o600): Promise<void> {
  const tmp = `${file}.tmp-${randomBytes(4).toString('hex')}`;
  const fh = await fs.open(tmp, 'w', mode);
  try {
    await fh.chmod(mode);
    await fh.writeFile(text, 'utf8');
    await fh.datasync();
  } finally {
    await fh.close();
  }
  await fs.rename(tmp, file);
  await syncDirectory(path.dirname(file));
}

/** `fsync` a directory, so that names created, renamed or deleted in it are durable. */
export async function syncDirectory(dir: string): Promise<void> {
  const fh = await fs.open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}
