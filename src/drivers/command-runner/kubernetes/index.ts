// The command-runner on Kubernetes: the pure pieces (the Job a run becomes, and the run's
// status read back from that Job and its pod) and the names shared with manifests/crds/.
export * from './names.ts';
export { buildJob, runLabels, TERMINATION_GRACE_SECONDS, type BuildJobInput, type OwnerObject } from './job-builder.ts';
export * from './pod-status.ts';
