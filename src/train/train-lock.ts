import { linkSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
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
 * creates it and the others see it. A
 * lock whose owner is dead is taken over by renaming it aside (atomic: one
 * process's rename wins, the others find nothing to rename) and creating
 * the file again. A process that renamed a lock other than the dead one it
 * read (another process took the dead lock over in between) links it back
 * and tries again, which then finds a live owner. A lock this process
 * already holds is taken again (a resume in the same process).
 */
export function takeTrainingLock(directory: string, versionId: number): () => void {
  const path = join(directory, LOCK_FILE);
  for (let attempt = 0; attempt < 100; attempt++) {
    if (create(path)) return () => rmSync(path, { force: true });
    const owner = readOwner(path);
    if (owner === undefined) continue; // released meanwhile
    if (owner === process.pid) return () => rmSync(path, { force: true });
    if (owner !== null && isAlive(owner)) throw new AppError('TRAINING_IN_PROGRESS', `model version ${versionId} is being trained by process ${owner}`);
    // Dead or unreadable owner: move its lock aside, make sure it was that one, and try again.
    const aside = `${path}.stale-${process.pid}-${attempt}`;
    try {
      renameSync(path, aside);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') continue; // another process moved it first
      throw error;
    }
    const moved = readOwner(aside);
    if (moved !== owner && moved !== undefined && moved !== null && isAlive(moved)) {
      try {
        linkSync(aside, path); // put the live owner's lock back (fails, harmlessly, if a new one is already there)
      } catch {
        // a lock is in place again either way
      }
    }
    rmSync(aside, { force: true });
  }
  throw new AppError('TRAINING_IN_PROGRESS', `model version ${versionId}: the training lock ${path} keeps changing hands; try again`);
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
