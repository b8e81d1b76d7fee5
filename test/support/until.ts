/** Waits until `condition` holds, checking every `everyMs`; throws after `ms`. */
export async function until(condition: () => Promise<boolean> | boolean, ms = 10_000, everyMs = 20): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
