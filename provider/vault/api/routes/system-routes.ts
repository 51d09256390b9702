/** Health check and the API description. */

import type { Route } from '../route';
import { buildOpenApi } from '../openapi';
import { errors, ref } from './helpers';

/** `/healthz` (no credentials) and `/openapi.json`; `all` is the complete route table (for the document). */
export function systemRoutes(all: () => readonly Route[]): Route[] {
  return [
    {
      method: 'GET', path: '/healthz', operationId: 'health', summary: 'Liveness (no credentials needed)', tags: ['system'], auth: 'none',
      responses: { 200: { description: 'The vault runs.', schema: ref('Health') } },
      handle: (ctx) => ({ status: 200, body: { status: 'ok', version: ctx.app.version } }),
    },
    {
      method: 'GET', path: '/openapi.json', operationId: 'openapi', summary: 'This API as an OpenAPI 3.1 document', tags: ['system'], auth: 'admin',
      responses: { 200: { description: 'The OpenAPI document.' }, ...errors(401) },
      handle: (ctx) => ({ status: 200, body: buildOpenApi(all(), ctx.app.registry, { version: ctx.app.version, serverUrl: ctx.baseUrl }) }),
    },
  ];
}
