import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { LifeboatError } from '../../../../provider/errors';
import { SecretBox, takeAzureSecrets } from '../../../../provider/vault/control/azure-credentials';

describe('vault: sealed storage secrets of azure policies', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lifeboat-secrets-'));
  });
  afterEach(() => {
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('takes the secrets out of the spec and leaves the rest', () => {
    const spec = { target: 'azure', azure: { storageAccount: 'acct', accountKey: 'k3y', container: 'c1' } };
    const { spec: clean, secrets } = takeAzureSecrets(spec);
    assert.deepEqual(clean, { target: 'azure', azure: { storageAccount: 'acct', container: 'c1' } });
    assert.deepEqual(secrets, { accountKey: 'k3y' });
    const none = { target: 'azure', azure: { storageAccount: 'acct' } };
    assert.equal(takeAzureSecrets(none).spec, none);
    assert.equal(takeAzureSecrets(none).secrets, undefined);
  });

  it('seals with a key of the data folder (0600); the file never holds the secret; a second box on the folder opens it', () => {
    const box = SecretBox.open(dir);
    box.putAzure('v1', 'To-Azure', { accountKey: 'very-secret-key' });
    const keyFile = path.join(dir, 'secrets.key');
    assert.equal(fs.statSync(keyFile).mode & 0o777, 0o600);
    const files = fs.readdirSync(path.join(dir, 'azure-credentials', 'v1'));
    assert.deepEqual(files, ['to-azure.json']);
    const sealed = fs.readFileSync(path.join(dir, 'azure-credentials', 'v1', files[0]!), 'utf8');
    assert.ok(!sealed.includes('very-secret-key'));
    assert.equal(fs.statSync(path.join(dir, 'azure-credentials', 'v1', files[0]!)).mode & 0o777, 0o600);
    const again = SecretBox.open(dir);
    assert.deepEqual(again.getAzure('v1', 'to-azure'), { accountKey: 'very-secret-key' });
    assert.equal(again.fingerprint({ accountKey: 'very-secret-key' }), box.fingerprint({ accountKey: 'very-secret-key' }));
    assert.notEqual(box.fingerprint({ accountKey: 'other' }), box.fingerprint({ accountKey: 'very-secret-key' }));
    assert.equal(again.getAzure('v1', 'other'), undefined);
    box.deleteAzure('v1', 'to-azure');
    assert.equal(box.getAzure('v1', 'to-azure'), undefined);
  });

  it('refuses a sealed file of another policy or another key (authenticated encryption), without the secret in the error', () => {
    const box = SecretBox.open(dir);
    box.putAzure('v1', 'a', { connectionString: 'AccountKey=zzz' });
    const base = path.join(dir, 'azure-credentials', 'v1');
    fs.copyFileSync(path.join(base, 'a.json'), path.join(base, 'b.json'));
    assert.throws(() => box.getAzure('v1', 'b'), (e: unknown) => LifeboatError.isInstance(e) && e.code === 'vault.secretCorrupt' && !e.message.includes('zzz'));
    const other = fs.mkdtempSync(path.join(os.tmpdir(), 'lifeboat-secrets-'));
    try {
      const foreign = SecretBox.open(other);
      fs.mkdirSync(path.join(other, 'azure-credentials', 'v1'), { recursive: true });
      fs.copyFileSync(path.join(base, 'a.json'), path.join(other, 'azure-credentials', 'v1', 'a.json'));
      assert.throws(() => foreign.getAzure('v1', 'a'), (e: unknown) => LifeboatError.isInstance(e) && e.code === 'vault.secretCorrupt');
    } finally {
      fs.rmSync(other, { recursive: true, force: true });
    }
  });

  it('refuses a malformed key file', () => {
    fs.writeFileSync(path.join(dir, 'secrets.key'), 'short');
    assert.throws(() => SecretBox.open(dir), (e: unknown) => LifeboatError.isInstance(e) && e.code === 'vault.secretKeyCorrupt');
  });
});
