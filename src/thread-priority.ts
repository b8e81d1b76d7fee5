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

