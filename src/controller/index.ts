export { LocalScheduler, type LocalSchedulerOptions } from './local-scheduler.ts';
// The controller machinery. The informer and the leader elector load @kubernetes/client-node
// (about a second at start-up), so this entry point exports only their types, keeping local
// mode's start fast; Kubernetes-mode code imports the classes from './informer.ts' and
// './leader-election.ts' (or this entry point loads them once local mode loads client-node anyway).
export { ManualClock, realClock, settle, sleep, type Clock, type TimerHandle } from './clock.ts';
export {
  TerminalError,
  WorkQueue,
  type BackoffOptions,
  type Reconcile,
  type ReconcileContext,
  type ReconcileResult,
  type RunOptions,
  type WorkOutcome,
  type WorkQueueMetrics,
  type WorkQueueOptions,
} from './queue.ts';
export type {
  InformerBackoffOptions,
  InformerEvent,
  InformerState,
  ResilientInformer,
  ResilientInformerOptions,
  WatchLike,
} from './informer.ts';
export type { LeaderElector, LeaderElectorOptions } from './leader-election.ts';
