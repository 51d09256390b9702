/**
 * The azure example with the real `pulumi`, against `lifeboat lab up
 * --azure` (vault, agents, Azurite): up creates the azure policy (the key
 * from a secret config value), the network mapping to a virtual network and
 * the protected VM, and returns once its initial replication into Azurite's
 * page blobs is done; the key is in no vault answer and is a secret in the
 * stack's state; a second up changes nothing; destroy removes what it made.
 */

import { strict as assert } from 'node:assert';
import { AZURITE_ACCOUNT, AZURITE_DEV_KEY, azuriteEndpoint } from '../../provider/cli/lab/lab-azure';
import { TestLab } from '../integration/lab/lab-harness';
import { copyExample, exampleStack, labEnv, type ExampleCopy } from './example-harness';
import { type TempStack } from './pulumi-harness';

describe('example azure (real pulumi, lab up --azure with Azurite)', function () {
  this.timeout(240_000);
  let lab: TestLab;
  let copy: ExampleCopy;
  let t: TempStack;
  const log = (): string => t.log.join('');

  before(async () => {
    lab = await TestLab.up(['--azure', '--disk-mib', '2', '--frequency-ms', '500']);
    copy = await copyExample('azure');
    t = await exampleStack(copy, labEnv(lab.state));
    const port = (lab.state as unknown as { azurite: { port: number } }).azurite.port;
    await t.stack.setAllConfig({
      storageAccount: { value: AZURITE_ACCOUNT },
      endpoint: { value: azuriteEndpoint(port) },
      container: { value: 'example-replicas' },
      accountKey: { value: AZURITE_DEV_KEY, secret: true },
    });
  });

  after(async () => {
    try {
      await t?.dispose();
    } finally {
      await copy?.dispose();
      await lab?.down();
    }
  });

  it('up protects web01 into Azurite and returns once its initial replication is done; the key stays secret', async () => {
    const res = await t.stack.up({ onOutput: t.onOutput });
    assert.equal(res.summary.result, 'succeeded', log());
    // Stack, policy, mapping, VM.
    assert.equal(res.summary.resourceChanges?.create, 4, log());
    const items = res.outputs.items!.value as { name: string; state: string; health: string }[];
    assert.deepEqual(items.map((i) => [i.name, i.state, i.health]), [['web01', 'Protected', 'Normal']]);
    const policy = await lab.client.getObject('lab', 'replicationPolicies', 'to-azure');
    assert.deepEqual(policy.spec.azure, { storageAccount: AZURITE_ACCOUNT, container: 'example-replicas', endpoint: azuriteEndpoint((lab.state as unknown as { azurite: { port: number } }).azurite.port) });
    assert.equal((policy.status.azureCredentials as { set: boolean }).set, true);
    // exportStack shows secrets as {<secret sig>: …, plaintext}; the key must occur nowhere else.
    const plain = JSON.stringify(outsideSecrets(await t.stack.exportStack()));
    assert.ok(!plain.includes(AZURITE_DEV_KEY), 'the key is in the stack state outside a secret');
    assert.ok(JSON.stringify(await t.stack.exportStack()).includes(AZURITE_DEV_KEY.slice(0, 12)), 'the check above saw the state');
    assert.ok(!log().includes(AZURITE_DEV_KEY), 'the key is in the engine output');
  });

  it('a second up changes nothing', async () => {
    const res = await t.stack.up({ onOutput: t.onOutput });
    assert.equal(res.summary.result, 'succeeded', log());
    assert.deepEqual(Object.keys(res.summary.resourceChanges ?? {}).filter((k) => k !== 'same'), [], log());
  });

  it('destroy removes the policy, mapping and protected VM', async () => {
    const res = await t.stack.destroy({ onOutput: t.onOutput });
    assert.equal(res.summary.result, 'succeeded', log());
    assert.deepEqual(await lab.client.listProtectedItems('lab'), []);
    assert.ok(!(await lab.client.listObjects('lab', 'replicationPolicies')).some((p) => p.name === 'to-azure'));
  });
});

const SECRET_SIG = '4dabf18193072939515e22adb298388d';

/** The value with every Pulumi secret (an object with the secret signature) replaced by a marker. */
function outsideSecrets(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(outsideSecrets);
  if (typeof v !== 'object' || v === null) return v;
  if (SECRET_SIG in v) return '[secret]';
  return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, outsideSecrets(x)]));
}
