/**
 * A FIFO bound on concurrent async work. Used to keep at most 64 netlink requests in flight: more
 * overflows the socket's receive buffer with ACKs (docs/dependencies.md §3.4) and gains no speed (§3.3).
 */
export class InFlightLimiter {
  private active = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(readonly max: number) {
    if (!Number.isInteger(max) || max < 1)
      throw new TypeError(`max in flight must be ≥ 1, got ${max}`);
  }

  get inFlight(): number {
    return this.active;
  }

  get queued(): number {
    return this.waiting.length;
  }

  async run<T>(fn: () => Promise<T>): Promise<T> {
    // A released slot is handed directly to the next waiter, so `active` never exceeds `max`.
    if (this.active >= this.max) await new Promise<void>((resolve) => this.waiting.push(resolve));
    else this.active++;
    try {
      return await fn();
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else this.active--;
    }
  }
}
