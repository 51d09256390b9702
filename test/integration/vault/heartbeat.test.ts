import { strict as assert } from 'node:assert';
import { ManualClock } from '../../../provider/clock';
import { GiB, SECOND } from '../../../provider/units';
import { Harness, ScriptedAgent, type JobBody, type ObjectBody } from './harness';

const ITEM = '/v1/vaults/contoso/protectedItems/web01';

describe('vault: heartbeats and host connection (ManualClock)', () => {
  let h: Harness;
  let clock: ManualClock;
  afterEach(async () => {
    await h.close();
  });

  async function host(name: string): Promise<ObjectBody> {
    return h.ok<ObjectBody>('GET', `/v1/vaults/contoso/hosts/${name}`);
  }

  it('marks a silent host NotResponding, then Disconnected after 3 intervals; its items turn Warning until it is back', async () => {
    clock = new ManualClock(Date.now());
    h = await Harness.start({ clock, heartbeatCheckMs: SECOND });
    await h.seedTopology('contoso', {}, { heartbeatIntervalSeconds: 10 });
    const key = await h.registrationKey();
    const src = new ScriptedAgent(h, 'contoso', 'hv01', 'hq');
    const dst = new ScriptedAgent(h, 'contoso', 'hvdr01', 'dr');
    await src.register(key);
    await dst.register(key);
    await src.announce({ vms: [{ name: 'web01', sizes: [GiB] }] });
    await dst.announce({ freeBytes: 10 * GiB, port: 45001 });

    // Protect web01 so that the item has its hosts.
    const jobId = (await h.ok<ObjectBody>('PUT', ITEM, { site: 'hq', vm: 'web01', policy: 'gold' })).status.activeJob!.id;
    await dst.succeed(await dst.next('replica.create'));
    await src.succeed(await src.next('replication.enable'));
    await src.succeed(await src.next('replication.start'));
    await dst.succeed(await dst.next('replica.configure'));
    await h.server.jobSettled(jobId);
    assert.equal((await h.ok<JobBody>('GET', `/v1/vaults/contoso/jobs/${jobId}`)).state, 'Succeeded');

    // Both agents keep beating for a while: nothing changes.
    for (let i = 0; i < 3; i++) {
      await clock.advance(10 * SECOND);
      await src.heartbeat({});
      await dst.heartbeat({});
    }
    assert.equal((await host('hv01')).status.connectionState, 'Connected');

    // hvdr01 goes silent. Late after 1.5 intervals…
    await clock.advance(16 * SECOND);
    await src.heartbeat({});
    assert.equal((await host('hvdr01')).status.connectionState, 'NotResponding');
    let item = await h.ok<ObjectBody>('GET', ITEM);
    assert.equal(item.status.health, 'Normal', 'a late heartbeat is not yet a lost host');
    // … and Disconnected after three intervals of silence.
    await clock.advance(15 * SECOND);
    await src.heartbeat({});
    const lost = await host('hvdr01');
    assert.equal(lost.status.connectionState, 'Disconnected');
    assert.match(String(lost.status.connectionReason), /no heartbeat for 3\d s/);
    assert.equal((await host('hv01')).status.connectionState, 'Connected');
    item = await h.ok<ObjectBody>('GET', ITEM);
    assert.equal(item.status.replicationState, 'Protected', 'a disconnected host does not change the replication state');
    assert.equal(item.status.health, 'Warning');
    assert.deepEqual(item.status.issues?.map((i) => [i.code, i.severity]), [['host.disconnected', 'Warning']]);

    // The agent comes back: Connected, and the item's warning clears.
    await dst.heartbeat({});
    assert.equal((await host('hvdr01')).status.connectionState, 'Connected');
    item = await h.ok<ObjectBody>('GET', ITEM);
    assert.equal(item.status.health, 'Normal');
    assert.deepEqual(item.status.issues, []);
  });

  it('a vault restart does not disconnect every host at once: silence counts from the restart', async () => {
    clock = new ManualClock(Date.now());
    h = await Harness.start({ clock, heartbeatCheckMs: SECOND });
    await h.seedTopology('contoso', {}, { heartbeatIntervalSeconds: 10 });
    const agent = new ScriptedAgent(h, 'contoso', 'hv01', 'hq');
    await agent.register(await h.registrationKey());
    // The vault is down for a long time (the clock moves while it is closed).
    await h.server.close();
    await clock.advance(3600 * SECOND);
    await h.restart({ clock, heartbeatCheckMs: SECOND });
    await clock.advance(5 * SECOND);
    assert.equal((await host('hv01')).status.connectionState, 'Connected');
    await clock.advance(30 * SECOND);
    assert.equal((await host('hv01')).status.connectionState, 'Disconnected');
  });
});
