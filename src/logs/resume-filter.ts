// Resuming a Kubernetes log stream: `sinceTime` has one-second precision, so a reconnect
// replays lines we already have. Kubelet stamps each line with a nanosecond timestamp that
// only grows within one container's log, so "already have" is: older than the last line
// kept, or the same timestamp and text as one kept at that very timestamp.
export class ResumeFilter {
  private lastTs = -1n;
  private readonly atLast = new Map<string, number>();

  constructor(resumeAfter?: { ts: string; messages: string[] }) {
    if (resumeAfter) {
      this.lastTs = BigInt(resumeAfter.ts);
      for (const m of resumeAfter.messages) this.atLast.set(m, (this.atLast.get(m) ?? 0) + 1);
    }
  }

  // The RFC 3339 time to reconnect from, or undefined before the first line.
  get sinceTime(): string | undefined {
    if (this.lastTs < 0n) return undefined;
    return new Date(Number(this.lastTs / 1_000_000_000n) * 1000).toISOString().replace('.000Z', 'Z');
  }

  // Counts identical lines at one timestamp, so a replayed copy is dropped once per copy
  // kept, and a genuinely repeated line is still kept.
  private readonly replayed = new Map<string, number>();

  accept(ts: string, message: string): boolean {
    const t = BigInt(ts);
    if (t < this.lastTs) return false;
    if (t === this.lastTs) {
      const kept = this.atLast.get(message) ?? 0;
      const seen = (this.replayed.get(message) ?? 0) + 1;
      this.replayed.set(message, seen);
      if (seen <= kept) return false;
      this.atLast.set(message, kept + 1);
      this.replayed.set(message, kept + 1);
      return true;
    }
    this.lastTs = t;
    this.atLast.clear();
    this.replayed.clear();
    this.atLast.set(message, 1);
    this.replayed.set(message, 1);
    return true;
  }

  // Call before each reconnect: what the new stream replays is counted afresh.
  restart(): void {
    this.replayed.clear();
  }
}
