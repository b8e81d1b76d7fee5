// Entry of an inference worker thread (see inference-pool.ts). Workers start
// without the parent's TypeScript loader when the parent is not run through
// tsx (a test runner, say), so the loader is registered here before the
// TypeScript module is imported. The background worker lowers its priority
// first: loading the worker's modules (TypeScript compiled on the thread) is
// a burst of CPU that must not take a core from live requests.
import { workerData } from 'node:worker_threads';
import { register } from 'tsx/esm/api';

register();
if (workerData?.background === true) {
  const { lowerThreadPriority } = await import('../thread-priority.ts');
  lowerThreadPriority(19);
}
await import('./inference-worker.ts');
