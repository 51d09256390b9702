/**
 * `protection.enable` (the reference's "Enable protection" job): check the
 * prerequisites, create the replica on the recovery host and the replication
 * relationship on the source host, run initial replication per the policy,
 * finalise protection.
 *
 * Idempotent: every step is safe to run again (commands are idempotent on
 * the agents, keyed by item uid; a resumed step waits for the command it
 * already sent). PUT of the item starts it again after a failure.
 *
 * What a failure leaves behind: before the relationship exists (item
 * EnablingProtection), the compensation deletes the replica and the
 * relationship on connected hosts and the item returns to NotProtected
 * (unreachable hosts are named in a `protectedItem.leftovers` issue). After
 * that, the relationship and whatever initial replication copied are kept,
 * the item stays in its state with a Critical `job.failed` issue: PUT the item
 * to resume, DELETE it to disable protection. Cancelling removes what the job
 * created (through DisablingProtection) and ends NotProtected.
 */

import { NonRecoverableError } from '../../../errors';
import { transitionItem, updateItem } from '../../control/item-status';
import { associationFor } from '../../control/kinds';
import { azureSecretsFingerprint, azureStorageCredentials } from '../../control/policy-secrets';
import type { ReplicationPolicySpec } from '../../control/specs';
import type { Json, JsonObject } from '../../store/records';
import { dataString, type JobHandler, type StepContext } from '../job-handler';
import {
  bestEffortCommand, chooseSource, chooseTarget, itemJobHooks, itemPayload, loadItem, networkMappingsFor,
} from './item-job';

function policyPayload(ctx: StepContext): JsonObject {
  return loadItem(ctx).policy as unknown as JsonObject;
}

function disksOf(ctx: StepContext): Json {
  return ctx.get('disks') ?? [];
}

export const protectionEnable: JobHandler = {
  type: 'protection.enable',
  targetKind: 'protectedItem',
  steps: [
    {
      name: 'checkPrerequisites',
      title: 'Check prerequisites',
      async run(ctx) {
        const c = loadItem(ctx);
        const { store } = ctx.services;
        const policySpec = store.getObject(ctx.job.vault, 'replicationPolicy', c.policyName)!.spec as unknown as ReplicationPolicySpec;
        const assoc = associationFor(policySpec, c.spec.site, c.spec.cloud);
        if (assoc === undefined) {
          throw new NonRecoverableError('replicationPolicy.notAssociated', `policy '${c.policyName}' is not associated with ${c.spec.site}${c.spec.cloud === undefined ? '' : `/${c.spec.cloud}`}`, {
            hint: `add an association with source ${c.spec.site} to policy '${c.policyName}', then PUT the item again`,
          });
        }
        ctx.progress(10, `looking for VM ${c.spec.vm}`);
        const source = chooseSource(ctx.services, ctx.job.vault, c);
        const need = source.disks.reduce((n, d) => n + d.sizeBytes, 0);
        const patch: JsonObject = { sourceHost: source.host.name, disks: source.disks.map((d) => ({ id: d.id, sizeBytes: d.sizeBytes })) };
        if (c.policy.target === 'azure' && c.policy.azure !== undefined) {
          // Throws azure.credentialsMissing; reachability and the key are checked by the source host (replication.enable).
          azureStorageCredentials(ctx.services, ctx.job.vault, c.policyName, c.policy.azure);
        }
        if (c.policy.target === 'secondary-site') {
          ctx.progress(50, 'choosing the recovery host');
          const target = chooseTarget(ctx.services, ctx.job.vault, c, c.spec.target?.site ?? assoc.target!, need, source.host.name);
          Object.assign(patch, { targetHost: target.host.name, targetAddress: target.address, targetPort: target.port, targetSite: String(target.host.spec.site) });
        }
        ctx.set(patch);
        updateItem(ctx.services, ctx.job.vault, c.item.name, (s) => ({
          ...s,
          sourceHost: source.host.name,
          ...(typeof patch.targetHost === 'string' ? { targetHost: patch.targetHost } : {}),
          disks: source.disks.map((d) => ({ id: d.id, sizeBytes: d.sizeBytes })),
        }));
      },
    },
    {
      name: 'createReplica',
      title: 'Create the replica on the recovery host',
      async run(ctx) {
        const c = loadItem(ctx);
        const target = dataString(ctx.get('targetHost'));
        if (c.policy.target === 'azure' || target === undefined) return 'skipped';
        await ctx.runCommand('create', {
          host: target,
          type: 'replica.create',
          payload: { ...itemPayload(c), sourceHost: dataString(ctx.get('sourceHost')) ?? null, disks: disksOf(ctx), policy: policyPayload(ctx), targetVm: (c.spec.targetVm ?? {}) as JsonObject },
        });
        ctx.set({ replicaCreated: true });
        return undefined;
      },
    },
    {
      name: 'enableReplication',
      title: 'Create the replication relationship',
      async run(ctx) {
        const c = loadItem(ctx);
        const source = dataString(ctx.get('sourceHost'))!;
        const target = dataString(ctx.get('targetHost'));
        const targetPayload: JsonObject = c.policy.target === 'azure'
          ? { kind: 'azure', ...(c.policy.azure as unknown as JsonObject), credentialsFingerprint: azureSecretsFingerprint(ctx.services, ctx.job.vault, c.policyName) ?? null }
          : { kind: 'host', host: target!, address: ctx.get('targetAddress') ?? null, port: ctx.get('targetPort') ?? null, serverName: target! };
        const site = ctx.services.store.getObject(ctx.job.vault, 'site', c.spec.site);
        ctx.set({ enableSent: true });
        await ctx.runCommand('enable', {
          host: source,
          type: 'replication.enable',
          payload: { ...itemPayload(c), disks: disksOf(ctx), policy: policyPayload(ctx), target: targetPayload, timeZone: String(site?.spec.timeZone ?? 'UTC') },
        });
        ctx.set({ relationshipCreated: true });
        transitionItem(ctx.services, ctx.job.vault, c.item.name, 'WaitingForInitialReplication',
          `replication relationship created on ${source}${target === undefined ? ' (target Azure)' : ` and ${target}`}`);
        return undefined;
      },
    },
    {
      name: 'waitForStartTime',
      title: 'Wait for the scheduled start of initial replication',
      async run(ctx) {
        const start = loadItem(ctx).policy.initialReplication.startTime;
        const at = start === undefined ? Number.NaN : Date.parse(start);
        if (Number.isNaN(at) || at <= ctx.services.clock.now()) return 'skipped';
        await ctx.sleepUntil(at, `initial replication starts at ${start}`);
        return undefined;
      },
    },
    {
      name: 'initialReplication',
      title: 'Initial replication',
      weight: 20,
      async run(ctx) {
        const c = loadItem(ctx);
        transitionItem(ctx.services, ctx.job.vault, c.item.name, 'InitialReplicationInProgress',
          c.policy.initialReplication.startTime === undefined ? 'started immediately' : `scheduled start ${c.policy.initialReplication.startTime} reached`,
          (s) => ({ ...s, initialReplicationPercent: 0 }));
        await ctx.runCommand('copy', {
          host: dataString(ctx.get('sourceHost'))!,
          type: 'replication.start',
          payload: { ...itemPayload(c), method: c.policy.initialReplication.method },
        }, (percent) => {
          updateItem(ctx.services, ctx.job.vault, c.item.name, (s) => ({ ...s, initialReplicationPercent: percent }));
        });
        return undefined;
      },
    },
    {
      name: 'finalizeProtection',
      title: 'Finalize protection',
      async run(ctx) {
        const c = loadItem(ctx);
        const target = dataString(ctx.get('targetHost'));
        if (target !== undefined) {
          await ctx.runCommand('configure', {
            host: target,
            type: 'replica.configure',
            payload: {
              ...itemPayload(c), policy: policyPayload(ctx), targetVm: (c.spec.targetVm ?? {}) as JsonObject,
              networkMappings: networkMappingsFor(ctx.services, ctx.job.vault, c.spec.site, dataString(ctx.get('targetSite'))),
            },
          });
        }
        transitionItem(ctx.services, ctx.job.vault, c.item.name, 'Protected', 'initial replication finished; protection finalised',
          (s) => ({ ...s, initialReplicationPercent: 100 }));
        updateItem(ctx.services, ctx.job.vault, c.item.name, (s) => ({ ...s, initialReplicationPercent: 100 }));
        return undefined;
      },
    },
  ],
  ...itemJobHooks(),
  async compensate(ctx, why) {
    const { store } = ctx.services;
    const item = store.getObject(ctx.job.vault, 'protectedItem', ctx.job.target.name);
    if (item === undefined) return;
    const state = (item.status as { replicationState?: string }).replicationState;
    if (why === 'failed' && state !== 'EnablingProtection') return;
    if (state !== 'EnablingProtection' && state !== 'NotProtected' && state !== 'DisablingProtection') {
      transitionItem(ctx.services, ctx.job.vault, item.name, 'DisablingProtection', 'enabling was cancelled');
    }
    const payload: JsonObject = { item: item.name, itemUid: item.uid, vm: String(item.spec.vm) };
    if (ctx.get('enableSent') === true) {
      await bestEffortCommand(ctx, 'undoEnable', dataString(ctx.get('sourceHost')), 'replication.disable', { ...payload, deleteLogs: true }, 'the replication relationship');
    }
    if (ctx.get('targetHost') !== undefined) {
      await bestEffortCommand(ctx, 'undoCreate', dataString(ctx.get('targetHost')), 'replica.delete', payload, 'the replica');
    }
    const reason = why === 'cancelled' ? 'enabling was cancelled; what it created was removed' : 'enabling failed; what it created was removed';
    const now = (store.getObject(ctx.job.vault, 'protectedItem', item.name)?.status as { replicationState?: string } | undefined)?.replicationState;
    transitionItem(ctx.services, ctx.job.vault, item.name, 'NotProtected', now === 'DisablingProtection' ? `tracking stopped and replica removed (${reason})` : reason);
  },
};
