import { strict as assert } from 'node:assert';
import { copyFile, mkdtemp, readdir, rm } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import fc from 'fast-check';
import { BugError } from '../../../provider/errors';
import { findSchemasDir, SchemaRegistry, type SchemaName } from '../../../provider/validation';
import { ACTION_DEFAULTS, defaultGroupName, SITE_DEFAULTS, VAULT_DEFAULTS } from '../../../provider/yaml';
import { PROTECTION_SCHEMA_FILE, ProtectionSchema, schemaCode } from '../../../provider/yaml/protection-schema';

type Node = Record<string, unknown>;

const schema = ProtectionSchema.load();
const registry = SchemaRegistry.load();

/** Where each list of the file sits and the API body schema of its elements. */
const LISTS: readonly (readonly [string, SchemaName])[] = [
  ['sites', 'site'], ['policies', 'replication-policy'], ['networkMappings', 'network-mapping'], ['protectedVms', 'protected-item'], ['recoveryPlans', 'recovery-plan'],
];

/** Values for a field: valid ones and typical mistakes. */
const anyValue = fc.oneof(
  fc.constantFrom(null, true, false, 0, -1, 1, 4, 13, 25, 30, 60, 300, 70000, 1.5, '', 'x', 'hq', 'dr', 'vmm01/Gold', 'azure', 'secondary-site', 'hyperv-site', 'vmm-cloud',
    'online', 'carrier-pigeon', 'certificate', 'kerberos', '22:00', '25:00', '2026-03-01T22:00:00Z', 'tomorrow', 'web 01', 'bad/name', 'Europe/Berlin'),
  fc.constantFrom({}, [], ['hv01'], ['hv01', 'hv01'], [{}], { start: '22:00', end: '06:00' }, { storageAccount: 'contosodr' }, { storageAccount: 'X' },
    [{ source: 'hq', target: 'dr' }], [{ source: 'hq' }], { site: 'hq', network: 'Prod' }, { network: 'x', azure: true }, { site: 'dr' },
    [{ vms: ['web01'] }], [{ vms: ['a'], before: [{ script: 's', manual: 'm' }] }], { method: 'offline' }, { automatic: 'yes' }, [{ name: 'Gold' }]),
);

/** A body with some fields of a schema (valid or not) and sometimes an unknown one. */
function bodyArb(name: SchemaName): fc.Arbitrary<Node> {
  const props = Object.keys(registry.document(name).properties as Node).filter((p) => p !== 'name');
  return fc.tuple(fc.dictionary(fc.constantFrom(...props), anyValue, { maxKeys: 6 }), fc.boolean())
    .map(([body, extra]) => ({ ...body, ...(extra ? { bogus: 1 } : {}) }));
}

describe('yaml/protection-schema', () => {
  it('reuses the API body schemas by $ref (nothing copied): each list element is its body plus a required name', () => {
    const doc = registry.documents.get(PROTECTION_SCHEMA_FILE) as Node;
    assert.equal(doc.$id, PROTECTION_SCHEMA_FILE);
    assert.equal(doc.$schema, 'https://json-schema.org/draft/2020-12/schema');
    const props = doc.properties as Record<string, Node>;
    const defs = doc.$defs as Record<string, Node>;
    assert.deepEqual(defs.vault!.allOf, [{ $ref: 'vault.schema.json' }, { required: ['name'] }]);
    assert.equal(props.vault!.$ref, '#/$defs/vault');
    for (const [list, body] of LISTS) {
      const ref = (props[list]!.items as Node).$ref as string;
      const def = defs[ref.replace('#/$defs/', '')]!;
      assert.deepEqual(def.allOf, [{ $ref: `${body}.schema.json` }, { required: ['name'] }], list);
    }
    assert.equal(JSON.stringify(doc).match(/"properties"/g)?.length, 1, 'only the document level declares properties');
  });

  it('judges every element exactly as the vault judges the same API body (property)', () => {
    fc.assert(fc.property(fc.constantFrom(...LISTS), fc.integer({ min: 0, max: 2 }), fc.gen(), ([list, name], index, g) => {
      const body = g(bodyArb, name);
      const elements = [...Array<Node>(index).fill({}).map(() => ({ name: 'filler' })), { name: 'x', ...body }];
      const problems = schema.validate({ apiVersion: 'lifeboat/v1', vault: { name: 'v' }, [list]: elements });
      const prefix = `/${list}/${index}`;
      const ours = problems.filter((p) => p.path === prefix || p.path.startsWith(`${prefix}/`)).map((p) => ({ path: p.path.slice(prefix.length), message: p.message }));
      const vault = registry.validate(name, { name: 'x', ...body }).map((p) => ({ path: p.path, message: p.message }));
      assert.deepEqual(ours, vault);
      for (const p of problems) assert.notEqual(p.code, 'schema.invalid', `a code for: ${p.message}`);
    }), { seed: 0x5eed_0007, numRuns: 400 });
  });

  it('codes problems by the rule that failed', () => {
    const codes = new Map(schema.validate({
      apiVersion: 'lifeboat/v1',
      vault: { name: 'bad name', heartbeatIntervalSeconds: 1, extra: 1 },
      sites: [{ name: 'hq', kind: 'other', hosts: ['a', 'a'] }, 'x'],
      policies: [{ name: 'p', target: 'secondary-site', azure: { storageAccount: 'abc' }, initialReplication: { startTime: 'soon' } }],
      networkMappings: [{ name: 'm', source: { site: 'hq', network: 'n' }, target: { network: 'x' } }],
      recoveryPlans: [{ name: 'r', groups: [] }],
      protectedVms: [{ name: 'v', site: 'hq', vm: 'v', policy: 'p', targetVm: { name: '' } }],
    }).map((p) => [p.path, p.code]));
    assert.deepEqual(Object.fromEntries(codes), {
      '/vault/name': 'schema.pattern',
      '/vault/heartbeatIntervalSeconds': 'schema.range',
      '/vault/extra': 'schema.unknownProperty',
      '/sites/0/kind': 'schema.enum',
      '/sites/0/hosts/1': 'schema.duplicateItem',
      '/sites/1': 'schema.type',
      '/policies/0/azure': 'schema.notAllowed',
      '/policies/0/initialReplication/startTime': 'schema.format',
      '/networkMappings/0/target': 'schema.oneOf',
      '/recoveryPlans/0/groups': 'schema.itemCount',
      '/protectedVms/0/targetVm/name': 'schema.pattern',
    });
    assert.equal(schemaCode({ path: '', message: 'must be "lifeboat/v1"' }), 'schema.const');
    assert.equal(schemaCode({ path: '', message: 'something new' }), 'schema.invalid');
  });

  it('keeps the defaults the model applies equal to the schemas\' `default`s', () => {
    const vault = registry.document('vault').properties as Record<string, Node>;
    for (const [k, v] of Object.entries(VAULT_DEFAULTS)) assert.equal(vault[k]!.default, v, k);
    assert.equal((registry.document('site').properties as Record<string, Node>).timeZone!.default, SITE_DEFAULTS.timeZone);
    const plan = registry.document('recovery-plan') as { $defs: { action: { properties: Record<string, Node> } }; properties: { groups: { items: { properties: Record<string, Node> } } } };
    assert.equal(plan.$defs.action.properties.timeoutSeconds!.default, ACTION_DEFAULTS.timeoutSeconds);
    assert.match(String(plan.properties.groups.items.properties.name!.description), /@default Group <n>/);
    assert.equal(defaultGroupName(0), 'Group 1');
  });

  it('a schemas folder without protection.schema.json is a packaging bug, not bad input', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'lifeboat-schemas-'));
    try {
      const src = findSchemasDir();
      for (const f of await readdir(src)) if (f.endsWith('.schema.json') && f !== PROTECTION_SCHEMA_FILE) await copyFile(path.join(src, f), path.join(dir, f));
      assert.throws(() => ProtectionSchema.load(dir), (e: unknown) => e instanceof BugError && e.code === 'schemas.missing');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
