import { strict as assert } from 'node:assert';
import { splitVaultUrl } from '../../../../provider/cli/commands/agent';

describe('cli/commands/agent', () => {
  it('takes the vault name from a URL that names it', () => {
    assert.deepEqual(splitVaultUrl('http://127.0.0.1:8080/v1/vaults/lab'), { url: 'http://127.0.0.1:8080', name: 'lab' });
    assert.deepEqual(splitVaultUrl('http://127.0.0.1:8080/v1/vaults/my%20vault/'), { url: 'http://127.0.0.1:8080', name: 'my vault' });
    assert.deepEqual(splitVaultUrl('http://127.0.0.1:8080/'), { url: 'http://127.0.0.1:8080', name: undefined });
  });
});
