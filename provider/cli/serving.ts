/**
 * The exit "code" of a command that keeps serving (`vault serve`, `agent
 * run`): main does not exit; the command's own signal handlers end the
 * process.
 */
export const SERVING = -1;
