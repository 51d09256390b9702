/**
 * The resource kinds and the rules of the plain-spec objects: which members
 * form the API body, which replace the object, which are names.
 */

import { type ObjectKind } from './object-provider';

export type ResourceKind = 'vault' | 'site' | 'replicationPolicy' | 'networkMapping' | 'protectedVm' | 'recoveryPlan' | 'testFailover';

export const KINDS: Readonly<Record<Exclude<ResourceKind, 'vault' | 'protectedVm' | 'testFailover'>, ObjectKind>> = {
  site: {
    title: 'site',
    collection: 'sites',
    schema: 'site',
    specKeys: ['kind', 'description', 'hosts', 'clouds', 'timeZone'],
    identity: ['kind'],
    identifiers: ['hosts', 'clouds.name', 'clouds.hosts'],
    releaseWhenAdopted: true,
  },
  replicationPolicy: {
    title: 'replication policy',
    collection: 'replicationPolicies',
    schema: 'replication-policy',
    specKeys: [
      'description', 'target', 'replicationFrequencySeconds', 'recoveryPointRetentionHours', 'appConsistentSnapshotFrequencyHours', 'initialReplication',
      'compression', 'authentication', 'replicationPort', 'deleteReplicaOnDisable', 'resync', 'bandwidthLimitMbps', 'offHoursBandwidthLimitMbps', 'offHours',
      'azure', 'associations',
    ],
    identity: ['target'],
    identifiers: ['associations.source', 'associations.target'],
    releaseWhenAdopted: false,
  },
  networkMapping: {
    title: 'network mapping',
    collection: 'networkMappings',
    schema: 'network-mapping',
    specKeys: ['description', 'source', 'target', 'testNetwork'],
    identity: [],
    identifiers: ['source.site', 'target.site'],
    releaseWhenAdopted: false,
  },
  recoveryPlan: {
    title: 'recovery plan',
    collection: 'recoveryPlans',
    schema: 'recovery-plan',
    specKeys: ['description', 'groups'],
    identity: [],
    identifiers: ['groups.vms'],
    releaseWhenAdopted: false,
  },
};
