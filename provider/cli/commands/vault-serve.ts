/** `lifeboat vault serve --data-dir DIR [--host ADDRESS] [--port N]`: run the vault in the foreground. */

import { runVault } from '../../vault';
import { type Command, intOption, parse, requiredOption } from '../command';
import { SERVING } from '../serving';

const USAGE = 'lifeboat vault serve --data-dir DIR [--host ADDRESS] [--port N]';

export const vaultServe: Command = async (args, ctx) => {
  const { values } = parse(args, { 'data-dir': { type: 'string' }, host: { type: 'string' }, port: { type: 'string' } }, USAGE);
  const dataDir = requiredOption(values, 'data-dir', USAGE);
  const port = intOption(values, 'port', 0, 65535);
  await runVault({
    dataDir,
    ...(typeof values.host === 'string' ? { host: values.host } : {}),
    ...(port === undefined ? {} : { port }),
    out: (line) => ctx.out.line(line),
  });
  return SERVING;
};
