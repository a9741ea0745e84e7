// Upstream's drivers send every log line twice, over two routes (JetStream and core NATS, or
// core NATS and Loki), in no fixed order. A line is archived when the first of its copies
// arrives and the other copy is dropped. Identical lines (a driver printing "ok" twice) are
// told apart by counting: the n-th copy of a key from one route is new exactly when fewer
// than n copies of that key have been archived.
export class LineDeduper {
  // run id -> driver + key -> [archived, seen per route]
  private readonly runs = new Map<string, Map<string, { archived: number; seen: Map<string, number> }>>();

  private counts(runid: string, driver: string, key: string): { archived: number; seen: Map<string, number> } {
    let keys = this.runs.get(runid);
    if (!keys) {
      keys = new Map();
      this.runs.set(runid, keys);
    }
    const k = `${driver}\u0000${key}`;
    let counts = keys.get(k);
    if (!counts) {
      counts = { archived: 0, seen: new Map() };
      keys.set(k, counts);
    }
    return counts;
  }

  // A line already archived before this process started: a redelivered copy of it is
  // dropped like any second copy.
  seed(runid: string, driver: string, key: string): void {
    this.counts(runid, driver, key).archived++;
  }

  accept(route: string, runid: string, driver: string, key: string): boolean {
    const counts = this.counts(runid, driver, key);
    const nth = (counts.seen.get(route) ?? 0) + 1;
    counts.seen.set(route, nth);
    if (nth <= counts.archived) return false;
    counts.archived = nth;
    return true;
  }

  forget(runid: string): void {
    this.runs.delete(runid);
  }

  get size(): number {
    return this.runs.size;
  }
}
