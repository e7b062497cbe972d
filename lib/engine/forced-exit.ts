// What still has to happen when the process exits without the orderly end (a second Ctrl-C):
// the commands it started are killed first, then the run lock is released with its quick
// retries, within a bound, so the next operator is not kept waiting for the lease to expire.
const tasks = new Set<() => Promise<void>>();

/** Registers a task for a forced exit; the returned function unregisters it. */
export function onForcedExit(task: () => Promise<void>): () => void {
  tasks.add(task);
  return () => tasks.delete(task);
}

/** Runs the registered tasks, giving up after `withinMs` (the process is leaving). */
export async function runForcedExitTasks(withinMs: number): Promise<void> {
  const all = Promise.all([...tasks].map((task) => task().catch(() => undefined)));
  await Promise.race([all, new Promise((done) => setTimeout(done, withinMs).unref())]);
}
