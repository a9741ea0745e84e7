// The controller's view of the cluster: one resilient informer per kind it reconciles or
// observes, all in the controller's namespace.
import { BatchV1Api, CoreV1Api, CustomObjectsApi, type KubeConfig, type KubernetesListObject, type KubernetesObject, type V1Job, type V1Pod } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { CustomResources, GROUP, Labels, MANAGED_BY, VERSION } from '../../kube/names.ts';
import type { DefinitionObject, GenericResourceObject, PipelineObject, RunObject } from '../../store/kubernetes/mapping.ts';
import { ResilientInformer } from '../informer.ts';
import { asUnavailable } from '../../domain/index.ts';

export interface Informers {
  runs: ResilientInformer<RunObject>;
  pipelines: ResilientInformer<PipelineObject>;
  jobs: ResilientInformer<V1Job>;
  pods: ResilientInformer<V1Pod>;
}

// managedFields (server-side apply bookkeeping) is often the largest part of an object and
// nothing here reads it: dropped from every cached object as it arrives, in place, so the
// informer's and the list-watch's maps share the lighter object (client-go's informers do
// the same with a transform).
export function withoutManagedFields<T extends KubernetesObject>(informer: ResilientInformer<T>): ResilientInformer<T> {
  const strip = (obj: T) => {
    const meta = obj.metadata as { managedFields?: unknown } | undefined;
    if (meta?.managedFields !== undefined) delete meta.managedFields;
  };
  informer.on('add', strip);
  informer.on('update', strip);
  return informer;
}

export function makeInformers(kc: KubeConfig, namespace: string, logger: Logger): Informers {
  const custom = kc.makeApiClient(CustomObjectsApi);
  const batch = kc.makeApiClient(BatchV1Api);
  const core = kc.makeApiClient(CoreV1Api);
  const managed = `${Labels.managedBy}=${MANAGED_BY}`;
  const onError = (name: string) => informerErrorLogger(logger, name);
  const customInformer = <T extends RunObject | PipelineObject>(plural: string) =>
    new ResilientInformer<T>({
      kubeConfig: kc,
      name: plural,
      path: `/apis/${GROUP}/${VERSION}/namespaces/${namespace}/${plural}`,
      list: () => custom.listNamespacedCustomObject({ group: GROUP, version: VERSION, namespace, plural }) as Promise<KubernetesListObject<T>>,
      onError: onError(plural),
    });
  return {
    runs: withoutManagedFields(customInformer<RunObject>(CustomResources.Run.plural)),
    pipelines: withoutManagedFields(customInformer<PipelineObject>(CustomResources.Pipeline.plural)),
    jobs: withoutManagedFields(new ResilientInformer<V1Job>({
      kubeConfig: kc,
      name: 'jobs',
      path: `/apis/batch/v1/namespaces/${namespace}/jobs`,
      labelSelector: managed,
      list: () => batch.listNamespacedJob({ namespace, labelSelector: managed }),
      onError: onError('jobs'),
    })),
    pods: withoutManagedFields(new ResilientInformer<V1Pod>({
      kubeConfig: kc,
      name: 'pods',
      path: `/api/v1/namespaces/${namespace}/pods`,
      labelSelector: managed,
      list: () => core.listNamespacedPod({ namespace, labelSelector: managed }),
      onError: onError('pods'),
    })),
  };
}

// The store's read caches (all four kinds of Conveyor object), independent of leadership:
// every server answers GETs from them, leader or not.
export interface StoreInformers {
  runs: ResilientInformer<RunObject>;
  pipelines: ResilientInformer<PipelineObject>;
  resources: ResilientInformer<GenericResourceObject>;
  definitions: ResilientInformer<DefinitionObject>;
}

// The API server going away for a while is expected: said once per retry, without a stack.
function informerErrorLogger(logger: Logger, name: string): (err: unknown, restartInMs: number) => void {
  return (err, restartInMs) => {
    if (asUnavailable(err)) logger.info({ informer: name, restartInMs, cause: (err as Error).message }, 'informer waits for the API server; restarting');
    else logger.warn({ err, informer: name, restartInMs }, 'informer failed; restarting');
  };
}

export function makeStoreInformers(kc: KubeConfig, namespace: string, logger: Logger): StoreInformers {
  const custom = kc.makeApiClient(CustomObjectsApi);
  const informer = <T extends RunObject | PipelineObject | GenericResourceObject | DefinitionObject>(plural: string) =>
    new ResilientInformer<T>({
      kubeConfig: kc,
      name: `store-${plural}`,
      path: `/apis/${GROUP}/${VERSION}/namespaces/${namespace}/${plural}`,
      list: () => custom.listNamespacedCustomObject({ group: GROUP, version: VERSION, namespace, plural }) as Promise<KubernetesListObject<T>>,
      onError: informerErrorLogger(logger, `store-${plural}`),
    });
  return {
    runs: withoutManagedFields(informer<RunObject>(CustomResources.Run.plural)),
    pipelines: withoutManagedFields(informer<PipelineObject>(CustomResources.Pipeline.plural)),
    resources: withoutManagedFields(informer<GenericResourceObject>(CustomResources.Resource.plural)),
    definitions: withoutManagedFields(informer<DefinitionObject>(CustomResources.ResourceDefinition.plural)),
  };
}
