/**
 * The examples as a user runs them, each against its own lab: a copy of an
 * example folder in a temporary folder (so a test may edit its files),
 * resolving `lifeboat` and `@pulumi/pulumi` to this checkout through links
 * in the copy's node_modules (what `npm install lifeboat` would give), and a
 * stack on a `file://` backend (pulumi-harness.ts) whose engine and program
 * find the lab's vault through LIFEBOAT_VAULT_URL and LIFEBOAT_TOKEN_FILE.
 */

import { execFile } from 'node:child_process';
import { cp, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { createTempStack, type TempStack } from './pulumi-harness';
import { type CliResult, ROOT } from '../integration/lab/lab-harness';

export const EXAMPLES = path.join(ROOT, 'examples');

export interface ExampleCopy {
  /** The copy's folder (the stack's work dir). */
  readonly dir: string;
  read(file: string): Promise<string>;
  write(file: string, text: string): Promise<void>;
  /** Replace `from` by `to` in `file`; fails if `from` is not there, so a test never edits nothing. */
  edit(file: string, from: string | RegExp, to: string): Promise<void>;
  dispose(): Promise<void>;
}

/** Copy `examples/<name>` (without node_modules, state or stack files) to a temporary folder and link the packages it imports. */
export async function copyExample(name: string): Promise<ExampleCopy> {
  const root = await mkdtemp(path.join(tmpdir(), `lb-example-${name}-`));
  const dir = path.join(root, name);
  await cp(path.join(EXAMPLES, name), dir, {
    recursive: true,
    filter: (src) => !/(^|\/)(node_modules|\.pulumi|\.lab[^/]*|Pulumi\.[^/]+\.yaml)$/.test(path.relative(EXAMPLES, src)),
  });
  // A user's project has its package.json; the engine warns without one.
  await writeFile(path.join(dir, 'package.json'), `${JSON.stringify({ name: `lifeboat-example-${name}`, private: true, dependencies: { lifeboat: '*', '@pulumi/pulumi': '*' } }, null, 2)}\n`);
  await mkdir(path.join(dir, 'node_modules', '@pulumi'), { recursive: true });
  await symlink(ROOT, path.join(dir, 'node_modules', 'lifeboat'), 'dir');
  await symlink(path.join(ROOT, 'node_modules', '@pulumi', 'pulumi'), path.join(dir, 'node_modules', '@pulumi', 'pulumi'), 'dir');
  return {
    dir,
    read: (file) => readFile(path.join(dir, file), 'utf8'),
    write: (file, text) => writeFile(path.join(dir, file), text),
    async edit(file, from, to) {
      const text = await readFile(path.join(dir, file), 'utf8');
      const next = text.replace(from, to);
      if (next === text) throw new Error(`${file} has no ${String(from)} to replace`);
      await writeFile(path.join(dir, file), next);
    },
    dispose: () => rm(root, { recursive: true, force: true }),
  };
}

/** The environment a stack's engine and program need to reach a lab's vault. */
export function labEnv(state: { readonly vaultUrl: string; readonly adminTokenFile: string }): Record<string, string> {
  return { LIFEBOAT_VAULT_URL: state.vaultUrl, LIFEBOAT_TOKEN_FILE: state.adminTokenFile };
}

/** A fresh stack over a copy of an example. */
export async function exampleStack(copy: ExampleCopy, env: Readonly<Record<string, string>>, stackName = 'e2e'): Promise<TempStack> {
  return createTempStack({ workDir: copy.dir, stackName, env });
}

/**
 * The environment of a pipeline step run as a process: the lab's vault,
 * a `file://` backend and PULUMI_HOME under `stateDir`, and a PATH with this
 * checkout's `lifeboat` (bin/), Node and `pulumi` (.tools/bin).
 */
export async function pipelineEnv(stateDir: string, vault: Readonly<Record<string, string>>): Promise<NodeJS.ProcessEnv> {
  await mkdir(path.join(stateDir, 'state'), { recursive: true });
  await mkdir(path.join(stateDir, 'home'), { recursive: true });
  return {
    PATH: [path.join(ROOT, 'bin'), path.join(ROOT, '.tools', 'bin'), path.dirname(process.execPath), path.join(ROOT, 'node_modules', '.bin'), process.env.PATH ?? ''].join(':'),
    HOME: process.env.HOME,
    PULUMI_BACKEND_URL: `file://${path.join(stateDir, 'state')}`,
    PULUMI_HOME: path.join(stateDir, 'home'),
    PULUMI_CONFIG_PASSPHRASE: 'lifeboat-test-passphrase',
    PULUMI_SKIP_UPDATE_CHECK: 'true',
    PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: 'true',
    ...vault,
  };
}

/** Run a program to its end; never rejects (the exit code says how it went). */
export function run(file: string, args: readonly string[], o: { cwd: string; env: NodeJS.ProcessEnv; timeoutMs?: number }): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(file, [...args], { cwd: o.cwd, env: o.env, timeout: o.timeoutMs ?? 180_000, maxBuffer: 32 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1;
      resolve({ code, stdout, stderr });
    });
  });
}
