import { readdirSync, readFileSync } from 'node:fs';

/** The names of this process's threads (Linux: /proc/self/task/<tid>/comm); the API names its own (src/thread-priority.mjs). */
export function threadNames(): string[] {
  return readdirSync('/proc/self/task').map((tid) => readFileSync(`/proc/self/task/${tid}/comm`, 'utf8').trim());
}
