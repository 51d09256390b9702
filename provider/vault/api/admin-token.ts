/**
 * The admin bearer token: random, made at the vault's first start and
 * written to a file only its owner can read (mode 0600), never printed. The
 * file is created exclusively, so two vaults starting on the same folder
 * cannot each write a different token.
 */

import { constants } from 'node:fs';
import { open, readFile, stat } from 'node:fs/promises';
import { NonRecoverableError } from '../../errors';
import { newSecret } from '../control/vaults';

/**
 * Read the token from `file`, creating it with a new token if it does not
 * exist. Throws `NonRecoverableError('vault.tokenFileInsecure')` if the file
 * is readable or writable by group or others, and
 * `NonRecoverableError('vault.tokenFileEmpty')` if it holds no token; the file
 * is not changed then.
 */
export async function loadOrCreateAdminToken(file: string): Promise<string> {
  try {
    const handle = await open(file, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
    const token = newSecret('lba');
    try {
      await handle.writeFile(`${token}\n`, 'utf8');
      await handle.sync();
    } finally {
      await handle.close();
    }
    return token;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
  }
  const st = await stat(file);
  if ((st.mode & 0o077) !== 0) {
    throw new NonRecoverableError('vault.tokenFileInsecure', `the admin token file ${file} is accessible to other users (mode ${(st.mode & 0o777).toString(8)})`, {
      hint: `run: chmod 600 ${file}`,
    });
  }
  const token = (await readFile(file, 'utf8')).trim();
  if (token === '') {
    throw new NonRecoverableError('vault.tokenFileEmpty', `the admin token file ${file} is empty`, { hint: 'delete it; the vault writes a new token at its next start' });
  }
  return token;
}
