// The command-runner on Kubernetes: the pure pieces (the Job a run becomes, and the run's
// status read back from that Job and its pod). The names shared with manifests/crds/ are
// in kube/names.ts, beside the other Kubernetes plumbing the store and logs use too.
export { buildJob, needsSequentialSteps, runLabels, TERMINATION_GRACE_SECONDS, type BuildJobInput, type OwnerObject } from './job-builder.ts';
export * from './pod-status.ts';
