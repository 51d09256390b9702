/**
 * Commands the agent has taken and not yet finished reporting, one file each
 * in `<data-dir>/commands/` (docs/agent.md §5). A restarted agent runs them
 * again at once and reports on them, instead of waiting for the vault to
 * deliver them again when their lease expires (a minute by default): after
 * a crash during initial replication the job sees progress within seconds.
 * Running a command again is safe because every handler is idempotent.
 */

import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { writeFileAtomic } from './agent-files';
import { type AgentCommand } from './vault-channel';

/** Where the runner keeps its commands. */
export interface CommandJournal {
  /** Record a command before running it. */
  save(command: AgentCommand): Promise<void>;
  /** Forget a command whose final report the vault has. Idempotent. */
  remove(id: string): Promise<void>;
  /** Every recorded command, oldest first. Unreadable files are skipped (and removed). */
  list(): Promise<AgentCommand[]>;
}

/** A journal in a folder (created on first save). */
export function fileCommandJournal(dir: string): CommandJournal {
  const file = (id: string): string => path.join(dir, `${id.replace(/[^A-Za-z0-9._-]/g, '_')}.json`);
  return {
    async save(command) {
      await fs.mkdir(dir, { recursive: true, mode: 0o700 });
      await writeFileAtomic(file(command.id), JSON.stringify(command), 0o600);
    },
    async remove(id) {
      await fs.rm(file(id), { force: true });
    },
    async list() {
      let names: string[];
      try {
        names = (await fs.readdir(dir)).filter((n) => n.endsWith('.json'));
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
        throw e;
      }
      const out: AgentCommand[] = [];
      for (const n of names) {
        try {
          const c = JSON.parse(await fs.readFile(path.join(dir, n), 'utf8')) as AgentCommand;
          if (typeof c.id === 'string' && typeof c.type === 'string' && typeof c.payload === 'object' && c.payload !== null) out.push(c);
          else await fs.rm(path.join(dir, n), { force: true });
        } catch {
          // A torn write of a command the vault will deliver again anyway.
          await fs.rm(path.join(dir, n), { force: true });
        }
      }
      return out.sort((a, b) => a.createdAt.localeCompare(b.createdAt));
    },
  };
}

/** A journal that keeps nothing (tests, or an agent without a data folder). */
export const noCommandJournal: CommandJournal = {
  save: async () => undefined,
  remove: async () => undefined,
  list: async () => [],
};
