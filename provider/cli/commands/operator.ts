/**
 * The operator's commands against a vault (docs/operations.md §4): `status`,
 * `vms`, `recovery-points ITEM`, `resync ITEM`. Tables for people,
 * `--output json` for scripts; the vault is found as connection.ts says.
 */

import { type HostSpec, type HostStatus, type JobInfo, type ObjectEnvelope, type ProtectedItemSpec, type ProtectedItemStatus } from '../../client';
import { isNotFound } from '../../client';
import { type CliContext, type Command, OUTPUT_OPTION, outputFormat, parse } from '../command';
import { CONNECTION_OPTIONS, connect, connectionFlags } from '../connection';
import { EXIT, NotFoundError, UsageError } from '../exit-codes';
import { ago, bytes, json, seconds, shortId, table } from '../output';
import { watchJobs } from './jobs';

type Item = ObjectEnvelope<ProtectedItemSpec, ProtectedItemStatus>;
type Host = ObjectEnvelope<HostSpec, HostStatus>;

const STATUS_USAGE = 'lifeboat status [--output json] [--vault URL --token-file FILE] [--vault-name NAME]';

/** `status`: the vault, its hosts, its protected items, its active jobs. */
export const status: Command = async (args, ctx) => {
  const { values } = parse(args, { ...CONNECTION_OPTIONS, ...OUTPUT_OPTION }, STATUS_USAGE);
  const format = outputFormat(values);
  const c = await connect(connectionFlags(values), ctx.env, ctx.cwd);
  const [health, hosts, items, jobs] = await Promise.all([
    c.client.health(),
    c.client.listHosts(c.vault),
    c.client.listProtectedItems(c.vault),
    c.client.listJobs(c.vault, { states: ['NotStarted', 'InProgress', 'WaitingForAction', 'Cancelling'] }),
  ]);
  if (format === 'json') {
    ctx.out.line(json({ url: c.url, vault: c.vault, health, hosts, items, activeJobs: jobs }));
    return EXIT.ok;
  }
  const now = Date.now();
  ctx.out.line(`vault ${c.vault} at ${c.url}: ${health.status} (version ${health.version})`);
  ctx.out.line('');
  ctx.out.line(hostsTable(hosts, now));
  ctx.out.line('');
  ctx.out.line(items.length === 0 ? 'no protected items' : itemsTable(items, now));
  ctx.out.line('');
  ctx.out.line(jobs.length === 0 ? 'no active jobs' : `${jobs.length} active job${jobs.length === 1 ? '' : 's'}: ${jobs.map((j) => `${j.type} ${j.target.name} (${j.progress} %)`).join(', ')}`);
  const attention = items.filter((i) => i.status.health === 'Critical');
  if (attention.length > 0) {
    ctx.out.line('');
    for (const i of attention) {
      const issue = (i.status.issues ?? []).find((x) => x.severity === 'Critical');
      ctx.out.line(`attention: ${i.name}: ${issue?.message ?? i.status.healthReason ?? 'Critical'}${issue?.hint === undefined ? '' : `\n  hint: ${issue.hint}`}`);
    }
  }
  return EXIT.ok;
};

function hostsTable(hosts: readonly Host[], now: number): string {
  if (hosts.length === 0) return 'no registered hosts';
  return table(['HOST', 'SITE', 'CONNECTION', 'LAST CONTACT', 'VMS', 'FREE'], hosts.map((h) => [
    h.name, h.spec.site, h.status.connectionState ?? '-', ago(h.status.lastContactAt, now),
    String(h.status.inventory?.vms.length ?? 0), bytes(h.status.storage?.freeBytes),
  ]));
}

function itemsTable(items: readonly Item[], now: number): string {
  return table(['ITEM', 'VM', 'STATE', 'ACTIVE', 'HEALTH', 'RPO', 'LAST POINT', 'ROUTE', 'JOB'], items.map((i) => {
    const s = i.status;
    const state = s.replicationState === 'InitialReplicationInProgress' && s.initialReplicationPercent !== undefined
      ? `${s.replicationState} ${s.initialReplicationPercent}%` : s.replicationState;
    return [
      i.name, i.spec.vm, state, s.activeLocation ?? 'primary', s.health, seconds(s.rpoSeconds), ago(s.lastReplicatedTime, now),
      `${s.sourceHost ?? '?'} → ${s.targetHost ?? '?'}`, s.activeJob === undefined ? '-' : `${s.activeJob.type} ${shortId(s.activeJob.id)}`,
    ];
  }));
}

const VMS_USAGE = 'lifeboat vms [--output json] [--vault URL --token-file FILE] [--vault-name NAME]';

/** `vms`: every VM the hosts report, with its protection. */
export const vms: Command = async (args, ctx) => {
  const { values } = parse(args, { ...CONNECTION_OPTIONS, ...OUTPUT_OPTION }, VMS_USAGE);
  const format = outputFormat(values);
  const c = await connect(connectionFlags(values), ctx.env, ctx.cwd);
  const [hosts, items] = await Promise.all([c.client.listHosts(c.vault), c.client.listProtectedItems(c.vault)]);
  const rows = hosts.flatMap((h) => (h.status.inventory?.vms ?? []).map((vm) => {
    // The item's VM at its own site, or its failover VM on the host it failed over to.
    const item = items.find((i) => i.spec.vm.toLowerCase() === vm.name.toLowerCase()
      && (i.spec.site.toLowerCase() === h.spec.site.toLowerCase() || i.status.failover?.host?.toLowerCase() === h.name.toLowerCase()));
    return { vm, host: h.name, site: h.spec.site, item };
  }));
  if (format === 'json') {
    ctx.out.line(json(rows.map((r) => ({
      name: r.vm.name, host: r.host, site: r.site, powerState: r.vm.powerState, disks: r.vm.disks,
      protectedItem: r.item?.name, replicationState: r.item?.status.replicationState, health: r.item?.status.health,
      activeLocation: r.item?.status.activeLocation, fenced: r.item !== undefined && isFencedHere(r.item, r.host),
    }))));
    return EXIT.ok;
  }
  if (rows.length === 0) {
    ctx.out.line('no VMs: no host has reported an inventory yet');
    return EXIT.ok;
  }
  ctx.out.line(table(['VM', 'HOST', 'SITE', 'POWER', 'DISKS', 'PROTECTED AS', 'STATE', 'ACTIVE', 'HEALTH'], rows.map((r) => [
    r.vm.name, r.host, r.site, r.item !== undefined && isFencedHere(r.item, r.host) ? `${r.vm.powerState ?? '-'} (fenced)` : r.vm.powerState ?? '-',
    `${r.vm.disks.length} (${bytes(r.vm.disks.reduce((n, d) => n + d.sizeBytes, 0))})`,
    r.item?.name ?? '-', r.item?.status.replicationState ?? 'NotProtected', r.item?.status.activeLocation ?? '-', r.item?.status.health ?? '-',
  ])));
  return EXIT.ok;
};

/** The item's VM on `host` is the one its failover left fenced (docs/failover.md §6). */
function isFencedHere(item: Item, host: string): boolean {
  const f = item.status.failover;
  return f?.fromHost !== undefined && f.released !== true && f.fromHost.toLowerCase() === host.toLowerCase();
}

const POINTS_USAGE = 'lifeboat recovery-points ITEM [--output json] [--vault URL --token-file FILE] [--vault-name NAME]';

/** `recovery-points ITEM`: the item's retained points, oldest first. */
export const recoveryPoints: Command = async (args, ctx) => {
  const { values, positionals } = parse(args, { ...CONNECTION_OPTIONS, ...OUTPUT_OPTION }, POINTS_USAGE, 1);
  const name = positionals[0];
  if (name === undefined) throw new UsageError('which item?', `usage: ${POINTS_USAGE}`);
  const format = outputFormat(values);
  const c = await connect(connectionFlags(values), ctx.env, ctx.cwd);
  const points = await notFoundAsItem(c.vault, name, () => c.client.recoveryPoints(c.vault, name));
  if (format === 'json') {
    ctx.out.line(json(points));
    return EXIT.ok;
  }
  if (points.length === 0) {
    ctx.out.line(`item ${name} has no recovery point yet`);
    return EXIT.ok;
  }
  const now = Date.now();
  ctx.out.line(table(['POINT', 'TIME', 'AGE', 'KIND'], points.map((p) => [p.id, p.time, ago(p.time, now), p.kind === 'appConsistent' ? 'app-consistent' : 'crash-consistent'])));
  return EXIT.ok;
};

const RESYNC_USAGE = 'lifeboat resync ITEM [--wait] [--output json] [--vault URL --token-file FILE] [--vault-name NAME]';

/** `resync ITEM [--wait]`: start a resynchronisation; with `--wait`, follow it to the end. */
export const resync: Command = async (args, ctx) => {
  const { values, positionals } = parse(args, { ...CONNECTION_OPTIONS, ...OUTPUT_OPTION, wait: { type: 'boolean' } }, RESYNC_USAGE, 1);
  const name = positionals[0];
  if (name === undefined) throw new UsageError('which item?', `usage: ${RESYNC_USAGE}`);
  const format = outputFormat(values);
  const c = await connect(connectionFlags(values), ctx.env, ctx.cwd);
  const job = await notFoundAsItem(c.vault, name, () => c.client.resyncProtectedItem(c.vault, name));
  if (values.wait !== true) {
    ctx.out.line(format === 'json' ? json(job) : `resync of ${name} started: job ${job.id} (follow it with \`lifeboat jobs --watch ${job.id}\`)`);
    return EXIT.ok;
  }
  return followJob(ctx, c.client, c.vault, job, format);
};

/** Follow one job to its end: exit 0 if it succeeded, 1 otherwise. */
async function followJob(ctx: CliContext, client: Parameters<typeof watchJobs>[1], vault: string, job: JobInfo, format: 'table' | 'json'): Promise<number> {
  return watchJobs(ctx, client, vault, { id: job.id, format });
}

async function notFoundAsItem<T>(vault: string, name: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if (isNotFound(e)) throw new NotFoundError('protectedItem.notFound', `vault ${vault} has no protected item ${name}`, 'list them with `lifeboat status`');
    throw e;
  }
}
