import { strict as assert } from 'node:assert';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { fileCommandJournal } from '../../../provider/agent/command-journal';
import { type CommandChannel, type CommandHandler, CommandRunner, errorInfo } from '../../../provider/agent/command-runner';
import { type AgentCommand, type CommandReportAnswer, type CommandUpdate } from '../../../provider/agent/vault-channel';
import { LifeboatError, NonRecoverableError, RecoverableError } from '../../../provider/errors';

/** A vault's command queue as the runner sees it: a test pushes commands and reads the reports. */
class FakeChannel implements CommandChannel {
  readonly reports: { id: string; update: CommandUpdate }[] = [];
  private queue: AgentCommand[] = [];
  private wake: (() => void) | undefined;
  cancelled = new Set<string>();
  failPolls = 0;
  refuse: LifeboatError | undefined;
  polls = 0;

  deliver(c: AgentCommand): void {
    this.queue.push(c);
    this.wake?.();
  }

  async poll(_wait: number, signal?: AbortSignal): Promise<readonly AgentCommand[]> {
    this.polls++;
    if (this.refuse !== undefined) throw this.refuse;
    if (this.failPolls > 0) {
      this.failPolls--;
      throw new RecoverableError('agent.vaultUnreachable', 'cannot reach the vault');
    }
    if (this.queue.length === 0) {
      await new Promise<void>((resolve) => {
        this.wake = resolve;
        signal?.addEventListener('abort', () => resolve(), { once: true });
      });
    }
    const out = this.queue;
    this.queue = [];
    return out;
  }

  refuseSucceeded = false;

  async reportCommand(id: string, update: CommandUpdate): Promise<CommandReportAnswer> {
    this.reports.push({ id, update });
    if (this.refuseSucceeded && update.state === 'Succeeded') throw new LifeboatError('request.invalid', 'invalidInput', 'the request body is invalid: /result must be object');
    return { id, state: update.state, cancelRequested: this.cancelled.has(id) };
  }

  finals(id: string): CommandUpdate[] {
    return this.reports.filter((r) => r.id === id && r.update.state !== 'Running').map((r) => r.update);
  }
}

function command(id: string, type: string, deliveries = 1): AgentCommand {
  return { id, type, payload: { item: 'web', itemUid: 'u1', vm: 'web01' }, state: 'Delivered', deliveries, createdAt: new Date().toISOString() };
}

async function until(what: string, cond: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe('agent/CommandRunner', () => {
  let runner: CommandRunner | undefined;
  let dir: string;

  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'lb-runner-'));
  });

  afterEach(async () => {
    await runner?.stop();
    runner = undefined;
    await rm(dir, { recursive: true, force: true });
  });

  function start(channel: FakeChannel, handlers: Record<string, CommandHandler>, extra: Partial<ConstructorParameters<typeof CommandRunner>[0]> = {}): CommandRunner {
    runner = new CommandRunner({
      channel, handlers, leaseSeconds: 60, log: () => undefined, onAuthFailure: () => undefined, retrySchedule: [5, 5, 5], ...extra,
    });
    runner.start();
    return runner;
  }

  it('acknowledges a command, reports progress, then its result', async () => {
    const ch = new FakeChannel();
    let release!: () => void;
    start(ch, {
      'replication.start': async (_c, ctx) => {
        ctx.progress(40, 'copying');
        await new Promise<void>((r) => { release = r; });
        return { done: true };
      },
    });
    ch.deliver(command('c1', 'replication.start'));
    await until('the handler to run', () => release !== undefined);
    assert.deepEqual(ch.reports[0], { id: 'c1', update: { state: 'Running', progress: 0 } });
    release();
    await until('the final report', () => ch.finals('c1').length === 1);
    assert.deepEqual(ch.finals('c1'), [{ state: 'Succeeded', result: { done: true } }]);
  });

  it('treats a redelivered id as the same command: running → a Running report, finished → the final report again', async () => {
    const ch = new FakeChannel();
    let runs = 0;
    let release!: () => void;
    start(ch, {
      slow: async () => {
        runs++;
        await new Promise<void>((r) => { release = r; });
        return {};
      },
    });
    ch.deliver(command('c1', 'slow'));
    await until('the handler to run', () => release !== undefined);
    ch.deliver(command('c1', 'slow', 2));
    await until('a second Running report', () => ch.reports.filter((r) => r.update.state === 'Running').length >= 2);
    release();
    await until('the final report', () => ch.finals('c1').length === 1);
    ch.deliver(command('c1', 'slow', 3));
    await until('the final report again', () => ch.finals('c1').length === 2);
    assert.equal(runs, 1, 'the handler ran once');
    assert.deepEqual(ch.finals('c1')[1], { state: 'Succeeded', result: {} });
  });

  it('reports a handler\'s error with its code and category; an unknown type fails non-recoverably', async () => {
    const ch = new FakeChannel();
    start(ch, { broken: async () => { throw new RecoverableError('remote.unreachable', 'recovery host down', { hint: 'start it' }); } });
    ch.deliver(command('c1', 'broken'));
    ch.deliver(command('c2', 'replica.teleport'));
    await until('both final reports', () => ch.finals('c1').length === 1 && ch.finals('c2').length === 1);
    assert.deepEqual(ch.finals('c1')[0], { state: 'Failed', error: { code: 'remote.unreachable', category: 'recoverable', message: 'recovery host down', hint: 'start it' } });
    const unknown = ch.finals('c2')[0] as { error: { code: string; category: string } };
    assert.equal(unknown.error.code, 'agent.unknownCommand');
    assert.equal(unknown.error.category, 'nonRecoverable');
  });

  it('aborts a running handler when the vault withdraws its command, and never starts one withdrawn at once', async () => {
    const ch = new FakeChannel();
    let aborted = false;
    let ran2 = false;
    start(ch, {
      slow: (c, ctx) => new Promise((_resolve, reject) => {
        if (c.id === 'c2') ran2 = true;
        // Withdrawn while it runs: the next lease report (every second at least) learns it.
        ch.cancelled.add(c.id);
        ctx.signal.addEventListener('abort', () => {
          aborted = true;
          reject(ctx.signal.reason);
        });
      }),
    }, { leaseSeconds: 1 });
    ch.deliver(command('c1', 'slow'));
    await until('the final report', () => ch.finals('c1').length === 1);
    assert.ok(aborted);
    assert.equal((ch.finals('c1')[0] as { error: { code: string } }).error.code, 'agent.commandCancelled');

    ch.cancelled.add('c2');
    ch.deliver(command('c2', 'slow'));
    await until('the final report of c2', () => ch.finals('c2').length === 1);
    assert.equal(ran2, false);
  });

  it('keeps polling after transport failures and stops at an authentication refusal', async () => {
    const ch = new FakeChannel();
    ch.failPolls = 3;
    let refused: LifeboatError | undefined;
    start(ch, { ok: async () => ({}) }, { onAuthFailure: (e) => { refused = e; } });
    ch.deliver(command('c1', 'ok'));
    await until('the command to run after the failed polls', () => ch.finals('c1').length === 1);
    ch.refuse = new NonRecoverableError('auth.agentTokenInvalid', 'token refused');
    ch.deliver(command('c2', 'ok'));
    await until('the refusal', () => refused !== undefined);
    assert.equal(refused!.code, 'auth.agentTokenInvalid');
  });

  it('journals a command until its final report, and a new runner resumes a journaled command at once', async () => {
    const journalDir = path.join(dir, 'commands');
    const ch = new FakeChannel();
    let release!: () => void;
    start(ch, { slow: async () => { await new Promise<void>((r) => { release = r; }); return {}; } }, { journal: fileCommandJournal(journalDir) });
    ch.deliver(command('c1', 'slow'));
    await until('the handler to run', () => release !== undefined);
    assert.deepEqual(await readdir(journalDir), ['c1.json']);
    await runner!.stop(); // the agent stops: the command is abandoned, not reported
    assert.deepEqual(ch.finals('c1'), []);

    const ch2 = new FakeChannel();
    start(ch2, { slow: async () => ({ resumed: true }) }, { journal: fileCommandJournal(journalDir) });
    await until('the resumed command to finish', () => ch2.finals('c1').length === 1);
    assert.deepEqual(ch2.finals('c1'), [{ state: 'Succeeded', result: { resumed: true } }]);
    const deadline = Date.now() + 5000;
    while ((await readdir(journalDir)).length > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    assert.deepEqual(await readdir(journalDir), [], 'forgotten once the vault has the final report');
  });

  it('turns a final report the vault refuses as invalid into a failure it takes, instead of retrying forever', async () => {
    const ch = new FakeChannel();
    ch.refuseSucceeded = true;
    start(ch, { odd: async () => ({}) });
    ch.deliver(command('c1', 'odd'));
    await until('the failure report', () => ch.finals('c1').length === 2);
    const last = ch.finals('c1')[1] as { state: string; error: { code: string; category: string } };
    assert.equal(last.state, 'Failed');
    assert.equal(last.error.code, 'agent.reportRefused');
    assert.equal(last.error.category, 'bug');
  });

  it('errorInfo keeps codes of the schema\'s dotted pattern and folds others into agent.error', () => {
    assert.equal(errorInfo(new LifeboatError('http.500', 'bug', 'boom')).code, 'agent.error');
    assert.match(errorInfo(new LifeboatError('http.500', 'bug', 'boom')).message, /\[http\.500\]/);
    assert.equal(errorInfo(new NonRecoverableError('remote.unauthorized', 'no')).code, 'remote.unauthorized');
    assert.deepEqual(errorInfo(new Error('plain')), { code: 'agent.internalError', category: 'bug', message: 'plain' });
  });
});
