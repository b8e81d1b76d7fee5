/**
 * Reference counting for a loaded model version: each request holds it
 * (acquire/release) while it uses it; once retired (another version took
 * its place), the last release frees it, and never before.
 */
export abstract class Retirable {
  private references = 0;
  private retired = false;

  /** Keeps it alive for the duration of a request. */
  acquire(): this {
    this.references++;
    return this;
  }

  release(): void {
    this.references--;
    if (this.retired && this.references === 0) this.free();
  }

  /** No new requests will use it: free it once the current ones finish. */
  retire(): void {
    if (this.retired) return;
    this.retired = true;
    if (this.references === 0) this.free();
  }

  protected abstract free(): void;
}
