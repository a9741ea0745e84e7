// A run and its state machine. Transitions are checked here so that no store or driver can
// move a run backwards (a finished run never becomes Running again).
import { ConflictError } from './errors.ts';
import type { JsonObject } from './json.ts';

export const RUN_PHASES = ['Pending', 'Running', 'Succeeded', 'Failed', 'Cancelled'] as const;
export type RunPhase = (typeof RUN_PHASES)[number];

export const STEP_PHASES = ['Pending', 'Running', 'Succeeded', 'Failed', 'Skipped', 'Cancelled'] as const;
export type StepPhase = (typeof STEP_PHASES)[number];

export interface StepStatus {
  name: string;
  phase: StepPhase;
  exitCode: number | null;
  startedAt: string | null;
  finishedAt: string | null;
  // Steps of runs served by external drivers (one per driver of a driver pipeline, or one
  // for the driver serving the type): who runs it, which event it was handed, when the
  // event was published, and the result the driver reported.
  driver?: string;
  event?: ResourceEvent;
  dispatchedAt?: string;
  // The event's sequence in the `messages` stream: a driver's ack of it shows in its consumer.
  eventSeq?: number;
  result?: DriverResult;
}

export type ResourceEvent = 'create' | 'update' | 'delete';

export interface DriverResult {
  success: boolean;
  message: string;
  data: unknown;
}

export interface Run {
  runid: string;
  resource: string;
  name: string;
  version: number;
  driver: string;
  phase: RunPhase;
  reason: string | null;
  message: string | null;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  steps: StepStatus[];
  // Who started the run: the authenticated user of the HTTP request, or for a Pipeline
  // applied with kubectl the requester recorded at admission; null when not known.
  requestedBy: string | null;
}

// Reasons are CamelCase codes a program can match on; `message` carries the prose.
export const Reasons = {
  Waiting: 'Waiting',
  NoDriver: 'NoDriver',
  Started: 'Started',
  Succeeded: 'Succeeded',
  StepFailed: 'StepFailed',
  Cancelled: 'Cancelled',
  Interrupted: 'Interrupted',
  DeadlineExceeded: 'DeadlineExceeded',
  StartFailed: 'StartFailed',
  DriverFailed: 'DriverFailed',
} as const;

// Pending may end without ever being seen Running: on Kubernetes a quick pod can finish
// between two observations of it.
const NEXT: Record<RunPhase, readonly RunPhase[]> = {
  Pending: ['Pending', 'Running', 'Succeeded', 'Failed', 'Cancelled'],
  Running: ['Running', 'Succeeded', 'Failed', 'Cancelled'],
  Succeeded: [],
  Failed: [],
  Cancelled: [],
};

export function isTerminal(phase: RunPhase): boolean {
  return NEXT[phase].length === 0;
}

export function canTransition(from: RunPhase, to: RunPhase): boolean {
  return NEXT[from].includes(to);
}

export function assertTransition(run: Pick<Run, 'runid' | 'phase'>, to: RunPhase): void {
  if (!canTransition(run.phase, to)) {
    throw new ConflictError(`run ${run.runid} is ${run.phase} and cannot become ${to}`);
  }
}

// The steps of a run served by external drivers: one per driver in a chain, or, with no
// chain, one for whichever driver serves the type (named after the type until one starts).
export function driverSteps(event: ResourceEvent, chain: { name: string; driver: string }[] | null, type: string): StepStatus[] {
  const steps = chain ?? [{ name: type, driver: '' }];
  return steps.map((s) => ({ name: s.name, phase: 'Pending', exitCode: null, startedAt: null, finishedAt: null, driver: s.driver, event }));
}

export function pendingSteps(names: string[]): StepStatus[] {
  return names.map((name) => ({ name, phase: 'Pending', exitCode: null, startedAt: null, finishedAt: null }));
}

// When a run ends early, steps that never started are Skipped: they were never run, and
// saying "Pending" forever would suggest they still might be.
export function skipUnstarted(steps: StepStatus[]): StepStatus[] {
  return steps.map((s) => (s.phase === 'Pending' ? { ...s, phase: 'Skipped' } : s));
}

export function resultMessage(steps: StepStatus[]): string {
  const failed = steps.find((s) => s.phase === 'Failed');
  if (failed) return `step ${failed.name} failed with exit code ${failed.exitCode ?? 'unknown'}`;
  return 'Pipeline executed successfully';
}

// What a run needs to execute, frozen when the run is created so that a later replace or
// delete of its resource never changes a run already under way.
export interface RunRecord extends Run {
  spec: JsonObject;
  pipeline: string | null;
}

export interface NewRunInput {
  runid: string;
  resource: string;
  name: string;
  version: number;
  spec: JsonObject;
  pipeline: string | null;
  driver: string | null;
  stepNames: string[];
  now: string;
  requestedBy?: string | null;
}

export function newRun(input: NewRunInput): RunRecord {
  const served = input.driver !== null;
  return {
    runid: input.runid,
    resource: input.resource,
    name: input.name,
    version: input.version,
    driver: input.driver ?? 'none',
    phase: 'Pending',
    reason: served ? Reasons.Waiting : Reasons.NoDriver,
    message: served
      ? 'waiting for a free slot'
      : `no driver serves resources of type "${input.resource}" yet; the run stays Pending until one does`,
    createdAt: input.now,
    startedAt: null,
    finishedAt: null,
    steps: pendingSteps(input.stepNames),
    spec: input.spec,
    pipeline: input.pipeline,
    requestedBy: input.requestedBy ?? null,
  };
}

// Every public field, by name: the compiler rejects a literal that misses a field of Run or
// names one it does not have, and a fixed shape is cheaper on the hot path than copying
// through a list of keys. `spec` and `pipeline` stay behind (a store may not even read them).
export function toPublicRun(run: RunRecord): Run {
  return {
    runid: run.runid,
    resource: run.resource,
    name: run.name,
    version: run.version,
    driver: run.driver,
    phase: run.phase,
    reason: run.reason,
    message: run.message,
    createdAt: run.createdAt,
    startedAt: run.startedAt,
    finishedAt: run.finishedAt,
    steps: run.steps,
    requestedBy: run.requestedBy,
  };
}

// A run id that any actor computes alike from the same seed (e.g. a Pipeline's uid and
// generation), so that two reconciles racing to start "the run of generation 3" name the
// same Run and only one can be created. Shaped as a v4 UUID, like every other run id.
export function runIdFromSeed(digest: Uint8Array): string {
  const b = Array.from(digest.slice(0, 16));
  b[6] = (b[6]! & 0x0f) | 0x40;
  b[8] = (b[8]! & 0x3f) | 0x80;
  const hex = b.map((x) => x.toString(16).padStart(2, '0')).join('');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
