import * as pulumi from '@pulumi/pulumi';
import { RecoveryPlan, TestFailover } from 'lifeboat';

const config = new pulumi.Config();
const activeLocation = config.get('activeLocation') as 'primary' | 'recovery' | undefined;
// The items are protected by the test through the API; the plan orders them.
const plan = new RecoveryPlan('erp', {
  vault: 'lab',
  groups: [{ name: 'data', vms: ['db'] }, { name: 'web', vms: ['web'] }],
  ...(activeLocation === undefined ? {} : { activeLocation }),
});
// A drill runs while `drill` is set; a new value runs it again.
const run = config.get('drill');
const expiresAfter = config.get('expiresAfter');
const drill = run === undefined ? undefined : new TestFailover('drill', {
  vault: 'lab', plan: plan.name, runId: run, ...(expiresAfter === undefined ? {} : { expiresAfter }),
});

export const location = plan.activeLocation;
export const report = drill === undefined ? undefined : { job: drill.job, status: drill.status, passed: drill.passed, expiresAt: drill.expiresAt, vms: drill.vms };
