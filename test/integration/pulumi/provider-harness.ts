/**
 * Calls the Lifeboat providers' methods directly, as the dynamic-provider
 * host does, against a real vault: a context whose connection is the test
 * vault's, whose log is recorded, with short polls.
 */

import { systemClock, type Clock } from '../../../provider/clock';
import { type ProviderContext } from '../../../provider/pulumi/provider-context';

export interface TestContext extends ProviderContext {
  readonly messages: string[];
}

export function contextFor(url: string, token: string, options: { clock?: Clock; pollMs?: number; config?: Record<string, string> } = {}): TestContext {
  const messages: string[] = [];
  return {
    sources: { env: { LIFEBOAT_VAULT_URL: url, LIFEBOAT_TOKEN: token }, config: (k) => options.config?.[k] },
    log: (m) => messages.push(m),
    clock: options.clock ?? systemClock,
    pollMs: options.pollMs ?? 100,
    messages,
  };
}

/** Runs `f` and returns what it threw (fails if it did not throw). */
export async function thrown(f: () => Promise<unknown>): Promise<Error & { code?: string; hint?: string; id?: string; properties?: Record<string, unknown> }> {
  try {
    await f();
  } catch (e) {
    return e as Error & { code?: string };
  }
  throw new Error('expected an error, none was thrown');
}
