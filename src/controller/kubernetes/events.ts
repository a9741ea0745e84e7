// Kubernetes Events on a Run, so `kubectl describe run <id>` tells its story. Recording is
// best effort: an event that cannot be written never fails a reconcile.
import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { API_VERSION, CustomResources } from '../../kube/names.ts';
import type { RunObject } from '../../store/kubernetes/mapping.ts';

export class EventRecorder {
  private readonly core: CoreV1Api;
  private readonly namespace: string;
  private readonly logger: Logger;
  private readonly component: string;

  constructor(kc: KubeConfig, namespace: string, logger: Logger, component = 'conveyor-controller') {
    this.core = kc.makeApiClient(CoreV1Api);
    this.namespace = namespace;
    this.logger = logger;
    this.component = component;
  }

  record(run: RunObject, type: 'Normal' | 'Warning', reason: string, message: string): void {
    const now = new Date();
    this.core
      .createNamespacedEvent({
        namespace: this.namespace,
        body: {
          metadata: { generateName: `${run.metadata.name}.` },
          involvedObject: {
            apiVersion: API_VERSION,
            kind: CustomResources.Run.kind,
            name: run.metadata.name,
            namespace: this.namespace,
            uid: run.metadata.uid,
            resourceVersion: run.metadata.resourceVersion,
          },
          type,
          reason,
          message,
          source: { component: this.component },
          firstTimestamp: now,
          lastTimestamp: now,
          count: 1,
          reportingComponent: this.component,
          reportingInstance: this.component,
        },
      })
      .catch((err: unknown) => this.logger.warn({ err, run: run.metadata.name, reason }, 'could not record event'));
  }
}
