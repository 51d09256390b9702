/**
 * `lifeboat lab up|status|down [--dir DIR]` (docs/operations.md §2): a vault,
 * two primary hosts and a recovery host as detached processes on loopback,
 * with demo VMs running seeded workloads, all inside one folder (default
 * `.lab` in the current folder). With `up --protection FILE` the topology
 * comes from a protection file instead (lab/protection-topology.ts): its
 * vault and sites, one agent per host, one demo VM per protected VM; the
 * folder remembers it, so later `up`s restart the same lab.
 *
 * - `up` starts whatever is not running (so it also restarts a lab after
 *   `down`, or one process that died), configures the vault idempotently
 *   (a protection lab only creates its vault and sites when absent: the
 *   stack adopts and owns them),
 *   waits until every host is connected and has reported its VMs, writes
 *   `lab.json` and prints the endpoint and the admin token's file (mode
 *   0600), never the token.
 * - `status` shows the processes and the vault's health; exit 1 if any is
 *   down, 4 if there is no lab.
 * - `down` stops the agents, then the vault (SIGTERM, then SIGKILL after
 *   `--timeout`); idempotent. The data stays for the next `up` unless
 *   `--purge`.
 *
 * Errors: a protection file with problems (`lab.invalidProtectionFile`, its
 * problems printed first), a file that does not fit the folder's lab
 * (`lab.topologyMismatch`), a file without hosts (`lab.noHosts`,
 * `lab.noHostForVm`): nothing is started. A process that dies or a wait
 * that times out (`lab.processDied`, `lab.timeout`) leaves what started
 * running and recorded in lab.json, so `down` stops it and `up` resumes.
 */

import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { VaultApiError, VaultClient } from '../../client';
import { InvalidInputError, LifeboatError } from '../../errors';
import { LabHypervisor } from '../../hypervisor/lab';
import { MiB, KiB } from '../../units';
import { formatProblems, validateProtectionFile } from '../../yaml';
import { type CliContext, type Command, intOption, OUTPUT_OPTION, outputFormat, parse } from '../command';
import { readTokenFile } from '../connection';
import { EXIT, NotFoundError } from '../exit-codes';
import { DEFAULT_LAB_DIR, type LabProcess, type LabState, labStateFile, readLabState, writeLabState } from '../lab/lab-state';
import { DEMO_TOPOLOGY, LAB_NETWORK, type LabHostSpec, type LabTopology, type LabVmSpec } from '../lab/lab-topology';
import { topologyFromProtection } from '../lab/protection-topology';
import { azuriteDir, azuriteEndpoint, freePort, LAB_AZURE_POLICY, labAzurePolicySpec, startAzurite, withAzure } from '../lab/lab-azure';
import { isAlive, spawnDetached, stopProcess } from '../lab/processes';
import { ago, json, table } from '../output';

const UP_USAGE = 'lifeboat lab up [--dir DIR] [--protection FILE] [--azure] [--disk-mib N] [--rate-kib N] [--frequency-ms N (test only)] [--retry-ms N (test only)] [--timeout SECONDS]';

/** A protection lab's defaults: small disks and quick cycles, so the demo and CI stay short. */
const PROTECTION_DISK_MIB = 16;
const PROTECTION_FREQUENCY_MS = 1000;
const STATUS_USAGE = 'lifeboat lab status [--dir DIR] [--output json]';
const DOWN_USAGE = 'lifeboat lab down [--dir DIR] [--timeout SECONDS] [--purge]';

export const labUp: Command = async (args, ctx) => {
  const { values } = parse(args, {
    dir: { type: 'string' }, protection: { type: 'string' }, azure: { type: 'boolean' }, 'disk-mib': { type: 'string' }, 'rate-kib': { type: 'string' }, 'frequency-ms': { type: 'string' }, 'retry-ms': { type: 'string' }, timeout: { type: 'string' },
  }, UP_USAGE);
  const dir = path.resolve(ctx.cwd, (values.dir as string | undefined) ?? DEFAULT_LAB_DIR);
  const previous = await readLabState(dir);
  const azure = values.azure === true || previous?.azurite !== undefined;
  const chosen = await chooseTopology(values.protection as string | undefined, previous, ctx);
  const topology = azure ? withAzure(chosen) : chosen;
  const fromFile = topology.protectionFile !== undefined;
  const diskBytes = (intOption(values, 'disk-mib', 1, 1024 * 1024) ?? (fromFile ? PROTECTION_DISK_MIB : 64)) * MiB;
  const rate = (intOption(values, 'rate-kib', 1, 1024 * 1024) ?? 64) * KiB;
  const frequencyOption = intOption(values, 'frequency-ms', 100, 3_600_000);
  // Test only: the agents' retry unit instead of a minute (not kept across restarts).
  const retryMs = intOption(values, 'retry-ms', 10, 60_000);
  const timeoutMs = (intOption(values, 'timeout', 1, 3600) ?? 60) * 1000;
  const deadline = Date.now() + timeoutMs;
  await mkdir(path.join(dir, 'logs'), { recursive: true, mode: 0o700 });
  // A restart keeps the copy frequency override the lab was first started with.
  const frequencyMs = frequencyOption ?? (previous === undefined ? (fromFile ? PROTECTION_FREQUENCY_MS : undefined) : previous.frequencyMs);
  const now = new Date().toISOString();
  const procs = new Map<string, LabProcess>();
  for (const p of previous?.processes ?? []) if (isAlive(p.pid, p.dataDir)) procs.set(p.name, p);
  const tokenFile = path.join(dir, 'vault', 'admin-token');
  const azurePort = azure ? previous?.azurite?.port ?? await freePort() : undefined;
  // Saved after every start, so `down` finds whatever runs even if `up` fails half-way.
  const save = async (url: string): Promise<LabState> => {
    const state: LabState = {
      version: 1, dir, vaultUrl: url, vaultPort: Number(new URL(url).port), vaultName: topology.vault.name, adminTokenFile: tokenFile,
      processes: ['vault', ...(azure ? ['azurite'] : []), ...topology.hosts.map((h) => h.name)].map((n) => procs.get(n) ?? previous?.processes.find((p) => p.name === n)).filter((p): p is LabProcess => p !== undefined),
      ...(frequencyMs === undefined ? {} : { frequencyMs }),
      ...(fromFile ? { topology: chosen } : {}),
      ...(azurePort === undefined ? {} : { azurite: { port: azurePort } }),
      upAt: now,
    };
    await writeLabState(state);
    return state;
  };

  // The vault, on the port of the previous run: agents know its URL.
  const vaultDir = path.join(dir, 'vault');
  const vaultLog = path.join(dir, 'logs', 'vault.log');
  let url = previous?.vaultUrl;
  if (!procs.has('vault')) {
    const logStart = await sizeOf(vaultLog);
    const pid = spawnDetached(['vault', 'serve', '--data-dir', vaultDir, '--port', String(previous?.vaultPort ?? 0)], vaultLog, dir);
    procs.set('vault', { name: 'vault', kind: 'vault', pid, dataDir: vaultDir, logFile: vaultLog, startedAt: now });
    if (previous !== undefined) await save(previous.vaultUrl);
    url = await waitForListening(vaultLog, logStart, pid, vaultDir, deadline);
    await save(url);
    ctx.out.line(`vault started (pid ${pid}) on ${url}`);
  }
  const client = new VaultClient({ url: url!, token: await readTokenFile(tokenFile) });
  await waitFor('the vault to answer', deadline, async () => (await client.health().then(() => true, () => false)));

  if (azurePort !== undefined && !procs.has('azurite')) {
    const dataDir = azuriteDir(dir);
    await mkdir(dataDir, { recursive: true, mode: 0o700 });
    const logFile = path.join(dir, 'logs', 'azurite.log');
    const pid = startAzurite(dataDir, azurePort, logFile, dir);
    procs.set('azurite', { name: 'azurite', kind: 'azurite', pid, dataDir, logFile, startedAt: now });
    await save(url!);
    await waitFor('Azurite to listen', deadline, async () => {
      if (!isAlive(pid, dataDir)) throw new LifeboatError('lab.processDied', 'nonRecoverable', `Azurite (pid ${pid}) stopped during start-up`, { hint: `see its log: ${logFile}` });
      return (await fetch(`http://127.0.0.1:${azurePort}/`).then(() => true, () => false));
    });
    ctx.out.line(`azurite started (pid ${pid}) on ${azuriteEndpoint(azurePort)}`);
  }
  await configureVault(client, topology);
  if (azurePort !== undefined) await client.putObject(topology.vault.name, 'replicationPolicies', LAB_AZURE_POLICY, labAzurePolicySpec(azurePort) as never);
  const keyFile = path.join(dir, 'registration-key');
  await writeFile(keyFile, `${await client.registrationKey(topology.vault.name)}\n`, { mode: 0o600 });

  for (const h of topology.hosts) {
    const running = procs.get(h.name);
    const missing = h.vms.filter((vm) => !existsSync(path.join(dir, 'hosts', h.name, 'lab', 'vms', vm.name, 'vm.json')));
    if (running !== undefined && missing.length > 0) {
      // The agent holds its lab root: a VM the protection file added is created while it is stopped.
      await stopProcess(running.pid, running.dataDir, 15_000);
      procs.delete(h.name);
      ctx.out.line(`host ${h.name} stopped to create ${missing.map((v) => v.name).join(', ')}`);
    }
    if (procs.has(h.name)) continue;
    const dataDir = path.join(dir, 'hosts', h.name);
    await mkdir(dataDir, { recursive: true, mode: 0o700 });
    if (h.vms.length > 0) await createDemoVms(path.join(dataDir, 'lab'), h.vms, diskBytes, rate);
    const logFile = path.join(dir, 'logs', `${h.name}.log`);
    const pid = spawnDetached([
      'agent', 'run', '--vault', url!, '--vault-name', topology.vault.name, '--registration-key-file', keyFile, '--site', h.site, '--name', h.name,
      '--data-dir', dataDir, '--role', h.role, ...(frequencyMs === undefined || h.role !== 'primary' ? [] : ['--test-frequency-ms', String(frequencyMs)]),
      ...(h.role === 'azure' ? ['--guest-rate-kib', String(Math.max(1, Math.round(rate / KiB)))] : []),
      ...(retryMs === undefined || h.role !== 'primary' ? [] : ['--test-retry-ms', String(retryMs)]),
    ], logFile, dir);
    procs.set(h.name, { name: h.name, kind: 'agent', role: h.role, site: h.site, pid, dataDir, logFile, startedAt: now });
    await save(url!);
    ctx.out.line(`host ${h.name} started (pid ${pid}, ${h.role})`);
  }

  const state = await save(url!);
  await waitFor('every host to connect and report its VMs', deadline, async () => {
    for (const p of state.processes) {
      if (!isAlive(p.pid, p.dataDir)) throw new LifeboatError('lab.processDied', 'nonRecoverable', `${p.name} (pid ${p.pid}) stopped during start-up`, { hint: `see its log: ${p.logFile}` });
    }
    const hosts = await client.listHosts(topology.vault.name).catch(() => []);
    return topology.hosts.every((h) => {
      const host = hosts.find((x) => x.name === h.name);
      return host?.status.connectionState === 'Connected' && host.status.inventory !== undefined
        && h.vms.every((vm) => host.status.inventory!.vms.some((v) => v.name === vm.name));
    });
  });

  ctx.out.line('');
  ctx.out.line(`lab up in ${dir}`);
  ctx.out.line(`vault endpoint: ${url} (vault '${topology.vault.name}')`);
  if (fromFile) ctx.out.line(`topology: ${topology.protectionFile} (the vault and its sites; policies, mappings, protected VMs and plans are the stack's)`);
  ctx.out.line(`admin token: ${tokenFile} (mode 0600; not shown)`);
  ctx.out.line('');
  ctx.out.line(table(['PROCESS', 'ROLE', 'PID', 'VMS', 'LOG'], state.processes.map((p) => [
    p.name, p.kind === 'agent' ? `${p.role} (site ${p.site})` : p.kind, String(p.pid), vmsOf(topology, p.name), path.relative(ctx.cwd, p.logFile) || p.logFile,
  ])));
  ctx.out.line('');
  ctx.out.line(`try: lifeboat status${path.resolve(ctx.cwd, DEFAULT_LAB_DIR) === dir ? '' : ` --lab-dir ${dir}`}   (or export LIFEBOAT_VAULT_URL=${url} LIFEBOAT_TOKEN_FILE=${tokenFile})`);
  return EXIT.ok;
};

export const labStatus: Command = async (args, ctx) => {
  const { values } = parse(args, { dir: { type: 'string' }, ...OUTPUT_OPTION }, STATUS_USAGE);
  const format = outputFormat(values);
  const { dir, state } = await requireLab(values, ctx);
  const procs = state.processes.map((p) => ({ ...p, running: isAlive(p.pid, p.dataDir) }));
  let health: string;
  try {
    health = (await new VaultClient({ url: state.vaultUrl, timeoutMs: 3000 }).health()).status;
  } catch (e) {
    health = `unreachable (${LifeboatError.isInstance(e) ? e.code : String(e)})`;
  }
  const allUp = procs.every((p) => p.running) && health === 'ok';
  if (format === 'json') {
    ctx.out.line(json({
      dir, vaultUrl: state.vaultUrl, vaultName: state.vaultName, adminTokenFile: state.adminTokenFile, vaultHealth: health, up: allUp,
      ...(state.topology?.protectionFile === undefined ? {} : { protectionFile: state.topology.protectionFile }),
      processes: procs.map((p) => ({ ...p, vms: (topologyOf(state).hosts.find((h) => h.name === p.name)?.vms ?? []).map((v) => v.name) })),
    }));
  } else {
    const now = Date.now();
    ctx.out.line(`lab in ${dir}: ${allUp ? 'up' : procs.some((p) => p.running) ? 'partly up' : 'down'}`);
    ctx.out.line(`vault endpoint: ${state.vaultUrl} (vault '${state.vaultName}'): ${health}`);
    ctx.out.line(`admin token: ${state.adminTokenFile}`);
    if (state.topology?.protectionFile !== undefined) ctx.out.line(`topology: ${state.topology.protectionFile}`);
    ctx.out.line('');
    ctx.out.line(table(['PROCESS', 'ROLE', 'PID', 'STATE', 'STARTED', 'VMS'], procs.map((p) => [
      p.name, p.kind === 'agent' ? `${p.role ?? '?'} (site ${p.site ?? '?'})` : p.kind, String(p.pid), p.running ? 'running' : 'stopped', ago(p.startedAt, now), vmsOf(topologyOf(state), p.name),
    ])));
  }
  return allUp ? EXIT.ok : EXIT.failed;
};

export const labDown: Command = async (args, ctx) => {
  const { values } = parse(args, { dir: { type: 'string' }, timeout: { type: 'string' }, purge: { type: 'boolean' } }, DOWN_USAGE);
  const dir = path.resolve(ctx.cwd, (values.dir as string | undefined) ?? DEFAULT_LAB_DIR);
  const timeoutMs = (intOption(values, 'timeout', 1, 3600) ?? 15) * 1000;
  const state = await readLabState(dir);
  if (state === undefined) {
    ctx.out.line(`no lab in ${dir}: nothing to stop`);
    if (values.purge === true) await rm(dir, { recursive: true, force: true });
    return EXIT.ok;
  }
  const agents = state.processes.filter((p) => p.kind === 'agent');
  const vaults = state.processes.filter((p) => p.kind === 'vault' || p.kind === 'azurite');
  for (const group of [agents, vaults]) {
    const results = await Promise.all(group.map(async (p) => [p, await stopProcess(p.pid, p.dataDir, timeoutMs)] as const));
    for (const [p, r] of results) {
      ctx.out.line(`${p.name}: ${r === 'gone' ? 'not running' : r === 'terminated' ? `stopped (pid ${p.pid})` : `killed after ${timeoutMs / 1000} s (pid ${p.pid})`}`);
    }
  }
  if (values.purge === true) {
    await rm(dir, { recursive: true, force: true });
    ctx.out.line(`lab down; ${dir} removed`);
  } else {
    await writeLabState({ ...state, downAt: new Date().toISOString() });
    ctx.out.line(`lab down; its data stays in ${dir} (\`lifeboat lab up\` resumes it, \`lifeboat lab down --purge\` removes it)`);
  }
  return EXIT.ok;
};

async function requireLab(values: Readonly<Record<string, unknown>>, ctx: CliContext): Promise<{ dir: string; state: LabState }> {
  const dir = path.resolve(ctx.cwd, (values.dir as string | undefined) ?? DEFAULT_LAB_DIR);
  const state = await readLabState(dir);
  if (state === undefined) throw new NotFoundError('lab.notFound', `no lab in ${dir} (${labStateFile(dir)} is missing)`, 'start one with `lifeboat lab up`');
  return { dir, state };
}

async function createDemoVms(labRoot: string, vms: readonly LabVmSpec[], diskBytes: number, rate: number): Promise<void> {
  // Opening the driver would power off VMs an agent left running when it died
  // (and the agent would then not start them again): open it only to create.
  const missing = vms.filter((vm) => !existsSync(path.join(labRoot, 'vms', vm.name, 'vm.json')));
  if (missing.length === 0) return;
  const hv = await LabHypervisor.open({ labRoot });
  try {
    const existing = new Set((await hv.list()).map((v) => v.name));
    for (const vm of vms) {
      if (existing.has(vm.name)) continue;
      await hv.create({
        name: vm.name,
        disks: (vm.disks ?? ['disk0']).map((id) => ({ id, sizeBytes: diskBytes })),
        nics: [{ name: 'nic0', network: vm.network ?? LAB_NETWORK }],
        workload: { seed: vm.seed, pattern: vm.pattern, bytesPerSecond: rate },
        tags: { 'lifeboat.lab.demo': 'true' },
      });
      await hv.start(vm.name);
    }
  } finally {
    // Running VMs are remembered as running: the agent starts them again.
    await hv.close();
  }
}

/** The topology a folder's lab runs: the one it recorded, else the demo's. */
function topologyOf(state: LabState): LabTopology {
  return state.topology ?? DEMO_TOPOLOGY;
}

function vmsOf(topology: LabTopology, host: string): string {
  return (topology.hosts.find((h) => h.name === host)?.vms ?? []).map((v) => v.name).join(', ') || '-';
}

/**
 * The topology for this `up`: from `--protection FILE` when given (merged
 * with what the folder's lab already runs: hosts and VMs the file adds are
 * added, none is removed), else the folder's recorded one, else the demo's.
 */
async function chooseTopology(file: string | undefined, previous: LabState | undefined, ctx: CliContext): Promise<LabTopology> {
  if (file === undefined) return previous === undefined ? DEMO_TOPOLOGY : topologyOf(previous);
  const absolute = path.resolve(ctx.cwd, file);
  const result = await validateProtectionFile(absolute);
  if (result.model === undefined) {
    ctx.out.error(formatProblems(result.problems.map((p) => ({ ...p, file }))));
    throw new InvalidInputError('lab.invalidProtectionFile', `${file}: ${result.problems.length} problem${result.problems.length === 1 ? '' : 's'} (listed above); nothing was started`, {
      where: { file }, hint: `fix them (\`lifeboat validate ${file}\` checks the file alone), then run lab up again`,
    });
  }
  const wanted = topologyFromProtection(result.model, absolute);
  if (previous === undefined) return wanted;
  const current = topologyOf(previous);
  if (current.protectionFile === undefined || current.vault.name.toLowerCase() !== wanted.vault.name.toLowerCase()) {
    throw new InvalidInputError('lab.topologyMismatch', `the lab in ${previous.dir} runs ${current.protectionFile === undefined ? 'the demo topology' : `vault '${current.vault.name}' (from ${current.protectionFile})`}, not vault '${wanted.vault.name}' of ${file}`, {
      where: { file }, hint: `use another folder (--dir), or remove this lab first: lifeboat lab down --purge --dir ${previous.dir}`,
    });
  }
  // A VM is its site's: one the lab already runs stays on its host wherever the file's round robin would put it now.
  const key = (site: string, vm: string): string => `${site.toLowerCase()}/${vm.toLowerCase()}`;
  const present = new Set(current.hosts.flatMap((h) => h.vms.map((v) => key(h.site, v.name))));
  const hosts = new Map<string, LabHostSpec>(current.hosts.map((h) => [h.name.toLowerCase(), h]));
  for (const h of wanted.hosts) {
    const added = h.vms.filter((v) => !present.has(key(h.site, v.name)));
    const had = hosts.get(h.name.toLowerCase());
    hosts.set(h.name.toLowerCase(), had === undefined ? { ...h, vms: added } : { ...had, vms: [...had.vms, ...added] });
  }
  const sites = [...current.sites, ...wanted.sites.filter((s) => !current.sites.some((c) => c.name.toLowerCase() === s.name.toLowerCase()))];
  return { ...current, sites, hosts: [...hosts.values()], protectionFile: absolute };
}

/**
 * The demo lab PUTs its vault, sites, policy and network mapping at every `up`; a protection
 * lab creates its vault and sites only when absent (the stack adopts them
 * and may change them afterwards).
 */
async function configureVault(client: VaultClient, topology: LabTopology): Promise<void> {
  const vault = topology.vault.name;
  if (topology.objects === 'converge') {
    await client.putVault(vault, topology.vault.spec);
    for (const s of topology.sites) await client.putObject(vault, 'sites', s.name, s.spec);
    for (const p of topology.policies) await client.putObject(vault, 'replicationPolicies', p.name, p.spec);
    for (const m of topology.networkMappings ?? []) await client.putObject(vault, 'networkMappings', m.name, m.spec);
    return;
  }
  if (!(await exists(() => client.getVault(vault)))) await client.putVault(vault, topology.vault.spec);
  for (const s of topology.sites) {
    if (!(await exists(() => client.getObject(vault, 'sites', s.name)))) await client.putObject(vault, 'sites', s.name, s.spec);
  }
}

async function exists(get: () => Promise<unknown>): Promise<boolean> {
  try {
    await get();
    return true;
  } catch (e) {
    if (e instanceof VaultApiError && e.status === 404) return false;
    throw e;
  }
}

/** Read the vault's log from `from` until it says where it listens. */
async function waitForListening(log: string, from: number, pid: number, dataDir: string, deadline: number): Promise<string> {
  let url: string | undefined;
  await waitFor('the vault to listen', deadline, async () => {
    const text = (await readFile(log, 'utf8')).slice(from);
    url = /vault listening on (\S+)/.exec(text)?.[1];
    if (url === undefined && !isAlive(pid, dataDir)) {
      throw new LifeboatError('lab.processDied', 'nonRecoverable', `the vault (pid ${pid}) stopped during start-up: ${text.trim().split('\n').slice(-3).join(' | ')}`, { hint: `see ${log}` });
    }
    return url !== undefined;
  });
  return url!;
}

async function waitFor(what: string, deadline: number, check: () => Promise<boolean>): Promise<void> {
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) {
      throw new LifeboatError('lab.timeout', 'recoverable', `timed out waiting for ${what}`, { hint: 'see the logs in the lab folder\'s logs/; `lifeboat lab status` shows what runs' });
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function sizeOf(file: string): Promise<number> {
  try {
    return (await stat(file)).size;
  } catch {
    return 0;
  }
}
