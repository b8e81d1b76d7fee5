// Plain JavaScript (with thread-priority.d.mts for TypeScript callers): a
// thread entry (*.mjs) lowers its priority with it before it registers the
// TypeScript loader, because the loader's hooks thread, which compiles every
// module the thread imports, is created by that call and takes the nice value
// and the scheduling policy of the thread that creates it.
import { execFileSync } from 'node:child_process';
import { readlinkSync, writeFileSync } from 'node:fs';
import { setPriority } from 'node:os';

/**
 * Lowers the calling thread's scheduling priority to `nice` (Linux: a thread
 * id is a valid target of setpriority, and /proc/thread-self names it), so the
 * thread, and the threads it starts after, take only what the event loop and
 * the inference workers leave. Returns whether it could; elsewhere, or where
 * it is not allowed, the thread keeps the process's priority.
 *
 * With `idle`, the thread also moves to Linux's SCHED_IDLE policy (through
 * util-linux's `chrt`, which any user may use to lower a thread of their own):
 * a running nice-19 thread can keep its core for the rest of its time slice
 * when a live thread wakes up, where the kernel preempts a SCHED_IDLE thread
 * at once. The return value says only whether the nice value was set. Measured
 * on this 2-core machine for the background inference worker during the
 * user-cache warm-up after a start (docs/serving-performance.md, "The
 * warm-up on idle time only"). Without `chrt` the nice value alone applies.
 *
 * @param {number} nice
 * @param {{ idle?: boolean }} [options]
 * @returns {boolean}
 */
export function lowerThreadPriority(nice, options = {}) {
  let tid;
  try {
    tid = Number(readlinkSync('/proc/thread-self').split('/').pop());
    if (!Number.isInteger(tid)) return false;
    setPriority(tid, nice);
  } catch {
    return false;
  }
  if (options.idle) {
    try {
      execFileSync('chrt', ['--idle', '--pid', '0', String(tid)], { stdio: 'ignore', timeout: 5_000 });
    } catch {
      // No chrt (or not allowed): the nice value stays.
    }
  }
  return true;
}

/**
 * Names the calling thread (Linux: /proc/thread-self/comm, at most 15 bytes),
 * so `top -H`, `ps -L` and a benchmark reading /proc/<pid>/task tell the
 * API's threads apart: every thread of a Node process is called `node`
 * otherwise. Threads the caller starts afterwards take the name too, so an
 * entry names its thread after it has started the loader's hooks thread.
 * Returns whether it could.
 *
 * @param {string} name
 * @returns {boolean}
 */
export function nameThread(name) {
  try {
    writeFileSync('/proc/thread-self/comm', name.slice(0, 15));
    return true;
  } catch {
    return false;
  }
}
