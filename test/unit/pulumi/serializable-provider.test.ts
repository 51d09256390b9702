import { strict as assert } from 'node:assert';
import * as pulumi from '@pulumi/pulumi';
import { serializableProvider } from '../../../provider/pulumi/serializable-provider';

describe('pulumi/serializable-provider', () => {
  it('serialises to a small closure that captures only the kind and the registry path', async () => {
    process.env.LIFEBOAT_TOKEN_PROBE = 'lba_must_not_be_captured';
    try {
      const p = serializableProvider('protectedVm');
      // What pulumi.dynamic.Resource stores as __provider.
      const text = (await pulumi.runtime.serializeFunction(() => p, { allowSecrets: true })).text;
      assert.ok(text.length < 5000, `the provider is ${text.length} characters`);
      const captured = [...text.matchAll(/with\(\{ ([^}]*) \}\)/g)].flatMap((m) => m[1]!.split(', ').map((kv) => kv.split(':')[0]!.trim()));
      // `p` is the wrapper's own variable (the runtime wraps the provider the same way).
      assert.deepEqual([...new Set(captured)].sort(), ['arguments', 'kind', 'load', 'p', 'registryPath', 'this']);
      assert.match(text, /kind: "protectedVm"/);
      assert.match(text, /registryPath: ".*[/\\]provider[/\\]pulumi[/\\]registry\.(ts|js)"/);
      assert.doesNotMatch(text, /lba_|lbr_|LIFEBOAT_TOKEN_PROBE/);
    } finally {
      delete process.env.LIFEBOAT_TOKEN_PROBE;
    }
  });
});
