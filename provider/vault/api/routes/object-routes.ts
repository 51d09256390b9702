/**
 * Routes of the named objects: vaults (with their registration key and CA),
 * the kinds operators declare (sites, policies, mappings, protected items,
 * plans), and registered hosts (read and unregister; agents register
 * themselves). PUT creates or updates idempotently: the same body again
 * returns the same generation.
 */

import { azureSecretsFingerprint, forgetAzureSecrets, recordAzureSecrets } from '../../control/policy-secrets';
import { takeAzureSecrets } from '../../control/azure-credentials';
import type { JsonObject } from '../../store/records';
import { KINDS, referenceProblems, titleOf, type KindDefinition } from '../../control/kinds';
import { afterItemPut, afterPolicyChange, deleteItem, requestResync } from '../../control/protected-items';
import { itemsOfHost } from '../../control/hosts';
import { initialItemStatus } from '../../control/item-status';
import { deleteVault, putVault, rotateRegistrationKey, vaultSecrets } from '../../control/vaults';
import { invalidRequest, notFound, VaultError } from '../../control/vault-error';
import { iso } from '../../control/services';
import { hostJson, jobJson, objectJson } from '../representation';
import type { Route, RouteContext, RouteResult } from '../route';
import { checkIfMatch, checkName, errors, etag, ref, vaultOf } from './helpers';
import { failoverRoutes } from './failover-routes';
import { planRoutes } from './plan-routes';
import { planStatusView } from '../../control/plans';
import type { VaultServices } from '../../control/services';
import type { StoredObject } from '../../store/records';

/** Split the optional `name` member off a body and check it matches the path. */
function specOf(ctx: RouteContext, name: string): JsonObject {
  const { name: bodyName, ...spec } = ctx.body as JsonObject;
  if (bodyName !== undefined && String(bodyName).toLowerCase() !== name.toLowerCase()) {
    throw invalidRequest([{ path: '/name', message: `must match the name in the path ('${name}') or be left out`, allowed: [name] }]);
  }
  return spec;
}

function written(status: number, body: JsonObject, generation: number): RouteResult {
  return { status, body, headers: { etag: `"${generation}"` } };
}

const vaultRoutes: Route[] = [
  {
    method: 'GET', path: '/v1/vaults', operationId: 'listVaults', summary: 'List vaults', tags: ['vaults'], auth: 'admin',
    responses: { 200: { description: 'Every vault.', schema: ref('VaultList') }, ...errors(401) },
    handle: (ctx) => ({ status: 200, body: { items: ctx.app.services.store.listObjects(undefined, 'vault').map((v) => objectJson(v, v.name)) } }),
  },
  {
    method: 'PUT', path: '/v1/vaults/{vault}', operationId: 'putVault', summary: 'Create or update a vault',
    description: 'Creating a vault also creates its registration key and its certificate authority. The same body again changes nothing.',
    tags: ['vaults'], auth: 'admin', body: 'vault',
    responses: { 200: { description: 'Updated (or unchanged).', schema: ref('VaultObject') }, 201: { description: 'Created.', schema: ref('VaultObject') }, ...errors(400, 401, 412) },
    handle: (ctx) => {
      const name = checkName(ctx, 'vault');
      const spec = specOf(ctx, name);
      const existing = ctx.app.services.store.getObject(name, 'vault', name);
      checkIfMatch(ctx, existing);
      const r = putVault(ctx.app.services, name, spec);
      return written(r.created ? 201 : 200, objectJson(r.object, r.object.name), r.object.generation);
    },
  },
  {
    method: 'GET', path: '/v1/vaults/{vault}', operationId: 'getVault', summary: 'Read a vault', tags: ['vaults'], auth: 'admin',
    responses: { 200: { description: 'The vault.', schema: ref('VaultObject') }, ...errors(401, 404) },
    handle: (ctx) => {
      const v = vaultOf(ctx);
      return { status: 200, body: objectJson(v.object, v.name), headers: { etag: etag(v.object) } };
    },
  },
  {
    method: 'DELETE', path: '/v1/vaults/{vault}', operationId: 'deleteVault', summary: 'Delete an empty vault', tags: ['vaults'], auth: 'admin',
    responses: { 204: { description: 'Deleted with its secrets and jobs.' }, ...errors(401, 404, 409) },
    handle: (ctx) => {
      const v = vaultOf(ctx);
      checkIfMatch(ctx, v.object);
      deleteVault(ctx.app.services, v.key);
      return { status: 204 };
    },
  },
  {
    method: 'GET', path: '/v1/vaults/{vault}/registrationKey', operationId: 'getRegistrationKey', summary: 'Read the registration key',
    description: 'The secret agents present to register. Treat it like a password.',
    tags: ['vaults'], auth: 'admin',
    responses: { 200: { description: 'The key.', schema: ref('RegistrationKey') }, ...errors(401, 404) },
    handle: (ctx) => {
      const v = vaultOf(ctx);
      const s = vaultSecrets(ctx.app.services, v.key);
      return { status: 200, body: { vault: v.name, registrationKey: s.registrationKey, rotatedAt: iso(s.registrationKeyRotatedAt) } };
    },
  },
  {
    method: 'POST', path: '/v1/vaults/{vault}/registrationKey/rotate', operationId: 'rotateRegistrationKey', summary: 'Rotate the registration key',
    description: 'Replaces the key; the old one stops working at once. Registered hosts keep their own credentials.',
    tags: ['vaults'], auth: 'admin',
    responses: { 200: { description: 'The new key.', schema: ref('RegistrationKey') }, ...errors(401, 404) },
    handle: (ctx) => {
      const v = vaultOf(ctx);
      const s = rotateRegistrationKey(ctx.app.services, v.key);
      return { status: 200, body: { vault: v.name, registrationKey: s.registrationKey, rotatedAt: iso(s.registrationKeyRotatedAt) } };
    },
  },
  {
    method: 'GET', path: '/v1/vaults/{vault}/certificateAuthority', operationId: 'getCertificateAuthority', summary: 'Read the CA certificate',
    tags: ['vaults'], auth: 'admin',
    responses: { 200: { description: 'The CA certificate (PEM).', schema: ref('CertificateAuthority') }, ...errors(401, 404) },
    handle: (ctx) => {
      const v = vaultOf(ctx);
      return { status: 200, body: { vault: v.name, certificate: vaultSecrets(ctx.app.services, v.key).caCertificatePem } };
    },
  },
];

/** An object as the API shows it; a recovery plan's status gains its derived `activeLocation` (docs/recovery-plans.md §7). */
function shown(services: VaultServices, def: KindDefinition, o: StoredObject, vault: { readonly key: string; readonly name: string }): JsonObject {
  const json = objectJson(o, vault.name);
  return def.kind === 'recoveryPlan' ? { ...json, status: planStatusView(services, vault.key, o) } : json;
}

function kindRoutes(def: KindDefinition): Route[] {
  const base = `/v1/vaults/{vault}/${def.collection}`;
  const Name = def.kind.charAt(0).toUpperCase() + def.kind.slice(1);
  const isItem = def.kind === 'protectedItem';
  return [
    {
      method: 'GET', path: base, operationId: `list${def.collection.charAt(0).toUpperCase()}${def.collection.slice(1)}`, summary: `List ${def.title.endsWith('y') ? `${def.title.slice(0, -1)}ie` : def.title}s`, tags: [def.collection], auth: 'admin',
      responses: { 200: { description: `Every ${def.title} of the vault.`, schema: ref(`${Name}List`) }, ...errors(401, 404) },
      handle: (ctx) => {
        const v = vaultOf(ctx);
        return { status: 200, body: { items: ctx.app.services.store.listObjects(v.key, def.kind).map((o) => shown(ctx.app.services, def, o, v)) } };
      },
    },
    {
      method: 'PUT', path: `${base}/{name}`, operationId: `put${Name}`, summary: `Create or update a ${def.title}`,
      description: isItem
        ? 'Creating an item starts the protection.enable job (its id is in status.activeJob). PUT again while nothing runs resumes enabling after a failure, or applies changed settings (protection.update). site, cloud, vm, target and disks cannot change.'
        : `The same body again changes nothing. References to other objects must exist.`,
      tags: [def.collection], auth: 'admin', body: def.schema,
      responses: {
        200: { description: 'Updated (or unchanged).', schema: ref(`${Name}Object`) },
        201: { description: 'Created.', schema: ref(`${Name}Object`) },
        ...errors(400, 401, 404, 409, 412),
      },
      handle: (ctx) => {
        const v = vaultOf(ctx);
        const name = checkName(ctx, 'name');
        const { services, engine } = ctx.app;
        const taken = def.kind === 'replicationPolicy' ? takeAzureSecrets(specOf(ctx, name)) : { spec: specOf(ctx, name), secrets: undefined };
        const spec = taken.spec;
        if (taken.secrets !== undefined && services.secrets === undefined) {
          throw invalidRequest([{ path: '/azure/accountKey', message: 'this vault keeps no secrets (it runs without a data folder)' }]);
        }
        const started: string[] = [];
        const result = services.store.transaction(() => {
          const existing = services.store.getObject(v.key, def.kind, name);
          checkIfMatch(ctx, existing);
          const refs = def.refs(spec);
          const problems = [...referenceProblems(services.store, v.name, refs), ...(def.check?.(services.store, v.key, spec, existing) ?? [])];
          if (problems.length > 0) throw invalidRequest(problems, `the ${def.title} is invalid`);
          if (existing !== undefined) {
            const conflicts = def.conflicts?.(services.store, v.key, spec, existing) ?? [];
            if (conflicts.length > 0) {
              throw new VaultError(409, `${def.kind}.conflict`, `the ${def.title} '${existing.name}' cannot change that way: ${conflicts[0]!.path} ${conflicts[0]!.message}`, {
                details: conflicts,
                hint: isItem ? 'delete the item and create it again (a full re-seed), or keep the field as it is' : 'change what depends on it first',
              });
            }
          }
          const keyBefore = def.kind === 'replicationPolicy' && existing !== undefined ? azureSecretsFingerprint(services, v.key, existing.name) : undefined;
          const put = services.store.putObject(v.key, def.kind, name, spec, refs, services.clock.now(), isItem ? initialItemStatus() : {});
          if (def.kind === 'replicationPolicy') recordAzureSecrets(services, v.key, put.object.name, spec, taken.secrets);
          // A new storage key reaches the agents that hold the blobs open, also when the spec itself is unchanged (docs/azure-failover.md §3).
          const keyAfter = def.kind === 'replicationPolicy' && spec.target === 'azure' ? azureSecretsFingerprint(services, v.key, put.object.name) : undefined;
          const keyChanged = existing !== undefined && keyAfter !== undefined && keyAfter !== keyBefore;
          if (isItem) {
            const job = afterItemPut(services, engine, v.key, put.object, put.created, put.changed);
            if (job !== undefined) started.push(job.id);
          }
          if (def.kind === 'replicationPolicy' && (put.changed || keyChanged) && !put.created) {
            started.push(...afterPolicyChange(services, engine, v.key, put.object.name, keyChanged).map((j) => j.id));
          }
          return { ...put, object: services.store.getObject(v.key, def.kind, name)! };
        });
        for (const id of started) engine.kick(id);
        return written(result.created ? 201 : 200, shown(services, def, result.object, v), result.object.generation);
      },
    },
    {
      method: 'GET', path: `${base}/{name}`, operationId: `get${Name}`, summary: `Read a ${def.title}`, tags: [def.collection], auth: 'admin',
      responses: { 200: { description: `The ${def.title}.`, schema: ref(`${Name}Object`) }, ...errors(401, 404) },
      handle: (ctx) => {
        const v = vaultOf(ctx);
        const name = checkName(ctx, 'name');
        const o = ctx.app.services.store.getObject(v.key, def.kind, name);
        if (o === undefined) throw notFound(def.title, name, v.name);
        return { status: 200, body: shown(ctx.app.services, def, o, v), headers: { etag: etag(o) } };
      },
    },
    {
      method: 'DELETE', path: `${base}/{name}`, operationId: `delete${Name}`, summary: `Delete a ${def.title}`,
      description: isItem
        ? 'Starts the protection.disable job (202, with the job) which stops replication, deletes or keeps the replica as the policy says, then removes the item. An item that was never protected is removed at once (204). A failed-over item is refused (409): fail back first.'
        : `Refused with 409 while other objects refer to it (listed in \`usedBy\`).`,
      tags: [def.collection], auth: 'admin',
      query: isItem ? [{ name: 'force', description: 'Skip steps whose host is not connected (what they would remove is reported as left behind).', schema: { type: 'boolean' } }] : [],
      responses: {
        ...(isItem ? { 202: { description: 'protection.disable started (or already running).', schema: ref('Job') } } : {}),
        204: { description: 'Deleted.' },
        ...errors(401, 404, 409, 412),
      },
      handle: (ctx) => {
        const v = vaultOf(ctx);
        const name = checkName(ctx, 'name');
        const { services, engine } = ctx.app;
        const existing = services.store.getObject(v.key, def.kind, name);
        if (existing === undefined) throw notFound(def.title, name, v.name);
        checkIfMatch(ctx, existing);
        if (isItem) {
          const r = deleteItem(services, engine, v.key, name, ctx.query.get('force') === 'true');
          if (r.kind === 'deleted') return { status: 204 };
          if (r.started) engine.kick(r.job.id);
          return { status: 202, body: jobJson(r.job, v.name) };
        }
        services.store.transaction(() => {
          const users = services.store.referrers(v.key, def.kind, name);
          if (users.length > 0) {
            throw new VaultError(409, 'object.inUse', `the ${def.title} '${existing.name}' is used by ${users.map((u) => `${titleOf(u.kind)} '${u.name}'`).join(', ')}`, {
              hint: 'delete or change those first',
              extra: { usedBy: users },
            });
          }
          services.store.deleteObject(v.key, def.kind, name);
          if (def.kind === 'replicationPolicy') forgetAzureSecrets(services, v.key, name);
        });
        return { status: 204 };
      },
    },
  ];
}

const itemRoutes: Route[] = [
  {
    method: 'POST', path: '/v1/vaults/{vault}/protectedItems/{name}/resync', operationId: 'resyncProtectedItem', summary: 'Start a resynchronisation',
    description: 'Starts resync.run for a Protected or ResynchronizationRequired item.',
    tags: ['protectedItems'], auth: 'admin',
    responses: { 202: { description: 'The job.', schema: ref('Job') }, ...errors(401, 404, 409) },
    handle: (ctx) => {
      const v = vaultOf(ctx);
      const job = requestResync(ctx.app.services, ctx.app.engine, v.key, checkName(ctx, 'name'));
      ctx.app.engine.kick(job.id);
      return { status: 202, body: jobJson(job, v.name) };
    },
  },
  {
    method: 'GET', path: '/v1/vaults/{vault}/protectedItems/{name}/recoveryPoints', operationId: 'listRecoveryPoints', summary: 'List recovery points',
    tags: ['protectedItems'], auth: 'admin',
    responses: { 200: { description: 'Retained points, oldest first.', schema: ref('RecoveryPointList') }, ...errors(401, 404) },
    handle: (ctx) => {
      const v = vaultOf(ctx);
      const name = checkName(ctx, 'name');
      const item = ctx.app.services.store.getObject(v.key, 'protectedItem', name);
      if (item === undefined) throw notFound('protected item', name, v.name);
      return { status: 200, body: { item: item.name, items: ctx.app.services.store.recoveryPoints(v.key, name).map((p) => ({ id: p.id, time: iso(p.time), kind: p.kind })) } };
    },
  },
];

const hostRoutes: Route[] = [
  {
    method: 'GET', path: '/v1/vaults/{vault}/hosts', operationId: 'listHosts', summary: 'List registered hosts', tags: ['hosts'], auth: 'admin',
    responses: { 200: { description: 'Every registered host.', schema: ref('HostList') }, ...errors(401, 404) },
    handle: (ctx) => {
      const v = vaultOf(ctx);
      return { status: 200, body: { items: ctx.app.services.store.listObjects(v.key, 'host').map((h) => hostJson(h, v.name)) } };
    },
  },
  {
    method: 'GET', path: '/v1/vaults/{vault}/hosts/{host}', operationId: 'getHost', summary: 'Read a registered host', tags: ['hosts'], auth: 'admin',
    responses: { 200: { description: 'The host, with its connection state, inventory and certificate.', schema: ref('HostObject') }, ...errors(401, 404) },
    handle: (ctx) => {
      const v = vaultOf(ctx);
      const name = ctx.params.host ?? '';
      const h = ctx.app.services.store.getObject(v.key, 'host', name);
      if (h === undefined) throw notFound('host', name, v.name);
      return { status: 200, body: hostJson(h, v.name), headers: { etag: etag(h) } };
    },
  },
  {
    method: 'DELETE', path: '/v1/vaults/{vault}/hosts/{host}', operationId: 'deleteHost', summary: 'Unregister a host',
    description: 'Its agent token stops working. Refused (409) while items replicate from or to it.',
    tags: ['hosts'], auth: 'admin',
    responses: { 204: { description: 'Unregistered.' }, ...errors(401, 404, 409) },
    handle: (ctx) => {
      const v = vaultOf(ctx);
      const name = ctx.params.host ?? '';
      const { services } = ctx.app;
      services.store.transaction(() => {
        const h = services.store.getObject(v.key, 'host', name);
        if (h === undefined) throw notFound('host', name, v.name);
        const users = [...services.store.referrers(v.key, 'host', name), ...itemsOfHost(services, v.key, name).map((i) => ({ kind: i.kind, name: i.name }))];
        if (users.length > 0) {
          throw new VaultError(409, 'object.inUse', `host '${h.name}' is used by ${[...new Set(users.map((u) => `${titleOf(u.kind)} '${u.name}'`))].join(', ')}`, {
            hint: 'disable protection of those items first', extra: { usedBy: users },
          });
        }
        services.store.deleteObject(v.key, 'host', name);
      });
      return { status: 204 };
    },
  },
];

/** Every object route. */
export function objectRoutes(): Route[] {
  return [...vaultRoutes, ...KINDS.flatMap(kindRoutes), ...itemRoutes, ...failoverRoutes(), ...planRoutes(), ...hostRoutes];
}
