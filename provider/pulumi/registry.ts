/**
 * The providers' code as the dynamic-provider process loads it. The
 * serialised provider in a stack's state only names a resource kind and
 * requires this module (serializable-provider.ts), so every call, including
 * `read` and `delete` of old state, runs the installed package's code, with
 * the connection read at that moment.
 */

import * as pulumi from '@pulumi/pulumi';
import { isAuthError, isUnreachable } from '../client';
import { systemClock } from '../clock';
import { LifeboatError } from '../errors';
import { resolveConnection } from './connection';
import { engineError } from './engine-error';
import { objectProvider } from './object-provider';
import { KINDS, type ResourceKind } from './kinds';
import { type ProviderContext } from './provider-context';
import { protectedVmProvider } from './protected-vm-provider';
import { recoveryPlanProvider } from './recovery-plan-provider';
import { testFailoverProvider } from './test-failover-provider';
import { type Props } from './props';
import { vaultProvider } from './vault-provider';

/** The stack config as the `configure` hook gave it. */
interface StackConfig {
  get(key: string): string | undefined;
}

let stackConfig: StackConfig | undefined;

/** Keep the stack config for the calls of this process (the `configure` hook). Idempotent. */
export function configure(config: StackConfig): void {
  stackConfig = config;
}

/** The context of a call now: this process's environment and stack config, the engine log, the system clock. */
export function currentContext(): ProviderContext {
  return {
    sources: { env: process.env, config: (key) => stackConfig?.get(key) },
    log: (message) => pulumi.log.info(message),
    clock: systemClock,
    pollMs: 1000,
  };
}

/** The provider of a kind for a context (tests pass theirs). Errors are Lifeboat errors. */
export function providerOf(kind: ResourceKind, ctx: ProviderContext): pulumi.dynamic.ResourceProvider<Props, Props> {
  switch (kind) {
    case 'vault': return vaultProvider(ctx);
    case 'protectedVm': return protectedVmProvider(ctx);
    case 'recoveryPlan': return recoveryPlanProvider(ctx);
    case 'testFailover': return testFailoverProvider(ctx);
    default: return objectProvider(KINDS[kind], ctx);
  }
}

/** An auth or transport failure restated with what to set. */
function withConnectionHint(e: unknown, ctx: ProviderContext): unknown {
  if (!isAuthError(e) && !isUnreachable(e)) return e;
  let from = '';
  try {
    const c = resolveConnection(ctx.sources);
    from = isAuthError(e) ? `the admin token from ${c.tokenFrom}` : `the URL ${c.url} from ${c.urlFrom}`;
  } catch {
    return e;
  }
  return isAuthError(e)
    ? new LifeboatError('pulumi.tokenRefused', 'nonRecoverable', `the vault refused ${from}`, { cause: e, hint: 'set lifeboat:token (secret) or lifeboat:tokenFile in the stack config, or LIFEBOAT_TOKEN / LIFEBOAT_TOKEN_FILE, to the vault\'s admin token' })
    : new LifeboatError('pulumi.vaultUnreachable', 'recoverable', `cannot reach the vault at ${from}`, { cause: e, hint: 'check that the vault runs; set lifeboat:vaultUrl or LIFEBOAT_VAULT_URL to its URL' });
}

/**
 * The provider the engine calls for a kind: the current context, and errors
 * turned into the engine's (full text; id and outputs for partial state).
 */
export function engineProvider(kind: ResourceKind): pulumi.dynamic.ResourceProvider<Props, Props> {
  const ctx = currentContext();
  const p = providerOf(kind, ctx);
  const wrap = <A extends unknown[], R>(f: ((...args: A) => Promise<R>) | undefined): ((...args: A) => Promise<R>) => async (...args: A) => {
    if (f === undefined) throw new LifeboatError('pulumi.notImplemented', 'bug', `${kind}: method missing`);
    try {
      return await f(...args);
    } catch (e) {
      throw engineError(withConnectionHint(e, ctx));
    }
  };
  return {
    check: wrap(p.check),
    diff: wrap(p.diff),
    create: wrap(p.create),
    read: wrap(p.read),
    update: wrap(p.update),
    delete: wrap(p.delete),
  };
}
