// The command-runner in local mode: the run's steps as child processes, one after another,
// in a per-run workspace directory. The pipeline's image is not used here.
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import {
  COMMAND_RUNNER,
  Reasons,
  RunStopMessages,
  StepMessages,
  resultMessage,
  skipUnstarted,
  type PipelineSpec,
  type RunRecord,
  type StepStatus,
} from '../../../domain/index.ts';
import type { LogHub } from '../../../logs/index.ts';
import type { Store } from '../../../store/index.ts';
import { runStepProcess } from './step-process.ts';
import type { Containment, RunProcesses } from './containment.ts';
import { stepEnvironment } from './step-environment.ts';
import { reportBackgroundError } from '../../../observability/background.ts';
import { DEFAULT_MAX_LINE_BYTES } from '../../../logs/line-splitter.ts';

export { openContainment, type Containment } from './containment.ts';
export { stepEnvironment } from './step-environment.ts';

const SHUTDOWN_KILL_GRACE_MS = 1_000;
// Uncommitted output beyond which steps' output is no longer read until the archive catches
// up (it only falls behind when it fails; a healthy flush empties the backlog every tick).
const MAX_BACKLOG_BYTES = 32 * 1024 * 1024;

export interface LocalRunnerOptions {
  store: Store;
  hub: LogHub;
  workspaceRoot: string;
  containment: Containment;
  killGraceMs?: number;
  maxLineBytes?: number;
}

// Why a run was stopped from outside; `Cancelled` ends it Cancelled, anything else Failed.
export type StopReason = typeof Reasons.Cancelled | typeof Reasons.Interrupted | typeof Reasons.DeadlineExceeded;

export class LocalCommandRunner {
  readonly driver = COMMAND_RUNNER;
  private readonly store: Store;
  private readonly hub: LogHub;
  private readonly workspaceRoot: string;
  private readonly killGraceMs: number;
  private readonly maxLineBytes: number;
  private readonly containment: Containment;

  constructor(options: LocalRunnerOptions) {
    this.store = options.store;
    this.hub = options.hub;
    this.workspaceRoot = options.workspaceRoot;
    this.containment = options.containment;
    this.killGraceMs = options.killGraceMs ?? 5_000;
    this.maxLineBytes = options.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES;
  }

  // At start-up: stops every process a previous server on this data directory left
  // behind (after kill -9), found by its cgroup or its working directory, not by its
  // environment. Returns how many were found.
  sweepLeftovers(): Promise<number> {
    return this.containment.sweepLeftovers(this.workspaceRoot);
  }

  // Stops what the runner keeps running between runs.
  close(): Promise<void> {
    return this.containment.close();
  }

  // Stops processes a crashed server left behind for one interrupted run.
  async stopOrphans(runid: string): Promise<void> {
    await this.containment.forRun(runid, join(this.workspaceRoot, runid)).dispose();
  }

  private log(run: RunRecord, step: string | null, stream: 'stdout' | 'stderr' | 'system', message: string): void {
    this.hub.append(run.runid, { driver: COMMAND_RUNNER, pipeline: run.name, step, stream, message });
  }

  private setStep(runid: string, index: number, patch: Partial<StepStatus>): Promise<RunRecord> {
    return this.store.updateRun(runid, (r) => ({ ...r, steps: r.steps.map((s, i) => (i === index ? { ...s, ...patch } : s)) }));
  }

  // Executes the run to its end. `signal` aborts with a StopReason as its reason.
  async execute(initial: RunRecord, signal: AbortSignal): Promise<RunRecord> {
    const spec = initial.spec as unknown as PipelineSpec;
    const workspace = join(this.workspaceRoot, initial.runid);
    await mkdir(workspace, { recursive: true });
    let run = await this.store.updateRun(initial.runid, (r) => ({
      ...r,
      phase: 'Running',
      reason: Reasons.Started,
      message: 'running steps',
      startedAt: new Date().toISOString(),
    }));
    let processes: RunProcesses | undefined;

    let stopped: StopReason | undefined;
    let startFailure: string | undefined;
    try {
      processes = this.containment.forRun(run.runid, workspace);
      for (const [index, step] of spec.steps.entries()) {
        if (signal.aborted) {
          stopped = signal.reason as StopReason;
          break;
        }
        this.log(run, step.name, 'system', StepMessages.executing(step.name));
        run = await this.setStep(run.runid, index, { phase: 'Running', startedAt: new Date().toISOString() });
        const outcome = await runStepProcess({
          command: step.command,
          cwd: workspace,
          env: stepEnvironment({ runid: run.runid, workspace, step: step.name, pipelineEnv: spec.env }),
          processes: processes.step(),
          signal,
          // A server shutting down has already given the run its grace period.
          killGraceMs: (reason) => (reason === Reasons.Interrupted ? Math.min(SHUTDOWN_KILL_GRACE_MS, this.killGraceMs) : this.killGraceMs),
          maxLineBytes: this.maxLineBytes,
          backpressure: () => (this.hub.backlogBytes > MAX_BACKLOG_BYTES ? this.hub.committedSoon() : undefined),
          onLine: (stream, line) => this.log(run, step.name, stream, line),
        });
        const finishedAt = new Date().toISOString();
        if (outcome.spawnError !== undefined) {
          // Not the command's failure but ours to start it: the step and the run fail
          // with StartFailed, and nothing is left Running.
          this.log(run, step.name, 'system', `Step failed to start: ${outcome.spawnError}`);
          run = await this.setStep(run.runid, index, { phase: 'Failed', exitCode: outcome.exitCode, finishedAt });
          startFailure = `step ${step.name} could not be started: ${outcome.spawnError}`;
          break;
        }
        if (outcome.aborted) {
          stopped = signal.reason as StopReason;
          this.log(run, step.name, 'system', StepMessages.stopped(RunStopMessages[stopped]));
          run = await this.setStep(run.runid, index, { phase: 'Cancelled', exitCode: outcome.exitCode, finishedAt });
          break;
        }
        if (outcome.exitCode === 0) {
          this.log(run, step.name, 'system', StepMessages.completed());
          run = await this.setStep(run.runid, index, { phase: 'Succeeded', exitCode: 0, finishedAt });
        } else {
          this.log(run, step.name, 'system', StepMessages.failed(outcome.exitCode));
          run = await this.setStep(run.runid, index, { phase: 'Failed', exitCode: outcome.exitCode, finishedAt });
          break;
        }
      }
    } catch (err) {
      this.log(run, null, 'system', `Run failed to execute: ${(err as Error).message}`);
      const now = new Date().toISOString();
      await this.store
        .updateRun(run.runid, (r) => ({ ...r, steps: r.steps.map((s) => (s.phase === 'Running' ? { ...s, phase: 'Failed', finishedAt: now } : s)) }))
        .catch((err: unknown) => reportBackgroundError('local-runner.fail-steps', err));
      return this.finish(run.runid, 'Failed', Reasons.StartFailed, (err as Error).message, workspace, processes);
    }

    if (startFailure !== undefined) {
      this.log(run, null, 'system', `Run failed to execute: ${startFailure}`);
      return this.finish(run.runid, 'Failed', Reasons.StartFailed, startFailure, workspace, processes);
    }
    if (stopped) {
      this.log(run, null, 'system', RunStopMessages[stopped]);
      const phase = stopped === Reasons.Cancelled ? 'Cancelled' : 'Failed';
      return this.finish(run.runid, phase, stopped, RunStopMessages[stopped], workspace, processes);
    }
    const message = resultMessage(run.steps);
    const failed = run.steps.some((s) => s.phase === 'Failed');
    return this.finish(run.runid, failed ? 'Failed' : 'Succeeded', failed ? Reasons.StepFailed : Reasons.Succeeded, message, workspace, processes);
  }

  private async finish(
    runid: string,
    phase: RunRecord['phase'],
    reason: string,
    message: string,
    workspace: string,
    processes: RunProcesses | undefined,
  ): Promise<RunRecord> {
    await processes?.dispose();
    const run = await this.store.updateRun(runid, (r) => ({
      ...r,
      phase,
      reason,
      message,
      finishedAt: new Date().toISOString(),
      steps: skipUnstarted(r.steps),
    }));
    this.hub.end(runid);
    await rm(workspace, { recursive: true, force: true });
    return run;
  }
}

