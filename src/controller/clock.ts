// Injectable time for the controller machinery: the queue, the informer and the leader
// elector take every timer from a `Clock`, so tests drive them with `ManualClock` instead of
// sleeping. `realClock` is the one production uses.

/** An opaque timer handle; only the clock that made it can clear it. */
export type TimerHandle = object;

export interface Clock {
  /** Milliseconds since the epoch (or any fixed origin: only differences matter). */
  now(): number;
  setTimeout(callback: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
}

export const realClock: Clock = {
  now: () => Date.now(),
  setTimeout: (callback, ms) => globalThis.setTimeout(callback, Math.max(0, ms)),
  clearTimeout: (handle) => globalThis.clearTimeout(handle as NodeJS.Timeout),
};

/**
 * Resolves after `ms` on `clock`; rejects with the signal's reason when `signal` aborts
 * first (and then leaves no timer behind).
 */
export function sleep(clock: Clock, ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = () => {
      clock.clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = clock.setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

interface ManualTimer {
  readonly id: number;
  readonly due: number;
  readonly callback: () => void;
}

/** Lets pending promise callbacks (and the reactions they schedule) run. */
export async function settle(rounds = 5): Promise<void> {
  for (let i = 0; i < rounds; i++) await new Promise<void>((done) => setImmediate(done));
}

/**
 * A clock that moves only when told. `advance(ms)` fires every timer that falls due within
 * the window, in due-time order (ties in creation order), with `now()` set to each timer's due
 * time while it runs; timers created by a callback fire in the same call if they fall due
 * within the window. `advanceAsync` does the same but lets promises settle after each timer,
 * which is what code with `await` between timers needs.
 */
export class ManualClock implements Clock {
  #now: number;
  #nextId = 1;
  #timers = new Map<number, ManualTimer>();

  constructor(start = 0) {
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }

  setTimeout(callback: () => void, ms: number): TimerHandle {
    const timer: ManualTimer = { id: this.#nextId++, due: this.#now + Math.max(0, ms), callback };
    this.#timers.set(timer.id, timer);
    return { id: timer.id };
  }

  clearTimeout(handle: TimerHandle): void {
    const id = (handle as { id?: unknown }).id;
    if (typeof id === 'number') this.#timers.delete(id);
  }

  /** Timers not yet fired. */
  get pending(): number {
    return this.#timers.size;
  }

  /** The due time of the next timer, if any. */
  nextDue(): number | undefined {
    return this.#next()?.due;
  }

  advance(ms: number): void {
    const end = this.#now + ms;
    for (let timer = this.#next(); timer && timer.due <= end; timer = this.#next()) {
      this.#timers.delete(timer.id);
      this.#now = Math.max(this.#now, timer.due);
      timer.callback();
    }
    this.#now = end;
  }

  async advanceAsync(ms: number): Promise<void> {
    const end = this.#now + ms;
    await settle();
    for (let timer = this.#next(); timer && timer.due <= end; timer = this.#next()) {
      this.#timers.delete(timer.id);
      this.#now = Math.max(this.#now, timer.due);
      timer.callback();
      await settle();
    }
    this.#now = end;
    await settle();
  }

  #next(): ManualTimer | undefined {
    let best: ManualTimer | undefined;
    for (const timer of this.#timers.values()) {
      if (!best || timer.due < best.due || (timer.due === best.due && timer.id < best.id)) best = timer;
    }
    return best;
  }
}
