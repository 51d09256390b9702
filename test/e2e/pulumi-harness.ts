/**
 * Runs real stacks through the Automation API's LocalWorkspace against the real
 * `pulumi` CLI, with a `file://` backend and a PULUMI_HOME in a temp folder, so
 * a test never touches the user's state and needs no network.
 */
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { LocalWorkspace, type Stack } from '@pulumi/pulumi/automation';

export interface TempStack {
  readonly stack: Stack;
  /** Output of every engine call, for assertions and for failure messages. */
  readonly log: string[];
  readonly onOutput: (line: string) => void;
  /** Remove the stack's state and the temp folder. */
  dispose(): Promise<void>;
}

export interface TempStackOptions {
  /** Folder with Pulumi.yaml and the program. */
  readonly workDir: string;
  /** @default "test" */
  readonly stackName?: string;
  /** Extra environment for the engine and the program. @default {} */
  readonly env?: Readonly<Record<string, string>>;
}

/** Destroy what a test's stack still holds (best effort), remove it, then run `andThen` (e.g. take the lab down) whatever happened. */
export async function destroyStack(t: TempStack | undefined, andThen: () => Promise<unknown>): Promise<void> {
  try {
    if (t !== undefined) {
      await t.stack.destroy({ onOutput: t.onOutput }).catch(() => undefined);
      await t.dispose();
    }
  } finally {
    await andThen();
  }
}

/** A fresh stack in a fresh file backend. */
export async function createTempStack(options: TempStackOptions): Promise<TempStack> {
  const root = await fs.mkdtemp(path.join(os.tmpdir(), 'lifeboat-pulumi-'));
  const backend = path.join(root, 'state');
  const home = path.join(root, 'home');
  await fs.mkdir(backend);
  await fs.mkdir(home);
  const envVars: Record<string, string> = {
    PULUMI_BACKEND_URL: `file://${backend}`,
    PULUMI_CONFIG_PASSPHRASE: 'lifeboat-test-passphrase',
    PULUMI_SKIP_UPDATE_CHECK: 'true',
    PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: 'true',
    ...options.env,
  };
  const stack = await LocalWorkspace.createOrSelectStack(
    { stackName: options.stackName ?? 'test', workDir: options.workDir },
    { envVars, pulumiHome: home },
  );
  const log: string[] = [];
  return {
    stack,
    log,
    onOutput: (line) => log.push(line),
    async dispose() {
      try {
        await stack.workspace.removeStack(stack.name, { force: true });
      } finally {
        await fs.rm(root, { recursive: true, force: true });
      }
    },
  };
}
