// Entry of an inference worker thread (see inference-pool.ts). Workers start
// without the parent's TypeScript loader when the parent is not run through
// tsx (a test runner, say), so the loader is registered here before the
// TypeScript module is imported. The background worker lowers its priority
// (workerData.nice, and the SCHED_IDLE policy with workerData.idle) first,
// before it registers the loader: loading the worker's modules (TypeScript
// compiled on the loader's hooks thread, which this thread starts with
// register() and which takes this thread's priority) is a burst of CPU that
// must not take a core from live requests.
import { workerData } from 'node:worker_threads';
import { register } from 'tsx/esm/api';
import { lowerThreadPriority, nameThread } from '../thread-priority.mjs';

if (typeof workerData?.nice === 'number') lowerThreadPriority(workerData.nice, { idle: workerData.idle === true });
register();
// After register(): the loader's hooks thread keeps the name `node`.
if (typeof workerData?.threadName === 'string') nameThread(workerData.threadName);
await import('./inference-worker.ts');
