/**
 * `VaultClient`: a small typed client of the vault's REST API
 * (docs/vault-api.md) over Node's `fetch`, with the admin token. Used by the
 * CLI and the Pulumi provider; it holds no state besides its options, so one
 * client may serve any number of concurrent calls.
 *
 * Every method either returns the API's answer or throws: `VaultApiError`
 * for an error answer (with the API's code, field problems and hint),
 * `VaultUnreachableError` or `VaultTimeoutError` for transport failures
 * (client-errors.ts). Nothing is retried here: callers decide, by the
 * error's category.
 */

import { type Clock, systemClock } from '../clock';
import { BugError, LifeboatError } from '../errors';
import { type JobState } from '../states';
import { VaultApiError, VaultTimeoutError, VaultUnreachableError, type FieldProblem } from './client-errors';
import {
  type Collection,
  type DeleteItemResult,
  type FailoverRequest,
  type HostSpec,
  type HostStatus,
  type JobFilter,
  type JobInfo,
  type JsonObject,
  type ObjectEnvelope,
  type PlanFailoverRequest,
  type ProtectedItemSpec,
  type ProtectedItemStatus,
  type RecoveryPlanStatus,
  type RecoveryPoint,
  type VaultHealth,
} from './api-types';

export interface VaultClientOptions {
  /** Base URL of the vault, e.g. `http://127.0.0.1:41234`. A trailing slash is ignored. */
  readonly url: string;
  /** The admin bearer token (`lba_…`). Not needed for `health()`. @default none: every other call gets 401 */
  readonly token?: string;
  /** Limit of each call, in ms. @default 30000 */
  readonly timeoutMs?: number;
  /** The fetch implementation (tests inject faults). @default globalThis.fetch */
  readonly fetch?: typeof fetch;
  /** Time for `waitForJob`'s polls and limit. @default systemClock */
  readonly clock?: Clock;
}

/** Options of one call. */
export interface RequestOptions {
  /** Query parameters; `undefined` values are left out. @default none */
  readonly query?: Readonly<Record<string, string | number | boolean | undefined>>;
  /** Make a PUT or DELETE conditional on the object's generation (`If-Match`). @default unconditional */
  readonly ifMatch?: number;
  /** @default the client's timeout */
  readonly timeoutMs?: number;
  /** Abort the call. @default none */
  readonly signal?: AbortSignal;
}

/** A successful answer. */
export interface ApiResponse<T> {
  readonly status: number;
  readonly body: T;
  readonly headers: Headers;
}

/** Options of `waitForJob`. */
export interface WaitForJobOptions {
  /** Called with the job after every poll. Must not throw. @default none */
  readonly onProgress?: (job: JobInfo) => void;
  /** Time between polls, ms. @default 1000 */
  readonly pollMs?: number;
  /** Give up after this long (throws `client.waitTimeout`, the job keeps running). @default no limit */
  readonly timeoutMs?: number;
  /** Stop waiting (the job keeps running). @default none */
  readonly signal?: AbortSignal;
}

const TERMINAL: readonly JobState[] = ['Succeeded', 'Failed', 'Cancelled'];

/** A typed client of one vault server (any of its vaults). */
export class VaultClient {
  readonly url: string;
  private readonly token: string | undefined;
  private readonly timeoutMs: number;
  private readonly fetchImpl: typeof fetch;
  private readonly clock: Clock;

  constructor(options: VaultClientOptions) {
    this.url = options.url.replace(/\/+$/, '');
    this.token = options.token;
    this.timeoutMs = options.timeoutMs ?? 30_000;
    this.fetchImpl = options.fetch ?? globalThis.fetch;
    this.clock = options.clock ?? systemClock;
  }

  /**
   * One call of the API. Resolves with any 2xx answer (the body parsed, or
   * `undefined` for 204); throws `VaultApiError` for an error answer,
   * `VaultUnreachableError`/`VaultTimeoutError` for transport failures, and
   * `BugError` `client.badResponse` for an answer that is not the API's JSON.
   */
  async request<T>(method: string, path: string, body?: unknown, options: RequestOptions = {}): Promise<ApiResponse<T>> {
    const query = new URLSearchParams();
    for (const [k, v] of Object.entries(options.query ?? {})) if (v !== undefined) query.set(k, String(v));
    const target = `${this.url}${path}${query.size === 0 ? '' : `?${query.toString()}`}`;
    const what = `${method} ${path}`;
    const headers: Record<string, string> = { accept: 'application/json' };
    if (this.token !== undefined) headers.authorization = `Bearer ${this.token}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (options.ifMatch !== undefined) headers['if-match'] = `"${options.ifMatch}"`;
    const timeoutMs = options.timeoutMs ?? this.timeoutMs;
    const timeout = AbortSignal.timeout(timeoutMs);
    const signal = options.signal === undefined ? timeout : AbortSignal.any([timeout, options.signal]);
    let res: Response;
    let text: string;
    try {
      res = await this.fetchImpl(target, { method, headers, signal, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
      text = await res.text();
    } catch (e) {
      if (options.signal?.aborted === true) throw options.signal.reason;
      if (timeout.aborted) throw new VaultTimeoutError(what, timeoutMs);
      throw new VaultUnreachableError(this.url, e);
    }
    let parsed: unknown;
    if (text !== '') {
      try {
        parsed = JSON.parse(text);
      } catch (e) {
        throw new BugError('client.badResponse', `${what}: the answer (HTTP ${res.status}) is not JSON: ${text.slice(0, 120)}`, {
          cause: e,
          hint: `check that ${this.url} is a Lifeboat vault`,
        });
      }
    }
    if (res.status >= 200 && res.status < 300) return { status: res.status, body: parsed as T, headers: res.headers };
    throw apiError(res.status, parsed, what);
  }

  /** `GET /healthz` (no token needed). */
  async health(options?: RequestOptions): Promise<VaultHealth> {
    return (await this.request<VaultHealth>('GET', '/healthz', undefined, options)).body;
  }

  /** The OpenAPI document the vault serves. */
  async openApi(): Promise<JsonObject> {
    return (await this.request<JsonObject>('GET', '/openapi.json')).body;
  }

  // Vaults -----------------------------------------------------------------

  async listVaults(): Promise<readonly ObjectEnvelope[]> {
    return (await this.request<{ items: ObjectEnvelope[] }>('GET', '/v1/vaults')).body.items;
  }

  async getVault(vault: string): Promise<ObjectEnvelope> {
    return (await this.request<ObjectEnvelope>('GET', vaultPath(vault))).body;
  }

  /** Create or update a vault; the same spec again changes nothing (same generation). */
  async putVault(vault: string, spec: JsonObject = {}, options?: RequestOptions): Promise<ObjectEnvelope> {
    return (await this.request<ObjectEnvelope>('PUT', vaultPath(vault), spec, options)).body;
  }

  /** The registration key agents register with. A secret: never print it. */
  async registrationKey(vault: string): Promise<string> {
    return (await this.request<{ registrationKey: string }>('GET', `${vaultPath(vault)}/registrationKey`)).body.registrationKey;
  }

  /** A new registration key; the old one stops working at once. Returns the new key. */
  async rotateRegistrationKey(vault: string): Promise<string> {
    return (await this.request<{ registrationKey: string }>('POST', `${vaultPath(vault)}/registrationKey/rotate`)).body.registrationKey;
  }

  /** The vault CA certificate (PEM). */
  async certificateAuthority(vault: string): Promise<string> {
    return (await this.request<{ certificate: string }>('GET', `${vaultPath(vault)}/certificateAuthority`)).body.certificate;
  }

  // Objects ------------------------------------------------------------------

  async listObjects<Spec = JsonObject, Status = JsonObject>(vault: string, collection: Collection): Promise<readonly ObjectEnvelope<Spec, Status>[]> {
    return (await this.request<{ items: ObjectEnvelope<Spec, Status>[] }>('GET', `${vaultPath(vault)}/${collection}`)).body.items;
  }

  /** Throws `VaultApiError` 404 `object.notFound` when absent. */
  async getObject<Spec = JsonObject, Status = JsonObject>(vault: string, collection: Collection, name: string): Promise<ObjectEnvelope<Spec, Status>> {
    return (await this.request<ObjectEnvelope<Spec, Status>>('GET', objectPath(vault, collection, name))).body;
  }

  /** Create (201) or update (200) by name; idempotent. */
  async putObject<Spec = JsonObject, Status = JsonObject>(vault: string, collection: Exclude<Collection, 'hosts'>, name: string, spec: JsonObject, options?: RequestOptions): Promise<ObjectEnvelope<Spec, Status>> {
    return (await this.request<ObjectEnvelope<Spec, Status>>('PUT', objectPath(vault, collection, name), spec, options)).body;
  }

  /**
   * Delete by name. For objects other than protected items the answer is 204;
   * use `deleteProtectedItem` for items (which starts a job). 409
   * `object.inUse` while other objects refer to it.
   */
  async deleteObject(vault: string, collection: Exclude<Collection, 'protectedItems'>, name: string, options?: RequestOptions): Promise<void> {
    await this.request('DELETE', objectPath(vault, collection, name), undefined, options);
  }

  // Protected items ------------------------------------------------------------

  async listProtectedItems(vault: string): Promise<readonly ObjectEnvelope<ProtectedItemSpec, ProtectedItemStatus>[]> {
    return this.listObjects<ProtectedItemSpec, ProtectedItemStatus>(vault, 'protectedItems');
  }

  async getProtectedItem(vault: string, name: string): Promise<ObjectEnvelope<ProtectedItemSpec, ProtectedItemStatus>> {
    return this.getObject<ProtectedItemSpec, ProtectedItemStatus>(vault, 'protectedItems', name);
  }

  /** PUT an item: a new one starts `protection.enable` (its id in `status.activeJob`). */
  async putProtectedItem(vault: string, name: string, spec: ProtectedItemSpec, options?: RequestOptions): Promise<ObjectEnvelope<ProtectedItemSpec, ProtectedItemStatus>> {
    return this.putObject<ProtectedItemSpec, ProtectedItemStatus>(vault, 'protectedItems', name, spec as unknown as JsonObject, options);
  }

  /**
   * Disable protection: starts `protection.disable` (the job is returned;
   * again while it runs, the same job), or removes a never-protected item at
   * once. `force` skips hosts that are not connected.
   */
  async deleteProtectedItem(vault: string, name: string, options: { readonly force?: boolean } = {}): Promise<DeleteItemResult> {
    const r = await this.request<JobInfo | undefined>('DELETE', objectPath(vault, 'protectedItems', name), undefined, { query: { force: options.force === true ? true : undefined } });
    return r.status === 204 || r.body === undefined ? { removed: true } : { removed: false, job: r.body };
  }

  /** Start `resync.run` for an item (Protected or ResynchronizationRequired); returns the job. */
  async resyncProtectedItem(vault: string, name: string): Promise<JobInfo> {
    return (await this.request<JobInfo>('POST', `${objectPath(vault, 'protectedItems', name)}/resync`)).body;
  }

  /**
   * Start a failover of an item (docs/failover.md §3): `test`, `planned` or
   * `unplanned`; `point` is `latest` (default), `latestAppConsistent` or an
   * ISO time. An unplanned failover of a FailedOver item changes its point.
   * Returns the job. Throws the API's 404 and 409 (`job.inProgress`,
   * `protectedItem.notFailoverable`, `testFailover.exists`) as
   * `VaultApiError`. Not idempotent: each call that is accepted starts a job.
   */
  async failover(vault: string, name: string, request: FailoverRequest): Promise<JobInfo> {
    return (await this.request<JobInfo>('POST', `${objectPath(vault, 'protectedItems', name)}/failover`, request)).body;
  }

  /** Start `failover.cancel` for a FailedOver item; returns the job. 409 `protectedItem.notCancellable` otherwise. */
  async cancelFailover(vault: string, name: string): Promise<JobInfo> {
    return (await this.request<JobInfo>('POST', `${objectPath(vault, 'protectedItems', name)}/cancelFailover`)).body;
  }

  /** Start `failover.commit` for a FailedOver item; returns the job. 409 `protectedItem.notCommittable` otherwise. */
  async commitFailover(vault: string, name: string): Promise<JobInfo> {
    return (await this.request<JobInfo>('POST', `${objectPath(vault, 'protectedItems', name)}/commit`)).body;
  }

  /**
   * Start `protection.reprotect` for a FailoverCommitted item (reverse
   * replication); returns the job. 409 `protectedItem.notReprotectable`
   * otherwise. Failback is `failover(planned)`, `commitFailover` and
   * `reprotect` again on the reprotected item; for an item of an azure policy
   * reprotect is the failback from Azure, to `options.host` (a host of the
   * item's site; @default its source host).
   */
  async reprotect(vault: string, name: string, options: { readonly host?: string } = {}): Promise<JobInfo> {
    return (await this.request<JobInfo>('POST', `${objectPath(vault, 'protectedItems', name)}/reprotect`, options.host === undefined ? undefined : { host: options.host })).body;
  }

  /** Start `failover.testCleanup` for an item with a test VM; returns the job. 409 `testFailover.none` otherwise. */
  async cleanUpTestFailover(vault: string, name: string): Promise<JobInfo> {
    return (await this.request<JobInfo>('POST', `${objectPath(vault, 'protectedItems', name)}/testCleanup`)).body;
  }

  // Recovery plans (docs/recovery-plans.md) ----------------------------------

  /**
   * Start `plan.failover` (test, planned or unplanned; direction derived
   * from the items unless given). Returns the job; its `plan` field lists
   * the groups. Throws the API's 404 and 409 (`job.inProgress`,
   * `plan.mixedLocation`, `plan.itemsNotReady`, `plan.nothingToDo`,
   * `testFailover.exists`) as `VaultApiError`. Not idempotent: each
   * accepted call starts a job (a second one while it runs is 409).
   */
  async failoverPlan(vault: string, plan: string, request: PlanFailoverRequest): Promise<JobInfo> {
    return (await this.request<JobInfo>('POST', `${objectPath(vault, 'recoveryPlans', plan)}/failover`, request)).body;
  }

  /** Start `plan.commit` (every FailedOver item of the plan); returns the job. 409 `plan.nothingToDo` when none is. */
  async commitPlan(vault: string, plan: string): Promise<JobInfo> {
    return (await this.request<JobInfo>('POST', `${objectPath(vault, 'recoveryPlans', plan)}/commit`)).body;
  }

  /** Start `plan.testCleanup` (every test VM of the plan's items); returns the job. 409 `plan.nothingToDo` when there is none. */
  async cleanUpPlanTestFailover(vault: string, plan: string): Promise<JobInfo> {
    return (await this.request<JobInfo>('POST', `${objectPath(vault, 'recoveryPlans', plan)}/testCleanup`)).body;
  }

  /** Start `plan.reprotect` (every FailoverCommitted item of the plan); returns the job. */
  async reprotectPlan(vault: string, plan: string): Promise<JobInfo> {
    return (await this.request<JobInfo>('POST', `${objectPath(vault, 'recoveryPlans', plan)}/reprotect`)).body;
  }

  /** A recovery plan with its status (`activeLocation`, `testFailover`, `activeJob`, `lastJob`). */
  async getRecoveryPlan(vault: string, plan: string): Promise<ObjectEnvelope<JsonObject, RecoveryPlanStatus>> {
    return this.getObject<JsonObject, RecoveryPlanStatus>(vault, 'recoveryPlans', plan);
  }

  /**
   * Acknowledge the manual action a job waits on; returns the job (InProgress
   * again). 409 `job.notWaiting` when it waits on none (also for a second
   * acknowledgement of the same action).
   */
  async ackJob(vault: string, id: string, comment?: string): Promise<JobInfo> {
    return (await this.request<JobInfo>('POST', `${vaultPath(vault)}/jobs/${encodeURIComponent(id)}/ack`, comment === undefined ? {} : { comment })).body;
  }

  /** Resume a plan job stopped at a failure (the failed step runs again); returns the job. 409 `job.notResumable` otherwise. */
  async resumeJob(vault: string, id: string): Promise<JobInfo> {
    return (await this.request<JobInfo>('POST', `${vaultPath(vault)}/jobs/${encodeURIComponent(id)}/resume`)).body;
  }

  /** Retained recovery points of an item, oldest first. */
  async recoveryPoints(vault: string, name: string): Promise<readonly RecoveryPoint[]> {
    return (await this.request<{ items: RecoveryPoint[] }>('GET', `${objectPath(vault, 'protectedItems', name)}/recoveryPoints`)).body.items;
  }

  // Hosts ----------------------------------------------------------------------

  async listHosts(vault: string): Promise<readonly ObjectEnvelope<HostSpec, HostStatus>[]> {
    return this.listObjects<HostSpec, HostStatus>(vault, 'hosts');
  }

  async getHost(vault: string, name: string): Promise<ObjectEnvelope<HostSpec, HostStatus>> {
    return this.getObject<HostSpec, HostStatus>(vault, 'hosts', name);
  }

  // Jobs -------------------------------------------------------------------------

  /** Jobs newest first. */
  async listJobs(vault: string, filter: JobFilter = {}): Promise<readonly JobInfo[]> {
    const query = {
      state: filter.states === undefined ? undefined : filter.states.join(','),
      type: filter.type,
      targetKind: filter.target?.kind,
      targetName: filter.target?.name,
      limit: filter.limit,
    };
    return (await this.request<{ items: JobInfo[] }>('GET', `${vaultPath(vault)}/jobs`, undefined, { query })).body.items;
  }

  /** One job; with `commands`, also the commands it sent to agents. */
  async getJob(vault: string, id: string, options: { readonly commands?: boolean } = {}): Promise<JobInfo> {
    return (await this.request<JobInfo>('GET', `${vaultPath(vault)}/jobs/${encodeURIComponent(id)}`, undefined, { query: { commands: options.commands === true ? true : undefined } })).body;
  }

  /** Request cancellation (409 `job.notCancellable` once finished; twice is harmless). */
  async cancelJob(vault: string, id: string): Promise<JobInfo> {
    return (await this.request<JobInfo>('POST', `${vaultPath(vault)}/jobs/${encodeURIComponent(id)}/cancel`)).body;
  }

  /**
   * Poll a job until it is Succeeded, Failed or Cancelled; resolves with the
   * final job whatever its outcome (the caller reads `state`). Transport
   * errors are retried until `timeoutMs` (the vault may be restarting);
   * API errors (e.g. 404) are thrown. Throws `client.waitTimeout`
   * (recoverable) when the limit passes first; the job keeps running.
   */
  async waitForJob(vault: string, id: string, options: WaitForJobOptions = {}): Promise<JobInfo> {
    const pollMs = options.pollMs ?? 1000;
    const deadline = options.timeoutMs === undefined ? Number.POSITIVE_INFINITY : this.clock.now() + options.timeoutMs;
    let last: JobInfo | undefined;
    for (;;) {
      if (options.signal?.aborted === true) throw options.signal.reason;
      try {
        last = await this.getJob(vault, id);
        options.onProgress?.(last);
        if (TERMINAL.includes(last.state)) return last;
      } catch (e) {
        if (!LifeboatError.isInstance(e) || e.category !== 'recoverable') throw e;
      }
      if (this.clock.now() + pollMs > deadline) {
        throw new LifeboatError('client.waitTimeout', 'recoverable', `job ${id} did not finish in time${last === undefined ? '' : ` (it is ${last.state}, ${last.progress} %)`}`, {
          details: { job: id },
          hint: `the job keeps running; follow it with \`lifeboat jobs --watch\``,
        });
      }
      await this.clock.sleep(pollMs, options.signal);
    }
  }
}

function vaultPath(vault: string): string {
  return `/v1/vaults/${encodeURIComponent(vault)}`;
}

function objectPath(vault: string, collection: Collection, name: string): string {
  return `${vaultPath(vault)}/${collection}/${encodeURIComponent(name)}`;
}

/** The `VaultApiError` of an error answer; tolerant of bodies that are not the API's. */
function apiError(status: number, body: unknown, request: string): VaultApiError {
  const err = typeof body === 'object' && body !== null ? (body as { error?: unknown }).error : undefined;
  if (typeof err !== 'object' || err === null) {
    return new VaultApiError({ status, code: `http.${status}`, message: `${request}: HTTP ${status} without an API error body`, request });
  }
  const { code, message, hint, details, ...extra } = err as Record<string, unknown>;
  const problems: FieldProblem[] = Array.isArray(details)
    ? details.filter((d): d is FieldProblem => typeof d === 'object' && d !== null && typeof (d as FieldProblem).path === 'string')
    : [];
  return new VaultApiError({
    status,
    code: typeof code === 'string' ? code : `http.${status}`,
    message: typeof message === 'string' ? message : `${request}: HTTP ${status}`,
    ...(typeof hint === 'string' ? { hint } : {}),
    problems,
    extra,
    request,
  });
}
