/**
 * The provider object a resource hands to the Pulumi runtime, which
 * serialises it into the stack's state as a closure (DESIGN.md §6). It
 * captures only two strings, the kind and the path of registry.ts, and
 * requires the registry inside each method: no client, no connection, no
 * secret is serialised, and `read`/`delete` of old state run the installed
 * code. If the recorded path no longer exists (the package moved), the
 * package is looked up from the program's folder instead.
 */

import type * as nodePath from 'node:path';
import type * as pulumi from '@pulumi/pulumi';
import { type ResourceKind } from './kinds';
import type * as registryModule from './registry';

/**
 * Version of the providers' behaviour; a resource records it as its
 * `implVersion` input, so a release that raises it updates every existing
 * resource once (its outputs are recomputed by the new code).
 */
export const IMPL_VERSION = 1;

const REGISTRY_PATH = require.resolve('./registry');

/** The provider of one kind, safe to serialise. */
export function serializableProvider(kind: ResourceKind): pulumi.dynamic.ResourceProvider {
  const registryPath = REGISTRY_PATH;
  const load = (): typeof registryModule => {
    try {
      return require(registryPath) as typeof registryModule;
    } catch {
      const path = require('node:path') as typeof nodePath;
      const root = path.dirname(require.resolve('lifeboat/package.json', { paths: [process.cwd()] }));
      return require(path.join(root, 'dist', 'provider', 'pulumi', 'registry.js')) as typeof registryModule;
    }
  };
  return {
    async configure(req) {
      load().configure(req.config);
    },
    async check(olds, news) {
      return load().engineProvider(kind).check!(olds, news);
    },
    async diff(id, olds, news) {
      return load().engineProvider(kind).diff!(id, olds, news);
    },
    async create(inputs) {
      return load().engineProvider(kind).create(inputs);
    },
    async read(id, props) {
      return load().engineProvider(kind).read!(id, props);
    },
    async update(id, olds, news) {
      return load().engineProvider(kind).update!(id, olds, news);
    },
    async delete(id, props) {
      return load().engineProvider(kind).delete!(id, props);
    },
  };
}
