/**
 * `lifeboat agent run|status|vm`: run the host agent in the foreground, and
 * talk to a running agent through its local control socket
 * (docs/agent.md §8).
 */

import { request } from 'node:http';
import * as path from 'node:path';
import { agentPaths } from '../../agent/agent-files';
import { HostAgent, type AgentRole } from '../../agent/host-agent';
import { LifeboatError, describe } from '../../errors';
import { type CliContext, type Command, intOption, OUTPUT_OPTION, outputFormat, parse, requiredOption } from '../command';
import { EXIT, NotFoundError, UsageError } from '../exit-codes';
import { DEFAULT_LAB_DIR, readLabState } from '../lab/lab-state';
import { errorText, json, table } from '../output';
import { SERVING } from '../serving';

const RUN_USAGE = 'lifeboat agent run --vault URL [--vault-name NAME] --registration-key-file FILE --site SITE --name HOST --data-dir DIR '
  + '[--role primary|recovery|azure [--guest-rate-kib N (lab: the guest of VMs failed over to Azure)]] [--address A]... [--listen-address A] [--replication-port N] [--scripts-dir DIR]';

/** `agent run`. */
export const agentRun: Command = async (args, ctx) => {
  const { values } = parse(args, {
    vault: { type: 'string' },
    'vault-name': { type: 'string' },
    'registration-key-file': { type: 'string' },
    site: { type: 'string' },
    name: { type: 'string' },
    'data-dir': { type: 'string' },
    role: { type: 'string' },
    address: { type: 'string', multiple: true },
    'listen-address': { type: 'string' },
    'replication-port': { type: 'string' },
    'test-frequency-ms': { type: 'string' },
    'guest-rate-kib': { type: 'string' },
    'test-retry-ms': { type: 'string' },
    'scripts-dir': { type: 'string' },
  }, RUN_USAGE);
  const vaultArg = requiredOption(values, 'vault', RUN_USAGE);
  const { url, name: nameInUrl } = splitVaultUrl(vaultArg);
  const vault = (values['vault-name'] as string | undefined) ?? nameInUrl;
  if (vault === undefined) throw new UsageError('the vault name is missing', 'pass --vault-name NAME, or --vault http://HOST:PORT/v1/vaults/NAME');
  const role = (values.role as string | undefined) ?? 'primary';
  if (role !== 'primary' && role !== 'recovery' && role !== 'azure') throw new UsageError(`--role ${role} is not a role`, 'use --role primary, recovery or azure (the lab\'s Azure side)');
  const port = intOption(values, 'replication-port', 0, 65535);
  const frequency = intOption(values, 'test-frequency-ms', 100, 3_600_000);
  const guestRate = intOption(values, 'guest-rate-kib', 1, 1024 * 1024);
  const retryUnit = intOption(values, 'test-retry-ms', 10, 60_000);
  let stopping = false;
  const agent = await HostAgent.start({
    vaultUrl: url,
    vault,
    host: requiredOption(values, 'name', RUN_USAGE),
    site: requiredOption(values, 'site', RUN_USAGE),
    dataDir: path.resolve(ctx.cwd, requiredOption(values, 'data-dir', RUN_USAGE)),
    registrationKeyFile: path.resolve(ctx.cwd, requiredOption(values, 'registration-key-file', RUN_USAGE)),
    role: role as AgentRole,
    ...(Array.isArray(values.address) ? { addresses: values.address } : {}),
    ...(typeof values['listen-address'] === 'string' ? { listenAddress: values['listen-address'] } : {}),
    ...(port === undefined ? {} : { replicationPort: port }),
    ...(frequency === undefined ? {} : { frequencyOverrideMs: frequency }),
    ...(guestRate === undefined ? {} : { azureGuestBytesPerSecond: guestRate * 1024 }),
    ...(retryUnit === undefined ? {} : { retryUnitMs: retryUnit }),
    ...(typeof values['scripts-dir'] === 'string' ? { scriptsDir: path.resolve(ctx.cwd, values['scripts-dir']) } : {}),
    onFatal: (e) => {
      if (stopping) return;
      stopping = true;
      ctx.out.error(errorText(e));
      void agent.stop().finally(() => process.exit(EXIT.auth));
    },
  });
  ctx.out.line(`agent ${agent.identity.host} running: vault ${url} (${agent.identity.vault}), site ${agent.identity.site}, role ${role}, data ${agent.paths.root}`);
  if (agent.replicationEndpoint !== undefined) ctx.out.line(`replication endpoint ${agent.replicationEndpoint.address}:${agent.replicationEndpoint.port}`);
  const stop = (): void => {
    if (stopping) return;
    stopping = true;
    ctx.out.line('agent stopping');
    void agent.stop().then(() => process.exit(EXIT.ok), (e: unknown) => {
      ctx.out.error(`error while stopping: ${describe(e)}`);
      process.exit(EXIT.failed);
    });
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  return SERVING;
};

const STATUS_USAGE = 'lifeboat agent status (--data-dir DIR | --host NAME [--lab-dir DIR]) [--output json]';

/** `agent status`. */
export const agentStatus: Command = async (args, ctx) => {
  const { values } = parse(args, { 'data-dir': { type: 'string' }, host: { type: 'string' }, 'lab-dir': { type: 'string' }, ...OUTPUT_OPTION }, STATUS_USAGE);
  const socket = await socketOf(values, ctx, STATUS_USAGE);
  const status = await control(socket, 'GET', '/status') as {
    host: string; site: string; role: string; vault: string; vaultUrl: string; vaultReachable: boolean;
    replicationEndpoint?: { address: string; port: number };
    vms: { name: string; power: string; disks: { id: string; tracked: boolean }[] }[];
    items: { item: string; vm: string; report: { replicationState?: string; health?: string; rpoSeconds?: number; initialReplicationPercent?: number } }[];
    replicas: { item: string; disks: string[] }[];
  };
  if (outputFormat(values) === 'json') {
    ctx.out.line(json(status));
    return EXIT.ok;
  }
  ctx.out.line(`host ${status.host} (site ${status.site}, role ${status.role}) of vault ${status.vault} at ${status.vaultUrl}: ${status.vaultReachable ? 'reachable' : 'UNREACHABLE'}`);
  if (status.replicationEndpoint !== undefined) ctx.out.line(`replication endpoint ${status.replicationEndpoint.address}:${status.replicationEndpoint.port}`);
  ctx.out.line('');
  ctx.out.line(table(['VM', 'POWER', 'DISKS'], status.vms.map((v) => [v.name, v.power, v.disks.map((d) => `${d.id}${d.tracked ? ' (tracked)' : ''}`).join(', ')])));
  if (status.items.length > 0) {
    ctx.out.line('');
    ctx.out.line(table(['ITEM', 'VM', 'STATE', 'HEALTH', 'RPO'], status.items.map((i) => [
      i.item, i.vm, i.report.replicationState ?? '-', i.report.health ?? '-', i.report.rpoSeconds === undefined ? '-' : `${Math.round(i.report.rpoSeconds)} s`,
    ])));
  }
  if (status.replicas.length > 0) {
    ctx.out.line('');
    ctx.out.line(table(['REPLICA OF ITEM', 'DISKS'], status.replicas.map((r) => [r.item, r.disks.join(', ')])));
  }
  return EXIT.ok;
};

const VM_USAGE = 'lifeboat agent vm start|shutdown VM (--data-dir DIR | --host NAME [--lab-dir DIR]) [--turn-off]';

/** `agent vm start|shutdown VM`. */
export const agentVm: Command = async (args, ctx) => {
  const { values, positionals } = parse(args, { 'data-dir': { type: 'string' }, host: { type: 'string' }, 'lab-dir': { type: 'string' }, 'turn-off': { type: 'boolean' }, ...OUTPUT_OPTION }, VM_USAGE, 2);
  const [action, vm] = positionals;
  if ((action !== 'start' && action !== 'shutdown') || vm === undefined) throw new UsageError('say what to do with which VM', `usage: ${VM_USAGE}`);
  const socket = await socketOf(values, ctx, VM_USAGE);
  const info = await control(socket, 'POST', `/vms/${encodeURIComponent(vm)}/${action}`, action === 'shutdown' ? { turnOff: values['turn-off'] === true } : undefined) as { name: string; power: string };
  if (outputFormat(values) === 'json') ctx.out.line(json(info));
  else ctx.out.line(`VM ${info.name} is ${info.power}`);
  return EXIT.ok;
};

/** Split `http://h:p/v1/vaults/NAME` into the server URL and the vault name. */
export function splitVaultUrl(url: string): { readonly url: string; readonly name: string | undefined } {
  const m = /^(.*?)\/v1\/vaults\/([^/?#]+)\/?$/.exec(url);
  return m === null ? { url: url.replace(/\/+$/, ''), name: undefined } : { url: m[1]!, name: decodeURIComponent(m[2]!) };
}

async function socketOf(values: Readonly<Record<string, unknown>>, ctx: CliContext, usage: string): Promise<string> {
  if (typeof values['data-dir'] === 'string') return agentPaths(path.resolve(ctx.cwd, values['data-dir'])).controlSocket;
  if (typeof values.host === 'string') {
    const labDir = path.resolve(ctx.cwd, typeof values['lab-dir'] === 'string' ? values['lab-dir'] : DEFAULT_LAB_DIR);
    const lab = await readLabState(labDir);
    if (lab === undefined) throw new NotFoundError('lab.notFound', `no lab in ${labDir}`, 'run `lifeboat lab up`, or name the agent\'s --data-dir');
    const p = lab.processes.find((x) => x.kind === 'agent' && x.name.toLowerCase() === values.host!.toString().toLowerCase());
    if (p === undefined) throw new NotFoundError('lab.hostNotFound', `the lab has no host ${String(values.host)}`, `its hosts: ${lab.processes.filter((x) => x.kind === 'agent').map((x) => x.name).join(', ')}`);
    return agentPaths(p.dataDir).controlSocket;
  }
  throw new UsageError('which agent?', `usage: ${usage}`);
}

/** One request to an agent's control socket. Throws the agent's error, or `agent.notRunning` (exit 3). */
export function control(socketPath: string, method: string, urlPath: string, body?: unknown): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const text = body === undefined ? undefined : JSON.stringify(body);
    const req = request({ socketPath, path: urlPath, method, headers: text === undefined ? {} : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        let parsed: unknown;
        try {
          parsed = JSON.parse(Buffer.concat(chunks).toString('utf8'));
        } catch {
          parsed = undefined;
        }
        if ((res.statusCode ?? 500) < 300) {
          resolve(parsed);
          return;
        }
        const err = ((parsed as { error?: Record<string, unknown> } | undefined)?.error ?? {}) as { code?: string; category?: string; message?: string; hint?: string };
        const category = (err.category ?? 'bug') as ConstructorParameters<typeof LifeboatError>[1];
        reject(new LifeboatError(err.code ?? `http.${res.statusCode}`, category, err.message ?? `HTTP ${res.statusCode}`, err.hint === undefined ? {} : { hint: err.hint }));
      });
    });
    req.on('error', (e: NodeJS.ErrnoException) => {
      reject(new LifeboatError('agent.notRunning', 'recoverable', `no agent answers on ${socketPath} (${e.code ?? e.message})`, {
        cause: e,
        hint: 'start it with `lifeboat agent run` (or `lifeboat lab up`)',
      }));
    });
    if (text !== undefined) req.write(text);
    req.end();
  });
}
