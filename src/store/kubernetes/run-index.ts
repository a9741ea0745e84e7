// The runs of the cache, kept ready for the API: each as a RunRecord (converted once per
// change, not once per request), in one array sorted newest first for paging, with counts
// by phase for /metrics. Fed by CachedObjects' change notifications.
import { BadRequestError, RUN_PHASES, toPublicRun, type Run, type RunPhase, type RunRecord } from '../../domain/index.ts';
import type { RunFilter, RunPage } from '../index.ts';
import { runFromObject, type RunObject } from './mapping.ts';

// Newest first; the run id breaks ties so the order (and the cursor) is total.
export const runSortKey = (r: Pick<RunRecord, 'createdAt' | 'runid'>) => `${r.createdAt}|${r.runid}`;

export class RunIndex {
  private readonly records = new Map<string, { record: RunRecord; key: string; resourceVersion?: string }>();
  // Sort keys, descending.
  private readonly keys: string[] = [];
  private readonly counts = Object.fromEntries(RUN_PHASES.map((p) => [p, 0])) as Record<RunPhase, number>;

  get size(): number {
    return this.records.size;
  }

  // First index whose key is smaller than `key` (keys are descending).
  private firstBelow(key: string): number {
    let lo = 0;
    let hi = this.keys.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.keys[mid]! > key) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  private removeKey(key: string): void {
    const at = this.firstBelow(key);
    // firstBelow returns the first index with keys[i] <= key.
    if (this.keys[at] === key) this.keys.splice(at, 1);
  }

  set(runid: string, obj: RunObject | undefined): void {
    const existing = this.records.get(runid);
    if (existing && obj && existing.resourceVersion !== undefined && existing.resourceVersion === obj.metadata.resourceVersion) return;
    if (existing) {
      this.counts[existing.record.phase]--;
      if (!obj) {
        this.records.delete(runid);
        this.removeKey(existing.key);
        return;
      }
    }
    if (!obj) return;
    const record = runFromObject(obj);
    const key = runSortKey(record);
    if (existing && existing.key !== key) this.removeKey(existing.key);
    if (!existing || existing.key !== key) this.keys.splice(this.firstBelow(key), 0, key);
    this.records.set(runid, { record, key, resourceVersion: obj.metadata.resourceVersion });
    this.counts[record.phase]++;
  }

  get(runid: string): RunRecord | undefined {
    return this.records.get(runid)?.record;
  }

  page(filter: RunFilter): RunPage {
    const cursor = filter.continue ? Buffer.from(filter.continue, 'base64url').toString() : undefined;
    if (cursor !== undefined && !/^[^|]+\|[0-9a-f-]{36}$/.test(cursor)) throw new BadRequestError(`continue "${filter.continue}" is not a token this server issued`);
    let i = cursor === undefined ? 0 : this.firstBelow(cursor);
    if (cursor !== undefined && this.keys[i] === cursor) i++;
    const items: Run[] = [];
    let more = false;
    for (; i < this.keys.length; i++) {
      const key = this.keys[i]!;
      const record = this.records.get(key.slice(key.lastIndexOf('|') + 1))!.record;
      if (filter.resource && record.resource !== filter.resource) continue;
      if (filter.name && record.name !== filter.name) continue;
      if (items.length === filter.limit) {
        more = true;
        break;
      }
      items.push(toPublicRun(record));
    }
    const page: RunPage = { items };
    if (more) page.continue = Buffer.from(runSortKey(items.at(-1)!)).toString('base64url');
    return page;
  }

  // Oldest first.
  inPhase(phases: RunPhase[]): RunRecord[] {
    const out: RunRecord[] = [];
    for (let i = this.keys.length - 1; i >= 0; i--) {
      const key = this.keys[i]!;
      const record = this.records.get(key.slice(key.lastIndexOf('|') + 1))!.record;
      if (phases.includes(record.phase)) out.push(record);
    }
    return out;
  }

  countByPhase(): Record<RunPhase, number> {
    return { ...this.counts };
  }
}
