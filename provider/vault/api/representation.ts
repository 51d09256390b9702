/**
 * How stored records appear in API responses: objects as envelopes
 * (`kind`, `vault`, `name`, `uid`, `generation`, `spec`, `status`, times),
 * jobs and commands with ISO times. Secrets never appear here.
 */

import { iso } from '../control/services';
import type { CommandRecord, JobRecord, JsonObject, StoredObject } from '../store/records';

/** The envelope of a named object. `vaultName` is the vault's display name. */
export function objectJson(o: StoredObject, vaultName: string): JsonObject {
  return {
    kind: o.kind,
    vault: vaultName,
    name: o.name,
    uid: o.uid,
    generation: o.generation,
    spec: o.spec,
    status: o.status,
    createdAt: iso(o.createdAt),
    updatedAt: iso(o.updatedAt),
  };
}

/** A host: its registration spec minus nothing secret (the token is kept only as a hash elsewhere). */
export function hostJson(o: StoredObject, vaultName: string): JsonObject {
  return objectJson(o, vaultName);
}

function opt(ms: number | undefined): string | undefined {
  return ms === undefined ? undefined : iso(ms);
}

/** A job as the API shows it (its handler's scratch data is internal). `vaultName` is the vault's display name. */
export function jobJson(j: JobRecord, vaultName: string): JsonObject {
  const json = {
    id: j.id,
    vault: vaultName,
    type: j.type,
    target: { kind: j.target.kind, name: j.target.name },
    state: j.state,
    progress: j.progress,
    message: j.message,
    createdAt: iso(j.createdAt),
    startedAt: opt(j.startedAt),
    endedAt: opt(j.endedAt),
    updatedAt: iso(j.updatedAt),
    cancelRequested: j.cancelRequested,
    steps: j.steps.map((s) => ({
      name: s.name, title: s.title, state: s.state, progress: s.progress, message: s.message,
      startedAt: opt(s.startedAt), endedAt: opt(s.endedAt), attempts: s.attempts,
    })),
    errors: j.errors.map((e) => ({ ...e, at: iso(e.at) })),
    retry: j.retry === undefined ? undefined : {
      step: j.retry.step, failures: j.retry.failures, firstFailureAt: iso(j.retry.firstFailureAt), nextAttemptAt: iso(j.retry.nextAttemptAt),
    },
    stuck: j.stuck === undefined ? undefined : { since: iso(j.stuck.since), reason: j.stuck.reason, hint: j.stuck.hint },
    input: j.input,
  };
  return JSON.parse(JSON.stringify(json)) as JsonObject;
}

/** A command as an agent receives it. */
export function commandJson(c: CommandRecord): JsonObject {
  return JSON.parse(JSON.stringify({
    id: c.id,
    type: c.type,
    jobId: c.jobId,
    payload: c.payload,
    state: c.state,
    deliveries: c.deliveries,
    leaseExpiresAt: opt(c.leaseExpiresAt),
    createdAt: iso(c.createdAt),
  })) as JsonObject;
}

/** A command as an operator sees it (with progress and outcome). */
export function commandDetailJson(c: CommandRecord): JsonObject {
  return JSON.parse(JSON.stringify({
    ...commandJson(c), host: c.host, progress: c.progress, message: c.message, result: c.result, error: c.error, updatedAt: iso(c.updatedAt),
  })) as JsonObject;
}
