import { strict as assert } from 'node:assert';
import * as path from 'node:path';
import fc from 'fast-check';
import { parse, stringify } from 'yaml';
import {
  formatProblems, loadProtectionFileSync, parseProtection, stringifyProtection, toProtectionDocument, type ProtectionDocument, type ProtectionModel,
} from '../../../provider/yaml';
import { modelArb } from './arbitraries';

const EXAMPLE = path.join(__dirname, '../../../examples/yaml-declared/protection.yaml');

function reload(text: string): ProtectionModel {
  const r = parseProtection(text, 'roundtrip.yaml');
  assert.deepEqual(r.problems, [], `${formatProblems(r.problems)}\n--- text ---\n${text}`);
  return r.model!;
}

type Doc = Record<string, unknown>;

/** Another spelling of a name (names compare case-insensitively). */
function respell(name: string, flip: boolean): string {
  return flip ? name.toUpperCase() : name.toLowerCase();
}

describe('yaml/document', () => {
  it('round trip: a random valid model, written as YAML (in full or minimal), loads back equal (property)', () => {
    fc.assert(fc.property(modelArb, fc.boolean(), (model, omitDefaults) => {
      const text = stringifyProtection(model, { omitDefaults });
      assert.deepEqual(reload(text), model);
    }), { seed: 0x5eed_0005, numRuns: 150 });
  });

  it('the model does not depend on list order or on how references are spelled (property)', () => {
    fc.assert(fc.property(modelArb, fc.integer(), fc.boolean(), (model, shuffleSeed, flip) => {
      const doc = structuredClone(toProtectionDocument(model, { omitDefaults: true })) as unknown as Doc;
      let s = shuffleSeed;
      const shuffle = (list: unknown): void => {
        if (!Array.isArray(list)) return;
        for (let i = list.length - 1; i > 0; i--) {
          s = (Math.imul(s, 1103515245) + 12345) | 0;
          const j = Math.abs(s) % (i + 1);
          [list[i], list[j]] = [list[j], list[i]];
        }
      };
      for (const key of ['sites', 'policies', 'networkMappings', 'protectedVms', 'recoveryPlans']) shuffle(doc[key]);
      for (const v of (doc.protectedVms ?? []) as Doc[]) {
        v.policy = respell(String(v.policy), flip);
        v.site = respell(String(v.site), !flip);
      }
      for (const p of (doc.recoveryPlans ?? []) as { groups: { vms: string[] }[] }[]) {
        for (const g of p.groups) g.vms = g.vms.map((n) => respell(n, flip));
      }
      for (const p of (doc.policies ?? []) as { associations: Doc[] }[]) {
        for (const a of p.associations) a.source = respell(String(a.source), flip);
      }
      // As YAML, and as JSON (a JSON document is a YAML document).
      assert.deepEqual(reload(stringify(doc)), model);
      assert.deepEqual(reload(JSON.stringify(doc)), model);
    }), { seed: 0x5eed_0006, numRuns: 100 });
  });

  it('writes the example back as the minimal document a person would write', () => {
    const model = loadProtectionFileSync(EXAMPLE);
    const doc = toProtectionDocument(model, { omitDefaults: true });
    assert.deepEqual(doc, {
      apiVersion: 'lifeboat/v1',
      vault: { name: 'contoso-dr' },
      sites: [{ name: 'dr', kind: 'hyperv-site', hosts: ['hvdr01'] }, { name: 'hq', kind: 'hyperv-site', hosts: ['hv01', 'hv02'] }],
      policies: [{ name: 'gold', target: 'secondary-site', replicationFrequencySeconds: 30, appConsistentSnapshotFrequencyHours: 4, associations: [{ source: 'hq', target: 'dr' }] }],
      networkMappings: [{ name: 'prod', source: { site: 'hq', network: 'Prod' }, target: { site: 'dr', network: 'Prod-DR' }, testNetwork: 'Isolated' }],
      protectedVms: [{ name: 'db01', site: 'hq', vm: 'db01', policy: 'gold' }, { name: 'web01', site: 'hq', vm: 'web01', policy: 'gold' }],
      recoveryPlans: [{ name: 'app', groups: [{ vms: ['db01'], after: [{ script: 'checks/db.sh' }] }, { vms: ['web01'], before: [{ manual: 'Lower the DNS TTL' }] }] }],
    } satisfies ProtectionDocument);
    const full = toProtectionDocument(model) as unknown as Doc;
    assert.equal((full.policies as Doc[])[0]!.recoveryPointRetentionHours, 24, 'without omitDefaults every default is written');
  });

  it('quotes what YAML would misread and can name the schema for editors', () => {
    const model = loadProtectionFileSync(EXAMPLE);
    const renamed: ProtectionModel = { ...model, vault: { ...model.vault, name: 'yes' }, sites: model.sites.map((s) => ({ ...s, description: '1.5' })) };
    const text = stringifyProtection(renamed, { omitDefaults: true, schema: '../../schemas/protection.schema.json' });
    assert.equal(text.split('\n')[0], '# yaml-language-server: $schema=../../schemas/protection.schema.json');
    const back = parse(text) as Doc;
    assert.equal((back.vault as Doc).name, 'yes');
    assert.equal(((back.sites as Doc[])[0]!).description, '1.5');
    assert.deepEqual(reload(text), renamed);
  });
});
