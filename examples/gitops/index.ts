import { loadProtection } from 'lifeboat';
const protection = loadProtection('protection.yaml', { adopt: { vault: true, sites: true }, waitForInitialReplication: { timeoutMinutes: 10 } });
export const vms = Object.values(protection.protectedVms).map((vm) => ({ name: vm.name, state: vm.replicationState, health: vm.health }));
