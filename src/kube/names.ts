// Names, labels and other constants Conveyor's Kubernetes objects share: the custom
// resources of manifests/crds/ and the Jobs that run the steps. One place, so that the
// store, the controller, the log follower and the CRD manifests cannot drift apart.
import { dns1123Problem } from '../domain/index.ts';

export const GROUP = 'conveyor.ci';
export const VERSION = 'v1alpha1';
export const API_VERSION = `${GROUP}/${VERSION}`;

// Kind, plural and short names of each custom resource, as in manifests/crds/. Short names
// carry a `cv` prefix so they clash with no built-in kind nor with other CI tools' CRDs
// (Tekton and Argo also define pipelines and runs); all four are in the `conveyor`
// category, so `kubectl get conveyor` lists them together.
export const CustomResources = {
  Pipeline: { kind: 'Pipeline', plural: 'pipelines', singular: 'pipeline', shortNames: ['cvpl'] },
  Run: { kind: 'Run', plural: 'runs', singular: 'run', shortNames: ['cvrun'] },
  ResourceDefinition: { kind: 'ResourceDefinition', plural: 'resourcedefinitions', singular: 'resourcedefinition', shortNames: ['cvrd'] },
  Resource: { kind: 'Resource', plural: 'resources', singular: 'resource', shortNames: ['cvres'] },
} as const;

export const CATEGORY = 'conveyor';

export const Labels = {
  managedBy: 'app.kubernetes.io/managed-by',
  runId: `${GROUP}/run-id`,
  pipeline: `${GROUP}/pipeline`,
  driver: `${GROUP}/driver`,
  // On `Resource` objects, so that a type's resources can be listed by label selector.
  resourceType: `${GROUP}/resource-type`,
  resourceName: `${GROUP}/resource-name`,
} as const;

export const MANAGED_BY = 'conveyor';

// Kept on every run pod (copied from the Job's pod template) until the pod's logs are
// complete in the archive; the log follower removes it.
export const LOGS_FINALIZER = `${GROUP}/logs`;

export const WORKSPACE_VOLUME = 'workspace';
export const WORKSPACE_PATH = '/workspace';

// One Job per run, named from the run id so that a second reconcile of the same run finds
// the Job instead of making another.
export const JOB_NAME_PREFIX = 'run-';

export function jobNameFor(runid: string): string {
  const name = `${JOB_NAME_PREFIX}${runid}`;
  const problem = dns1123Problem(name);
  if (problem) throw new Error(`cannot name a Job after run id "${runid}": "${name}" ${problem}`);
  return name;
}

// A `Resource` object is named `<type>.<name>`: both parts are DNS-1123 labels (no dots), so
// the pair is unambiguous and resources of different types may share a name. Resources of
// the built-in `pipeline` type are `Pipeline` objects named by the resource name alone.
export function resourceObjectName(type: string, name: string): string {
  for (const [field, value] of [['type', type], ['name', name]] as const) {
    const problem = dns1123Problem(value);
    if (problem) throw new Error(`resource ${field} "${value}" ${problem}`);
  }
  return `${type}.${name}`;
}

export function parseResourceObjectName(objectName: string): { type: string; name: string } | undefined {
  const dot = objectName.indexOf('.');
  if (dot < 0) return undefined;
  const type = objectName.slice(0, dot);
  const name = objectName.slice(dot + 1);
  if (dns1123Problem(type) || dns1123Problem(name)) return undefined;
  return { type, name };
}
