// Entry of the SQLite writer thread (see sqlite-writer.ts). Threads start
// without the parent's TypeScript loader when the parent is not run through
// tsx (a test runner, say), so the loader is registered here before the
// TypeScript module is imported.
import { register } from 'tsx/esm/api';

register();
await import('./sqlite-writer-thread.ts');
