// The API's shapes as the page reads them (see /openapi.json).
// Run shapes are the server's own domain types, imported for their types only (erased by
// the bundler, so the page still loads nothing of the server).
import type { Run, RunPhase, StepStatus } from '../domain/run.ts';
export type { Run, RunPhase, StepStatus };
export const RUN_PHASES: RunPhase[] = ['Pending', 'Running', 'Succeeded', 'Failed', 'Cancelled'];

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
