// Plain JavaScript (with thread-priority.d.mts for TypeScript callers): a
// thread entry (*.mjs) lowers its priority with it before it registers the
// TypeScript loader, because the loader's hooks thread, which compiles every
// module the thread imports, is created by that call and takes the nice value
// of the thread that creates it.
import { readlinkSync } from 'node:fs';
import { setPriority } from 'node:os';

/**
 * Lowers the calling thread's scheduling priority to `nice` (Linux: a thread
 * id is a valid target of setpriority, and /proc/thread-self names it), so the
 * thread, and the threads it starts after, take only what the event loop and
 * the inference workers leave. Returns whether it could; elsewhere, or where
 * it is not allowed, the thread keeps the process's priority.
 *
 * @param {number} nice
 * @returns {boolean}
 */
export function lowerThreadPriority(nice) {
  try {
    const tid = Number(readlinkSync('/proc/thread-self').split('/').pop());
    if (!Number.isInteger(tid)) return false;
    setPriority(tid, nice);
    return true;
  } catch {
    return false;
  }
}
