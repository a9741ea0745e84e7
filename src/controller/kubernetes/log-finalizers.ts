// Letting go of run pods when no server will archive their logs. A run pod carries the
// finalizer `conveyor.ci/logs` until its log is complete in the archive; the leader's run
// reconciler removes it then. When Conveyor itself is going (its namespace deleted, its
// installation uninstalled) or is not running at all, nothing would ever remove it, and the
// pod, and with it the namespace, would wait in Terminating forever. This module releases
// such pods: the server calls it as it starts, every so often, and as it stops; the
// `conveyor cleanup` command and the chart's uninstall hook call it by hand.
import { AppsV1Api, CoreV1Api, PatchStrategy, setHeaderOptions, type KubeConfig, type V1Pod } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { LOGS_FINALIZER, Labels, MANAGED_BY } from '../../kube/names.ts';
import { isStatus } from '../../store/kubernetes/custom-objects.ts';

function errorBody(err: unknown): string {
  const body = (err as { body?: unknown }).body;
  return typeof body === 'string' ? body : JSON.stringify(body ?? '');
}

export const heldByLogs = (pod: V1Pod): boolean => (pod.metadata?.finalizers ?? []).includes(LOGS_FINALIZER);
export const beingDeleted = (obj: { metadata?: { deletionTimestamp?: Date | string } }): boolean => obj.metadata?.deletionTimestamp != null;

/** Conveyor's run pods in `namespace` that still hold the log finalizer. */
export async function podsHeldByLogs(core: CoreV1Api, namespace: string): Promise<V1Pod[]> {
  const pods = await core.listNamespacedPod({ namespace, labelSelector: `${Labels.managedBy}=${MANAGED_BY}` });
  return pods.items.filter(heldByLogs);
}

/**
 * Removes the log finalizer from one pod (and no other finalizer). The patch names the
 * resourceVersion it was computed from, so a concurrent change of the list is never
 * overwritten: on a conflict the pod is read again and the removal retried. A pod already
 * gone, or already released, is fine.
 */
export async function releaseLogFinalizer(core: CoreV1Api, namespace: string, pod: V1Pod): Promise<boolean> {
  let current = pod;
  for (let attempt = 0; attempt < 5; attempt++) {
    const finalizers = current.metadata?.finalizers ?? [];
    if (!finalizers.includes(LOGS_FINALIZER)) return false;
    try {
      await core.patchNamespacedPod(
        {
          name: current.metadata!.name!,
          namespace,
          body: { metadata: { finalizers: finalizers.filter((f) => f !== LOGS_FINALIZER), resourceVersion: current.metadata!.resourceVersion } },
        },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      );
      return true;
    } catch (err) {
      if (isStatus(err, 404)) return false;
      if (!isStatus(err, 409)) throw err;
      try {
        current = await core.readNamespacedPod({ name: current.metadata!.name!, namespace });
      } catch (readErr) {
        if (isStatus(readErr, 404)) return false;
        throw readErr;
      }
    }
  }
  throw new Error(`pod ${namespace}/${pod.metadata?.name}: its finalizers kept changing; not released`);
}

/**
 * `conveyor cleanup`: releases the run pods of `namespace` that are being deleted (or, with
 * `all`, every run pod) from the log finalizer. Their logs stay readable from the pods for as
 * long as the pods exist; only a deletion no longer waits for an archive. Returns the names
 * of the pods released.
 */
export async function releaseLogFinalizers(core: CoreV1Api, namespace: string, options: { all?: boolean } = {}): Promise<string[]> {
  const released: string[] = [];
  for (const pod of await podsHeldByLogs(core, namespace)) {
    if (!options.all && !beingDeleted(pod)) continue;
    if (await releaseLogFinalizer(core, namespace, pod)) released.push(pod.metadata!.name!);
  }
  return released;
}

export interface OrphanReleaserOptions {
  kc: KubeConfig;
  namespace: string;
  logger: Logger;
  // The Deployment of this server's installation (the chart sets it): once it is gone or
  // being deleted, no server will come back to archive anything.
  installation?: string;
  // Whether run `runid` still exists and is not being deleted.
  runAlive: (runid: string) => Promise<boolean>;
  intervalMs?: number;
}

/**
 * The server's side. Releases a run pod that is being deleted when its Run is gone or going
 * too (no reconcile will ever archive that pod's log), and every run pod once the namespace
 * is being deleted or the server's installation is going. Needs no leadership: a server
 * that cannot lead (its namespace is terminating, so it cannot even make its Lease) still
 * lets the namespace go. Idempotent, so several servers may do it at once.
 */
export class OrphanReleaser {
  private readonly o: OrphanReleaserOptions;
  private readonly core: CoreV1Api;
  private readonly apps: AppsV1Api;
  private timer?: NodeJS.Timeout;
  private running?: Promise<void>;

  constructor(options: OrphanReleaserOptions) {
    this.o = options;
    this.core = options.kc.makeApiClient(CoreV1Api);
    this.apps = options.kc.makeApiClient(AppsV1Api);
  }

  start(): void {
    this.tick();
    this.timer = setInterval(() => this.tick(), this.o.intervalMs ?? 15_000);
    this.timer.unref();
  }

  /** Stops the periodic sweep, then sweeps once more: the server is going now. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.running;
    await this.sweep().catch((err: unknown) => this.o.logger.warn({ err }, 'releasing run pods at shutdown failed'));
  }

  private tick(): void {
    if (this.running) return;
    this.running = this.sweep()
      .then(() => undefined)
      .catch((err: unknown) => this.o.logger.warn({ err }, 'releasing orphaned run pods failed; retrying later'))
      .finally(() => (this.running = undefined));
  }

  /**
   * Whether the namespace is being deleted. Asked without reading the Namespace (the server
   * has no cluster-scoped rights): a dry-run create of an Event, which the API server's
   * NamespaceLifecycle admission refuses in a terminating namespace, stores nothing.
   */
  async namespaceGoing(): Promise<boolean> {
    try {
      await this.core.createNamespacedEvent({
        namespace: this.o.namespace,
        dryRun: 'All',
        body: {
          metadata: { generateName: 'conveyor-probe-' },
          involvedObject: { kind: 'Namespace', name: this.o.namespace },
          reason: 'Probe',
          message: 'is this namespace being deleted?',
          type: 'Normal',
        },
      });
      return false;
    } catch (err) {
      if (isStatus(err, 403) && /NamespaceTerminating|is being terminated/.test(errorBody(err))) return true;
      if (isStatus(err, 404)) return true;
      throw err;
    }
  }

  /** Whether this server's installation is gone or being deleted (false when unknown). */
  async installationGoing(): Promise<boolean> {
    if (!this.o.installation) return false;
    try {
      return beingDeleted(await this.apps.readNamespacedDeployment({ name: this.o.installation, namespace: this.o.namespace }));
    } catch (err) {
      if (isStatus(err, 404)) return true;
      throw err;
    }
  }

  async sweep(): Promise<string[]> {
    const held = await podsHeldByLogs(this.core, this.o.namespace);
    if (held.length === 0) return [];
    const namespaceGoing = held.some(beingDeleted) && (await this.namespaceGoing());
    const all = namespaceGoing || (await this.installationGoing());
    const released: string[] = [];
    for (const pod of held) {
      const runid = pod.metadata?.labels?.[Labels.runId];
      const orphaned = beingDeleted(pod) && (!runid || !(await this.o.runAlive(runid)));
      if (!all && !orphaned) continue;
      if (await releaseLogFinalizer(this.core, this.o.namespace, pod)) released.push(pod.metadata!.name!);
    }
    if (released.length > 0) {
      const why = namespaceGoing
        ? `namespace ${this.o.namespace} is being deleted`
        : all
          ? `its installation (deployment ${this.o.installation}) is going`
          : 'they are being deleted with their runs';
      this.o.logger.info({ pods: released }, `released ${released.length} run pod(s) from the log finalizer: ${why}`);
    }
    return released;
  }
}
