// A small expiring cache with a size bound, for answers that may be reused for seconds
// (TokenReview, SubjectAccessReview): a flood of distinct tokens evicts the oldest entries
// instead of growing memory, and no answer outlives its time to live.
export class BoundedTtlCache<V> {
  readonly #entries = new Map<string, { value: V; expires: number }>();
  readonly #max: number;
  readonly #now: () => number;

  constructor(max: number, now: () => number = () => Date.now()) {
    this.#max = max;
    this.#now = now;
  }

  get size(): number {
    return this.#entries.size;
  }

  get(key: string): V | undefined {
    const entry = this.#entries.get(key);
    if (!entry) return undefined;
    if (entry.expires <= this.#now()) {
      this.#entries.delete(key);
      return undefined;
    }
    return entry.value;
  }

  set(key: string, value: V, ttlMs: number): void {
    this.#entries.delete(key);
    // A Map iterates in insertion order: the first key is the oldest.
    while (this.#entries.size >= this.#max) this.#entries.delete(this.#entries.keys().next().value!);
    this.#entries.set(key, { value, expires: this.#now() + ttlMs });
  }
}
