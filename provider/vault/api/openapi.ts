/**
 * The OpenAPI 3.1 document of the vault API, generated from the route table
 * and the JSON Schemas of schemas/ (OpenAPI 3.1 uses JSON Schema 2020-12, so
 * the request schemas go in unchanged but for their `$ref`s, rewritten to
 * point into `components/schemas`). The response shapes are defined here.
 */

import type { JsonSchema, SchemaRegistry } from '../../validation/schemas';
import type { Route } from './route';

type Doc = Record<string, unknown>;

/** Component name of a schema file: its title (`Site`), `Common` for common.schema.json. */
function componentName(file: string, doc: JsonSchema): string {
  if (file === 'common.schema.json') return 'Common';
  return String(doc.title ?? file.replace(/\.schema\.json$/, ''));
}

function rewriteRefs(value: unknown, self: string, names: ReadonlyMap<string, string>): unknown {
  if (Array.isArray(value)) return value.map((v) => rewriteRefs(v, self, names));
  if (typeof value !== 'object' || value === null) return value;
  const out: Doc = {};
  for (const [k, v] of Object.entries(value)) {
    if (k === '$id' || k === '$schema') continue;
    if (k === '$ref' && typeof v === 'string') {
      const hash = v.indexOf('#');
      const file = hash < 0 ? v : v.slice(0, hash);
      const fragment = hash < 0 ? '' : v.slice(hash + 1);
      const target = file === '' ? self : names.get(file) ?? file;
      out[k] = `#/components/schemas/${target}${fragment}`;
    } else {
      out[k] = rewriteRefs(v, self, names);
    }
  }
  return out;
}

const isoTime = { type: 'string', format: 'date-time' };
const error = {
  type: 'object',
  required: ['error'],
  properties: {
    error: {
      type: 'object',
      required: ['code', 'message', 'details'],
      properties: {
        code: { type: 'string', description: 'Stable dotted code, e.g. `request.invalid`, `object.inUse`, `auth.tokenInvalid`.' },
        message: { type: 'string', description: 'What went wrong, for people.' },
        hint: { type: 'string', description: 'What to do next.' },
        details: {
          type: 'array',
          description: 'One entry per bad field.',
          items: {
            type: 'object',
            required: ['path', 'message'],
            properties: {
              path: { type: 'string', description: 'JSON Pointer of the bad value in the body (`/associations/0/target`); `{name}` for a path parameter, `?name` for a query parameter.' },
              message: { type: 'string' },
              allowed: { type: 'array', description: 'The valid values, when they can be listed.' },
              expected: { type: 'string', description: 'What a valid value looks like, when it cannot be listed.' },
            },
          },
        },
        usedBy: { type: 'array', description: 'For object.inUse: the objects that refer to it.', items: { type: 'object', properties: { kind: { type: 'string' }, name: { type: 'string' } } } },
        job: { type: 'string', description: 'For job conflicts: the id of the job concerned.' },
      },
    },
  },
};

function envelope(kind: string, spec: Doc): Doc {
  return {
    type: 'object',
    required: ['kind', 'vault', 'name', 'uid', 'generation', 'spec', 'status', 'createdAt', 'updatedAt'],
    properties: {
      kind: { const: kind },
      vault: { type: 'string', description: 'Name of the vault.' },
      name: { type: 'string' },
      uid: { type: 'string', description: 'Unique for the life of the object; a re-created object gets a new one.' },
      generation: { type: 'integer', minimum: 1, description: 'Bumped by every change of the spec (not by the same body again, nor by status changes). Sent as ETag; If-Match accepts it.' },
      spec,
      status: { type: 'object', description: 'What the vault observed; written by the vault only.' },
      createdAt: isoTime,
      updatedAt: isoTime,
    },
  };
}

function list(item: Doc): Doc {
  return { type: 'object', required: ['items'], properties: { items: { type: 'array', items: item } } };
}

const job = {
  type: 'object',
  required: ['id', 'vault', 'type', 'target', 'state', 'progress', 'steps', 'errors', 'createdAt', 'updatedAt', 'cancelRequested'],
  properties: {
    id: { type: 'string' },
    vault: { type: 'string' },
    type: { type: 'string', description: '`noun.verb`: protection.enable, protection.disable, protection.update, resync.run, failover.*, protection.reprotect, plan.failover, plan.commit, plan.testCleanup, plan.reprotect (docs/jobs.md).' },
    target: { type: 'object', properties: { kind: { type: 'string' }, name: { type: 'string' } } },
    state: { enum: ['NotStarted', 'InProgress', 'WaitingForAction', 'Succeeded', 'Failed', 'Cancelling', 'Cancelled'] },
    progress: { type: 'number', minimum: 0, maximum: 100 },
    message: { type: 'string', description: 'What the current step is doing.' },
    createdAt: isoTime, startedAt: isoTime, endedAt: isoTime, updatedAt: isoTime,
    cancelRequested: { type: 'boolean' },
    steps: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          name: { type: 'string' }, title: { type: 'string' },
          state: { enum: ['NotStarted', 'InProgress', 'Succeeded', 'Failed', 'Skipped', 'Cancelled'] },
          progress: { type: 'number' }, message: { type: 'string' }, startedAt: isoTime, endedAt: isoTime,
          attempts: { type: 'integer', description: 'Runs of the step (more after retries or a vault restart).' },
        },
      },
    },
    errors: {
      type: 'array',
      items: { type: 'object', properties: { code: { type: 'string' }, category: { type: 'string' }, message: { type: 'string' }, hint: { type: 'string' }, step: { type: 'string' }, at: isoTime } },
    },
    retry: { type: 'object', description: 'Back-off of the current step after recoverable failures.', properties: { step: { type: 'string' }, failures: { type: 'integer' }, firstFailureAt: isoTime, nextAttemptAt: isoTime } },
    stuck: { type: 'object', description: 'Retrying makes no progress: why, and what to do.', properties: { since: isoTime, reason: { type: 'string' }, hint: { type: 'string' } } },
    input: { type: 'object' },
    commands: { type: 'array', description: 'With ?commands=true: the commands the job sent.', items: { type: 'object' } },
    plan: {
      type: 'object',
      description: 'Recovery plan jobs: the plan\'s groups in order, each with its actions (phase, kind, state, attempts, exitCode, timedOut, output tail, times) and VMs (item, child job, state, point {id, time, kind}, startedAt, runningAt); docs/recovery-plans.md §3.',
      properties: {
        plan: { type: 'string' }, operation: { enum: ['failover', 'commit', 'testCleanup', 'reprotect'] }, type: { enum: ['test', 'planned', 'unplanned'] },
        direction: { enum: ['toRecovery', 'toPrimary'] }, point: { type: 'string' }, groups: { type: 'array', items: { type: 'object' } },
      },
    },
    waiting: {
      type: 'object',
      description: 'While WaitingForAction: what the job waits on: an acknowledgement of a manual action (POST …/jobs/{id}/ack) or resume after a failure (POST …/jobs/{id}/resume); docs/recovery-plans.md §4, §6.',
      properties: { kind: { enum: ['acknowledgement', 'resume'] }, message: { type: 'string' }, since: isoTime, group: { type: 'string' } },
    },
  },
};

const command = {
  type: 'object',
  required: ['id', 'type', 'payload', 'state', 'deliveries', 'createdAt'],
  properties: {
    id: { type: 'string', description: 'Stable across redeliveries: a command seen before is the same command.' },
    type: { type: 'string', description: 'replica.create, replication.enable, replication.start, replica.configure, replication.configure, replication.disable, replica.delete, replica.release, resync.run (docs/vault-api.md).' },
    jobId: { type: 'string' },
    payload: { type: 'object' },
    state: { enum: ['Pending', 'Delivered', 'Running', 'Succeeded', 'Failed', 'Cancelled'] },
    deliveries: { type: 'integer' },
    leaseExpiresAt: { ...isoTime, description: 'Acknowledge or report before this, or the command is delivered again.' },
    createdAt: isoTime,
  },
};

/** Response schemas, by component name. */
function responseSchemas(kinds: readonly { kind: string; component: string }[]): Doc {
  const out: Doc = {
    Error: error,
    Job: job,
    JobList: list({ $ref: '#/components/schemas/Job' }),
    Command: command,
    CommandList: { type: 'object', required: ['commands'], properties: { commands: { type: 'array', items: { $ref: '#/components/schemas/Command' } }, serverTime: isoTime } },
    CommandReportResponse: { type: 'object', properties: { id: { type: 'string' }, state: { type: 'string' }, cancelRequested: { type: 'boolean', description: 'The vault withdrew the command: stop it.' } } },
    RegistrationKey: { type: 'object', properties: { vault: { type: 'string' }, registrationKey: { type: 'string', description: 'Secret.' }, rotatedAt: isoTime } },
    CertificateAuthority: { type: 'object', properties: { vault: { type: 'string' }, certificate: { type: 'string', description: 'PEM.' } } },
    RegistrationResponse: {
      type: 'object',
      properties: {
        vault: { type: 'string' }, hostId: { type: 'string' }, uid: { type: 'string' },
        agentToken: { type: 'string', description: 'Secret; shown once.' },
        certificate: { type: 'string', description: 'PEM, issued by the vault CA.' }, caCertificate: { type: 'string', description: 'PEM.' },
        heartbeatIntervalSeconds: { type: 'number' }, commandLeaseSeconds: { type: 'number' }, serverTime: isoTime,
      },
    },
    HeartbeatResponse: {
      type: 'object',
      properties: {
        heartbeatIntervalSeconds: { type: 'number' }, serverTime: isoTime, pendingCommands: { type: 'integer' }, connectionState: { type: 'string' },
        fence: {
          type: 'array',
          description: 'VMs of this host whose items failed over: keep them fenced, their replication stopped (docs/failover.md §6).',
          items: { type: 'object', properties: { vm: { type: 'string' }, item: { type: 'string' }, itemUid: { type: 'string' }, reason: { type: 'string' } } },
        },
      },
    },
    ReportResponse: {
      type: 'object',
      properties: {
        accepted: { type: 'array', items: { type: 'string' } },
        refused: { type: 'array', items: { type: 'object', properties: { item: { type: 'string' }, code: { type: 'string' }, message: { type: 'string' } } } },
      },
    },
    RecoveryPointList: {
      type: 'object',
      properties: { item: { type: 'string' }, items: { type: 'array', items: { type: 'object', properties: { id: { type: 'string' }, time: isoTime, kind: { enum: ['crashConsistent', 'appConsistent'] } } } } },
    },
    Health: { type: 'object', properties: { status: { const: 'ok' }, version: { type: 'string' } } },
    HostObject: envelope('host', { type: 'object', description: 'What the host registered with.' }),
    HostList: list({ $ref: '#/components/schemas/HostObject' }),
  };
  for (const k of kinds) {
    const Name = k.kind.charAt(0).toUpperCase() + k.kind.slice(1);
    out[`${Name}Object`] = envelope(k.kind, { $ref: `#/components/schemas/${k.component}` });
    out[`${Name}List`] = list({ $ref: `#/components/schemas/${Name}Object` });
  }
  return out;
}

export interface OpenApiOptions {
  readonly version: string;
  /** Base URL of this vault. */
  readonly serverUrl: string;
}

/** The OpenAPI document. Pure: the same routes and schemas give the same document. */
export function buildOpenApi(routes: readonly Route[], registry: SchemaRegistry, options: OpenApiOptions): Doc {
  const names = new Map<string, string>();
  for (const [file, doc] of registry.documents) names.set(file, componentName(file, doc));
  const schemas: Doc = {};
  for (const [file, doc] of registry.documents) schemas[names.get(file)!] = rewriteRefs(doc, names.get(file)!, names);
  const kinds = [
    { kind: 'vault', component: names.get('vault.schema.json')! },
    { kind: 'site', component: names.get('site.schema.json')! },
    { kind: 'replicationPolicy', component: names.get('replication-policy.schema.json')! },
    { kind: 'networkMapping', component: names.get('network-mapping.schema.json')! },
    { kind: 'protectedItem', component: names.get('protected-item.schema.json')! },
    { kind: 'recoveryPlan', component: names.get('recovery-plan.schema.json')! },
  ];
  Object.assign(schemas, responseSchemas(kinds));
  const security: Record<string, Doc[]> = {
    none: [],
    admin: [{ adminToken: [] }],
    agent: [{ agentToken: [] }],
    registrationKey: [{ registrationKey: [] }],
  };
  const paths: Record<string, Doc> = {};
  for (const r of routes) {
    const params = [...r.path.matchAll(/\{(\w+)\}/g)].map((m) => ({ name: m[1], in: 'path', required: true, schema: { type: 'string' } }));
    const query = (r.query ?? []).map((q) => ({ name: q.name, in: 'query', required: false, description: q.description, schema: q.schema }));
    const responses: Doc = {};
    for (const [code, doc] of Object.entries(r.responses)) {
      responses[code] = doc.schema === undefined ? { description: doc.description } : { description: doc.description, content: { 'application/json': { schema: doc.schema } } };
    }
    const operation: Doc = {
      operationId: r.operationId,
      summary: r.summary,
      ...(r.description === undefined ? {} : { description: r.description }),
      tags: [...r.tags],
      security: security[r.auth],
      ...(params.length + query.length === 0 ? {} : { parameters: [...params, ...query] }),
      ...(r.body === undefined ? {} : {
        requestBody: {
          required: r.bodyOptional !== true,
          content: { 'application/json': { schema: { $ref: `#/components/schemas/${names.get(`${r.body}.schema.json`)!}` } } },
        },
      }),
      responses,
    };
    paths[r.path] = { ...(paths[r.path] as Doc | undefined), [r.method.toLowerCase()]: operation };
  }
  return {
    openapi: '3.1.0',
    jsonSchemaDialect: 'https://json-schema.org/draft/2020-12/schema',
    info: {
      title: 'Lifeboat vault API',
      version: options.version,
      description: 'Control plane of Lifeboat (site recovery as code): vaults, sites, replication policies, network mappings, protected items, recovery plans, jobs; and the agent endpoints (registration, heartbeat, command long-poll, reports). Errors are `{"error": {"code", "message", "details": [{"path", "message", "allowed"?, "expected"?}], "hint"?}}`. docs/vault-api.md explains the API.',
    },
    servers: [{ url: options.serverUrl }],
    components: {
      securitySchemes: {
        adminToken: { type: 'http', scheme: 'bearer', description: 'The admin token, written at the vault\'s first start to the admin-token file (mode 0600) in its data folder.' },
        agentToken: { type: 'http', scheme: 'bearer', description: 'The agent token a host received when it registered; valid only for that host\'s paths.' },
        registrationKey: { type: 'http', scheme: 'bearer', description: 'The vault registration key (GET /v1/vaults/{vault}/registrationKey).' },
      },
      schemas,
    },
    paths,
  };
}
