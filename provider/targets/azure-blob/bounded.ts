/** Run `jobs` with at most `limit` in flight; rejects with the first failure after all settled. */
export async function bounded(limit: number, jobs: ReadonlyArray<() => Promise<void>>): Promise<void> {
  let next = 0;
  let failure: unknown;
  const worker = async (): Promise<void> => {
    while (next < jobs.length && failure === undefined) {
      const job = jobs[next++]!;
      try {
        await job();
      } catch (e) {
        failure ??= e;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, jobs.length)) }, worker));
  if (failure !== undefined) throw failure;
}
