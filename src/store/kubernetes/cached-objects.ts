// Custom resources read from an informer's cache instead of the API server, with this
// server's own writes visible at once (read-your-writes).
//
// Reads (get, list) answer from the watch-fed cache: no request to the API server, whatever
// the number of objects or of clients asking. A write goes to the API server as before, and
// the object it returns is remembered in an overlay until the cache has caught up with it
// (same or later resourceVersion), so that a client reading right after its own POST sees
// it. Reads that feed a compare-and-swap write use `fresh`, which asks the API server.
import type { KubeConfig } from '@kubernetes/client-node';
import { CustomObjects, type CustomObject } from './custom-objects.ts';

// What the cache needs from an informer (the controller's ResilientInformer fits).
export interface ObjectSource<T> {
  get(name: string, namespace?: string): T | undefined;
  list(namespace?: string): T[];
  on(event: 'add' | 'update' | 'delete', handler: (obj: T) => void): () => void;
  hasSynced(): boolean;
}

interface OverlayEntry<T> {
  object?: T; // undefined: deleted by this server
  resourceVersion: bigint;
  at: number;
}

// An overlay entry older than this gives way to the cache whatever it holds: a watch that
// lags that much has been restarted and relisted, and the cache is then the truth.
const OVERLAY_TTL_MS = 30_000;

function rv(obj: { metadata: { resourceVersion?: string } } | undefined): bigint {
  try {
    return BigInt(obj?.metadata.resourceVersion ?? '0');
  } catch {
    return 0n;
  }
}

// Equality-based selectors only (`a=b,c=d`), the only kind this store writes.
export function parseSelector(selector: string | undefined): [string, string][] {
  if (!selector) return [];
  return selector.split(',').map((term) => {
    const eq = term.indexOf('=');
    if (eq <= 0 || term.includes('!') || term.slice(eq + 1).includes('=')) throw new Error(`unsupported label selector "${selector}"`);
    return [term.slice(0, eq).trim(), term.slice(eq + 1).trim()];
  });
}

export function matchesSelector(labels: Record<string, string> | undefined, terms: [string, string][]): boolean {
  for (const [key, value] of terms) if (labels?.[key] !== value) return false;
  return true;
}

export type ChangeListener = (name: string) => void;

export class CachedObjects<Spec, Status> extends CustomObjects<Spec, Status> {
  private readonly source: ObjectSource<CustomObject<Spec, Status>>;
  private readonly overlay = new Map<string, OverlayEntry<CustomObject<Spec, Status>>>();
  private readonly listeners = new Set<ChangeListener>();

  constructor(kc: KubeConfig, namespace: string, kind: string, plural: string, source: ObjectSource<CustomObject<Spec, Status>>) {
    super(kc, namespace, kind, plural);
    this.source = source;
    const changed = (obj: CustomObject<Spec, Status>) => {
      // Drops the overlay entry once the cache has caught up: entries live only as long as
      // the watch lags behind this server's writes.
      this.current(obj.metadata.name);
      this.changed(obj.metadata.name);
    };
    source.on('add', changed);
    source.on('update', changed);
    source.on('delete', changed);
  }

  // Called with the name of every object whose cached view may have changed.
  onChange(listener: ChangeListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private changed(name: string): void {
    for (const listener of this.listeners) listener(name);
  }

  private current(name: string): CustomObject<Spec, Status> | undefined {
    const cached = this.source.get(name, this.namespace);
    const mine = this.overlay.get(name);
    if (!mine) return cached;
    const caughtUp = mine.object ? rv(cached) >= mine.resourceVersion : cached === undefined || rv(cached) > mine.resourceVersion;
    if (caughtUp || Date.now() - mine.at > OVERLAY_TTL_MS) {
      this.overlay.delete(name);
      return cached;
    }
    return mine.object;
  }

  private remember(name: string, object: CustomObject<Spec, Status> | undefined, resourceVersion: bigint): void {
    this.overlay.set(name, { object, resourceVersion, at: Date.now() });
    this.changed(name);
  }

  override async get(name: string): Promise<CustomObject<Spec, Status> | undefined> {
    return this.current(name);
  }

  // Synchronous: the cache is in memory.
  peek(name: string): CustomObject<Spec, Status> | undefined {
    return this.current(name);
  }

  // The object as the API server has it now, for a read-modify-write.
  override fresh(name: string): Promise<CustomObject<Spec, Status> | undefined> {
    return super.get(name);
  }

  override async list(labelSelector?: string): Promise<CustomObject<Spec, Status>[]> {
    return this.listNow(labelSelector);
  }

  listNow(labelSelector?: string): CustomObject<Spec, Status>[] {
    const terms = parseSelector(labelSelector);
    const names = new Set<string>();
    for (const obj of this.source.list(this.namespace)) names.add(obj.metadata.name);
    for (const name of this.overlay.keys()) names.add(name);
    const out: CustomObject<Spec, Status>[] = [];
    for (const name of names) {
      const obj = this.current(name);
      if (obj && matchesSelector(obj.metadata.labels, terms)) out.push(obj);
    }
    return out;
  }

  get synced(): boolean {
    return this.source.hasSynced();
  }

  override async create(metadata: Parameters<CustomObjects<Spec, Status>['create']>[0], spec: Spec): Promise<CustomObject<Spec, Status>> {
    const created = await super.create(metadata, spec);
    this.remember(created.metadata.name, created, rv(created));
    return created;
  }

  override async replace(object: CustomObject<Spec, Status>): Promise<CustomObject<Spec, Status>> {
    const updated = await super.replace(object);
    this.remember(updated.metadata.name, updated, rv(updated));
    return updated;
  }

  override async replaceStatus(object: CustomObject<Spec, Status>): Promise<CustomObject<Spec, Status>> {
    const updated = await super.replaceStatus(object);
    this.remember(updated.metadata.name, updated, rv(updated));
    return updated;
  }

  override async mergePatch(name: string, patch: object): Promise<CustomObject<Spec, Status>> {
    const updated = await super.mergePatch(name, patch);
    this.remember(updated.metadata.name, updated, rv(updated));
    return updated;
  }

  override async delete(name: string): Promise<void> {
    const before = this.current(name);
    await super.delete(name);
    // Gone for this server's readers now, until the cache has seen the deletion (or a
    // newer object of the same name).
    this.remember(name, undefined, rv(before));
  }
}
