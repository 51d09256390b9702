import * as pulumi from '@pulumi/pulumi';
import { loadProtection } from 'lifeboat';

const config = new pulumi.Config();
const protection = loadProtection(config.get('file') ?? 'protection.yaml', { adopt: { vault: true, sites: true } });

export const appState = protection.protectedVms.app!.replicationState;
export const sites = Object.keys(protection.sites);
