/**
 * `Echo`: a resource that stores what it is given and nothing else. It proves
 * that a stack can reach Lifeboat's dynamic providers: the engine, the Node.js
 * language host and the dynamic-provider plugin all work together. The smoke
 * test and `npm run demo` (until the lab exists) use it.
 */
import type * as nodeCrypto from 'node:crypto';
import * as pulumi from '@pulumi/pulumi';

export interface EchoArgs {
  /** Text to store; changing it updates the resource in place. */
  readonly message: pulumi.Input<string>;
  /** Identity of the echo; changing it replaces the resource. @default "echo" */
  readonly tag?: pulumi.Input<string>;
}

/** Inputs as the provider sees them, after Pulumi resolved them. */
interface EchoInputs {
  readonly message: string;
  readonly tag: string;
}

/** Outputs: the inputs plus how many times the resource was written. */
interface EchoOutputs extends EchoInputs {
  readonly revision: number;
}

// The provider is serialised into the stack's state as a closure: it captures
// nothing from this module and requires what it needs inside each method.
const echoProvider: pulumi.dynamic.ResourceProvider = {
  async check(_olds: EchoInputs, news: EchoInputs) {
    const failures: pulumi.dynamic.CheckFailure[] = [];
    if (typeof news.message !== 'string') failures.push({ property: 'message', reason: 'message must be a string' });
    return { inputs: { message: news.message, tag: news.tag ?? 'echo' }, failures };
  },
  async diff(_id: string, olds: EchoOutputs, news: EchoInputs) {
    const replaces = olds.tag === news.tag ? [] : ['tag'];
    const changes = replaces.length > 0 || olds.message !== news.message;
    return { changes, replaces, deleteBeforeReplace: false };
  },
  async create(inputs: EchoInputs) {
    const { randomUUID } = require('node:crypto') as typeof nodeCrypto;
    const outs: EchoOutputs = { ...inputs, revision: 1 };
    return { id: `echo-${randomUUID()}`, outs };
  },
  async read(id: string, props: EchoOutputs) {
    return { id, props };
  },
  async update(_id: string, olds: EchoOutputs, news: EchoInputs) {
    const outs: EchoOutputs = { ...news, revision: olds.revision + 1 };
    return { outs };
  },
  async delete() {
    // Nothing exists outside the state.
  },
};

export class Echo extends pulumi.dynamic.Resource {
  declare readonly message: pulumi.Output<string>;
  declare readonly tag: pulumi.Output<string>;
  declare readonly revision: pulumi.Output<number>;

  constructor(name: string, args: EchoArgs, opts?: pulumi.CustomResourceOptions) {
    super(echoProvider, name, { revision: undefined, ...args }, opts, 'lifeboat', 'Echo');
  }
}
