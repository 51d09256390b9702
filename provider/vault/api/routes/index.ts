/** The complete route table of the vault API. */
export { agentRoutes } from './agent-routes';
export { jobRoutes } from './job-routes';
export { objectRoutes } from './object-routes';
export { systemRoutes } from './system-routes';
