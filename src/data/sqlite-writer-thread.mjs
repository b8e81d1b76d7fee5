// Entry of the SQLite writer thread (see sqlite-writer.ts). Threads start
// without the parent's TypeScript loader when the parent is not run through
// tsx (a test runner, say), so the loader is registered here before the
// TypeScript module is imported. The reader lowers its priority before it
// registers the loader, whose hooks thread (compiling the thread's modules)
// takes the priority of the thread that starts it.
import { workerData } from 'node:worker_threads';
import { register } from 'tsx/esm/api';
import { lowerThreadPriority, nameThread } from '../thread-priority.mjs';

if (typeof workerData?.nice === 'number') lowerThreadPriority(workerData.nice);
register();
// After register(): the loader's hooks thread keeps the name `node`.
if (typeof workerData?.threadName === 'string') nameThread(workerData.threadName);
await import('./sqlite-writer-thread.ts');
