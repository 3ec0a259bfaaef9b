// Level-triggered reconcilers run passes: look at the whole view, do what is owed. A pass asked
// for while one runs is not run beside it but once after it (however many asks came meanwhile),
// so passes never overlap and none is lost.
export class SerialPasses {
  private running = false;
  private again = false;
  private closed = false;
  private current: Promise<void> = Promise.resolve();

  constructor(
    private readonly pass: () => Promise<void>,
    private readonly onError: (error: Error) => void = () => undefined,
  ) {}

  /** Asks for a pass: now, or right after the one that runs. */
  kick(): void {
    if (this.closed) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = true;
    this.current = (async () => {
      do {
        this.again = false;
        try {
          await this.pass();
        } catch (e) {
          this.onError(e as Error);
        }
      } while (this.again && !this.closed);
      this.running = false;
    })();
  }

  /** Resolves when no pass runs. */
  settled(): Promise<void> {
    return this.current;
  }

  /** No pass starts any more; resolves when the running one has ended. */
  async close(): Promise<void> {
    this.closed = true;
    await this.current;
  }
}
