import type { ChildProcess } from 'node:child_process';

/**
 * Resolves once the server on `port` has warmed its user cache for the version it loaded, so what is
 * measured next is the steady state. Throws if the server process exits first (`logFile` says where
 * its output went). With --user-cache 0 the warm-up finishes at once.
 */
export async function untilUserCacheWarm(server: ChildProcess, port: number, logFile: string): Promise<void> {
  for (;;) {
    if (server.exitCode !== null) throw new Error(`the server exited (code ${server.exitCode}); see ${logFile}`);
    const ready = await fetch(`http://127.0.0.1:${port}/health/ready`)
      .then((r) => r.json() as Promise<{ userCache?: { warmUp?: { version: number | null; finished: boolean } } }>)
      .catch(() => undefined);
    // The warm-up of the loaded version (version null: none has started).
    const warmUp = ready?.userCache?.warmUp;
    if (warmUp && warmUp.version !== null && warmUp.finished) return;
    await new Promise((resolve) => setTimeout(resolve, 300));
  }
}
