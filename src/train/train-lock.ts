import { linkSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { AppError } from '../errors.js';

const LOCK_FILE = 'train.lock';

/**
 * Takes the training lock of a version's artifact folder, so that two
 * processes never train the same version (a second --resume while the first
 * still runs is refused with TRAINING_IN_PROGRESS); returns its release.
 *
 * The lock is a file holding the owner's pid, linked into place whole (a
 * link fails where the name exists): of processes that try at once, one
 * creates it and the others see it. A lock whose owner is dead is removed
 * only under a second lock of the same kind (`train.lock.takeover`), by the
 * one process holding it, and only if the lock still names the dead owner;
 * then every process races for the lock again and one link wins. Without the
 * takeover lock, a process that had read the dead owner could remove the lock
 * another process had just taken, and two would hold it (the suite's
 * eight-process race saw that under load). A takeover lock left by a process
 * that died inside its takeover is removed the same way. A lock this process
 * already holds is taken again (a resume in the same process).
 */
export function takeTrainingLock(directory: string, versionId: number): () => void {
  const path = join(directory, LOCK_FILE);
  const takeover = `${path}.takeover`;
  for (let attempt = 0; attempt < 200; attempt++) {
    if (create(path)) return () => rmSync(path, { force: true });
    const owner = readOwner(path);
    if (owner === undefined) continue; // released meanwhile
    if (owner === process.pid) return () => rmSync(path, { force: true });
    if (owner !== null && isAlive(owner)) throw new AppError('TRAINING_IN_PROGRESS', `model version ${versionId} is being trained by process ${owner}`);
    // Dead or unreadable owner: remove its lock under the takeover lock, if it is still that one, and try again.
    if (!create(takeover)) {
      const breaker = readOwner(takeover);
      if (breaker !== undefined && breaker !== null && isAlive(breaker)) {
        pause(5); // another process is taking the dead lock over: its outcome decides
        continue;
      }
      rmSync(takeover, { force: true }); // its taker died mid-takeover
      continue;
    }
    try {
      const still = readOwner(path);
      if (still === owner || (still === null && owner === null)) rmSync(path, { force: true });
    } finally {
      rmSync(takeover, { force: true });
    }
  }
  throw new AppError('TRAINING_IN_PROGRESS', `model version ${versionId}: the training lock ${path} keeps changing hands; try again`);
}

/** Sleeps this thread (the lock is taken synchronously, once per run). */
function pause(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/**
 * Creates the lock with this process's pid, or returns false if it exists. The pid is written to a file
 * of this process's own first and linked into place (link fails if the lock exists), so a lock is never
 * seen half written.
 */
function create(path: string): boolean {
  const own = `${path}.${process.pid}.tmp`;
  writeFileSync(own, String(process.pid));
  try {
    linkSync(own, path);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw error;
  } finally {
    rmSync(own, { force: true });
  }
}

/** The pid in a lock file; null when it is unreadable as one, undefined when the file is gone. */
function readOwner(path: string): number | null | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    return null;
  }
  const pid = Number(text.trim());
  return Number.isInteger(pid) && pid > 0 ? pid : null;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
