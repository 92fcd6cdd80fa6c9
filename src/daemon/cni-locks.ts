/**
 * Ordering of CNI calls inside weftd (docs/cni-contract.md A2: "no two operations for one container run at once";
 * GC is exclusive with ADD/DEL). The runtime should guarantee both, but weftd must not corrupt state when
 * one does not: calls for one container id run one after another; GC waits for every running call and
 * holds new ones back until it is done. Calls for different containers run concurrently, so one hung
 * delegate only holds its own container's calls (delegates are killed after their timeout). Against
 * other processes (standalone plugins) each call then also takes the state directory's flock
 * (src/cni/lock.ts), which with this ordering only ever waits for those processes.
 */
export class CniLocks {
  private readonly tails = new Map<string, Promise<void>>();
  private readonly active = new Set<Promise<void>>();
  private gate: Promise<void> = Promise.resolve();

  /** Runs `fn` after the previous calls for `id` and after any GC queued before it. */
  async shared<T>(id: string, fn: () => Promise<T>): Promise<T> {
    await this.gate;
    const prev = this.tails.get(id) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((r) => (release = r));
    const tail = prev.then(() => mine);
    this.tails.set(id, tail);
    this.active.add(mine);
    try {
      await prev;
      return await fn();
    } finally {
      release();
      this.active.delete(mine);
      if (this.tails.get(id) === tail) this.tails.delete(id);
    }
  }

  /** Runs `fn` alone: after every call already running, before any call that arrives later. */
  async exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const prev = this.gate;
    let release!: () => void;
    this.gate = new Promise<void>((r) => (release = r));
    try {
      await prev;
      await Promise.allSettled([...this.active]);
      return await fn();
    } finally {
      release();
    }
  }

  /** Containers with a queued or running call (for tests). */
  get size(): number {
    return this.tails.size;
  }
}
