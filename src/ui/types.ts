// The API's shapes as the page reads them (see /openapi.json).
export type RunPhase = 'Pending' | 'Running' | 'Succeeded' | 'Failed' | 'Cancelled';
export const RUN_PHASES: RunPhase[] = ['Pending', 'Running', 'Succeeded', 'Failed', 'Cancelled'];

export interface StepStatus {
  name: string;
  phase: 'Pending' | 'Running' | 'Succeeded' | 'Failed' | 'Skipped' | 'Cancelled';
  exitCode: number | null;
  startedAt: string | null;
  finishedAt: string | null;
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
  // Who started the run, where the server knows (authentication on).
  requestedBy?: string | null;
}

export interface LogEntry {
  runid: string;
  driver: string;
  pipeline: string | null;
  timestamp: string;
  message: string;
  seq: number;
  step: string | null;
  stream: 'stdout' | 'stderr' | 'system';
}

export interface Resource {
  name: string;
  resource: string;
  spec: Record<string, unknown>;
  pipeline?: string;
  metadata: { version: number; createdAt: string; updatedAt: string };
}

export const isTerminal = (phase: RunPhase) => phase === 'Succeeded' || phase === 'Failed' || phase === 'Cancelled';
