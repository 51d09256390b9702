import { strict as assert } from 'node:assert';
import { type CliContext } from '../../../provider/cli/command';
import { EXIT } from '../../../provider/cli/exit-codes';
import { main } from '../../../provider/cli/main';
import { type Output } from '../../../provider/cli/output';

function capture(): { ctx: CliContext; out: string[]; err: string[] } {
  const out: string[] = [];
  const err: string[] = [];
  const o: Output = { isTTY: false, line: (t) => out.push(t), error: (t) => err.push(t), redraw: (t) => out.push(t) };
  return { ctx: { out: o, env: {}, cwd: '/nonexistent', signal: new AbortController().signal }, out, err };
}

describe('cli/main', () => {
  it('prints the usage: exit 0 when asked, 2 without a command', async () => {
    const asked = capture();
    assert.equal(await main(['help'], asked.ctx), EXIT.ok);
    assert.match(asked.out.join('\n'), /^usage: lifeboat COMMAND/);
    assert.match(asked.out.join('\n'), /Exit codes: 0 done, 1 failed, 2 usage error, 3 vault unreachable, 4 not found, 5 authentication refused/);
    assert.equal(await main([], capture().ctx), EXIT.usage);
  });

  it('refuses unknown commands and incomplete ones with a hint (exit 2)', async () => {
    const unknown = capture();
    assert.equal(await main(['frobnicate'], unknown.ctx), EXIT.usage);
    assert.match(unknown.err.join('\n'), /unknown command frobnicate \[cli\.usage\]\n {2}hint: run `lifeboat help`/);
    const half = capture();
    assert.equal(await main(['lab'], half.ctx), EXIT.usage);
    assert.match(half.err.join('\n'), /lab needs a subcommand: up, status, down/);
    const agent = capture();
    assert.equal(await main(['agent', 'run', '--vault', 'http://x'], agent.ctx), EXIT.usage);
    assert.match(agent.err.join('\n'), /the vault name is missing/);
  });

  it('says there is no vault to talk to (exit 2) when nothing names one', async () => {
    const c = capture();
    assert.equal(await main(['status'], c.ctx), EXIT.usage);
    assert.match(c.err.join('\n'), /no vault to talk to/);
  });
});
