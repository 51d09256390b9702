/**
 * The `lifeboat` command (docs/operations.md): parses the command words,
 * runs the command, prints errors as "what, where, what to do" and exits
 * with the documented codes (exit-codes.ts). Runnable as `node
 * dist/provider/cli/main.js …` (bin/lifeboat).
 */

import { type CliContext, type Command } from './command';
import { EXIT, exitCodeOf, UsageError } from './exit-codes';
import { errorText, processOutput } from './output';
import { SERVING } from './serving';

// Loaded on first use: `lifeboat status` need not load the replication stack.
const COMMANDS: Readonly<Record<string, () => Promise<Command>>> = {
  'vault serve': async () => (await import('./commands/vault-serve')).vaultServe,
  'agent run': async () => (await import('./commands/agent')).agentRun,
  'agent status': async () => (await import('./commands/agent')).agentStatus,
  'agent vm': async () => (await import('./commands/agent')).agentVm,
  'lab up': async () => (await import('./commands/lab')).labUp,
  'lab status': async () => (await import('./commands/lab')).labStatus,
  'lab down': async () => (await import('./commands/lab')).labDown,
  status: async () => (await import('./commands/operator')).status,
  vms: async () => (await import('./commands/operator')).vms,
  jobs: async () => (await import('./commands/jobs')).jobs,
  'recovery-points': async () => (await import('./commands/operator')).recoveryPoints,
  resync: async () => (await import('./commands/operator')).resync,
  validate: async () => (await import('./commands/validate')).validate,
  failover: async () => (await import('./commands/failover')).failover,
  commit: async () => (await import('./commands/failover')).commit,
  'test-cleanup': async () => (await import('./commands/failover')).testCleanup,
  reprotect: async () => (await import('./commands/failover')).reprotect,
  failback: async () => (await import('./commands/failover')).failback,
  'cancel-failover': async () => (await import('./commands/failover')).cancelFailover,
};

export const USAGE = `usage: lifeboat COMMAND [options]

Operators (find the vault through --vault URL --token-file FILE, LIFEBOAT_VAULT_URL and
LIFEBOAT_TOKEN_FILE, or the lab in ./.lab; --output json for scripts):
  status                       the vault, its hosts, protected items and active jobs
  vms                          every VM the hosts report, with its protection
  jobs [ID] [--watch]          the latest jobs, one job's steps, or follow jobs to their end
  jobs show|ack|resume|cancel JOB [--comment TEXT]
                               a job in full; acknowledge a plan's manual action; resume a
                               plan stopped at a failure; cancel
  recovery-points ITEM         an item's retained recovery points
  resync ITEM [--wait]         start a resynchronisation of an item
  failover ITEM|--plan PLAN --type test|planned|unplanned [--point latest|latestAppConsistent|TIME]
           [--direction toRecovery|toPrimary] [--expires-after DURATION] [--check-data]
                               fail an item or a recovery plan over (follows the job; --detach
                               returns at once); --check-data compares each test VM's disks
                               with the point
  commit ITEM|--plan PLAN      commit a failover: its point becomes the only one
  cancel-failover ITEM         discard an uncommitted failover: back to the source VM, then a resync
  test-cleanup ITEM|--plan PLAN  remove the test-failover VMs
  reprotect ITEM|--plan PLAN   reverse replication after a committed failover
  failback ITEM|--plan PLAN [--host HOST]
                               planned failover back, commit and reprotect: the original
                               direction (--host: an azure item to another host of its site)

Protection files (no vault needed):
  validate FILE [--output json]  check a protection file as loadProtection does; exit 1 on problems

Processes:
  vault serve --data-dir DIR [--host A] [--port N]
  agent run --vault URL --vault-name NAME --registration-key-file FILE --site S --name HOST --data-dir DIR [--role primary|recovery]
  agent status (--data-dir DIR | --host NAME)
  agent vm start|shutdown VM (--data-dir DIR | --host NAME) [--turn-off]

The local lab (a vault, two primary hosts, a recovery host, demo VMs, on loopback):
  lab up [--dir DIR]           start it (default folder ./.lab); prints the endpoint and the token file
  lab up --protection FILE     a lab shaped by a protection file: its vault, sites, hosts and VMs
  lab status [--dir DIR]       its processes and the vault's health
  lab down [--dir DIR] [--purge]

Exit codes: 0 done, 1 failed, 2 usage error, 3 vault unreachable, 4 not found, 5 authentication refused.
See docs/operations.md.`;

/**
 * Run one command line; resolves with the exit code, or `SERVING` for a
 * command that keeps the process alive. Never throws.
 */
export async function main(argv: readonly string[], ctx: CliContext): Promise<number> {
  if (argv.length === 0 || argv[0] === 'help' || argv[0] === '--help' || argv[0] === '-h') {
    ctx.out.line(USAGE);
    return argv.length === 0 ? EXIT.usage : EXIT.ok;
  }
  const two = `${argv[0]} ${argv[1] ?? ''}`;
  const [name, rest] = COMMANDS[two] !== undefined ? [two, argv.slice(2)] : [argv[0]!, argv.slice(1)];
  const load = COMMANDS[name];
  try {
    if (load === undefined) {
      const group = Object.keys(COMMANDS).filter((k) => k.startsWith(`${argv[0]} `));
      throw new UsageError(
        group.length > 0 ? `${argv[0]} needs a subcommand: ${group.map((g) => g.split(' ')[1]).join(', ')}` : `unknown command ${argv[0]}`,
        'run `lifeboat help` for the commands',
      );
    }
    return await (await load())(rest, ctx);
  } catch (e) {
    ctx.out.error(errorText(e));
    return exitCodeOf(e);
  }
}

/** Run the process's command line and exit with its code (bin/lifeboat calls this). */
export function runCli(): void {
  const controller = new AbortController();
  const ctx: CliContext = { out: processOutput(), env: process.env, cwd: process.cwd(), signal: controller.signal };
  const onInt = (): void => controller.abort();
  process.on('SIGINT', onInt);
  // A closed pipe (`lifeboat jobs | head`) ends the command quietly.
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(process.exitCode ?? EXIT.ok);
  });
  void main(process.argv.slice(2), ctx).then((code) => {
    if (code === SERVING) {
      process.off('SIGINT', onInt);
      return;
    }
    process.exitCode = controller.signal.aborted && code === EXIT.ok ? EXIT.interrupted : code;
    // Let stdout drain, then leave even if a socket lingers.
    setImmediate(() => process.exit());
  });
}

if (require.main === module) runCli();
