import { readlinkSync } from 'node:fs';
import { setPriority } from 'node:os';

/**
 * Lowers the calling thread's scheduling priority to `nice` (Linux: a thread
 * id is a valid target of setpriority, and /proc/thread-self names it), so the
 * thread takes only what the event loop and the inference workers leave.
 * Returns whether it could; elsewhere, or where it is not allowed, the thread
 * keeps the process's priority.
 */
export function lowerThreadPriority(nice: number): boolean {
  try {
    const tid = Number(readlinkSync('/proc/thread-self').split('/').pop());
    if (!Number.isInteger(tid)) return false;
    setPriority(tid, nice);
    return true;
  } catch {
    return false;
  }
}

/** The same, as source for a worker thread that is evaluated from a string (CommonJS, no TypeScript). */
export function lowerThreadPrioritySource(nice: number): string {
  return `try {
  const tid = Number(require('node:fs').readlinkSync('/proc/thread-self').split('/').pop());
  if (Number.isInteger(tid)) require('node:os').setPriority(tid, ${Math.round(nice)});
} catch {}`;
}
