/** Abortable timers that never outlive their signal (no dangling timers keep a process alive). */
import { AbortedError } from '../errors.js';

/** Resolves after `ms`, or rejects with AbortedError as soon as `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(new AbortedError());
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(new AbortedError());
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** A wait that another task can cut short with `wake()`; resolves false on abort instead of throwing. */
export class Wakeup {
  private cut: AbortController | undefined;
  private woken = false;

  wake(): void {
    this.woken = true;
    this.cut?.abort();
  }

  /** Waits up to `ms`; returns true when it ended by time or wake, false when `signal` aborted. */
  async wait(ms: number, signal: AbortSignal): Promise<boolean> {
    if (signal.aborted) return false;
    if (!this.woken) {
      this.cut = new AbortController();
      const either = AbortSignal.any([signal, this.cut.signal]);
      await sleep(Math.max(0, Math.min(ms, 2 ** 31 - 1)), either).catch(() => {});
      this.cut = undefined;
    }
    this.woken = false;
    return !signal.aborted;
  }
}

/** Exponential backoff with jitter: `base`·2^attempt, capped, ±20 %. */
export function backoffMs(attempt: number, base: number, cap: number): number {
  return Math.min(cap, base * 2 ** Math.min(attempt, 20)) * (0.8 + Math.random() * 0.4);
}
