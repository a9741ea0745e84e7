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
import { killRunProcesses } from './orphans.ts';

export interface LocalRunnerOptions {
  store: Store;
  hub: LogHub;
  workspaceRoot: string;
  killGraceMs?: number;
}

// Why a run was stopped from outside; `Cancelled` ends it Cancelled, anything else Failed.
export type StopReason = typeof Reasons.Cancelled | typeof Reasons.Interrupted | typeof Reasons.DeadlineExceeded;

export class LocalCommandRunner {
  readonly driver = COMMAND_RUNNER;
  private readonly store: Store;
  private readonly hub: LogHub;
  private readonly workspaceRoot: string;
  private readonly killGraceMs: number;

  constructor(options: LocalRunnerOptions) {
    this.store = options.store;
    this.hub = options.hub;
    this.workspaceRoot = options.workspaceRoot;
    this.killGraceMs = options.killGraceMs ?? 5_000;
  }

  // Stops processes a crashed server left behind for this run; returns how many.
  stopOrphans(runid: string): number {
    return killRunProcesses(runid);
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
    const env: NodeJS.ProcessEnv = { ...process.env, CONVEYOR_RUN_ID: run.runid, CONVEYOR_WORKSPACE: workspace };
    for (const { name, value } of spec.env ?? []) env[name] = value;

    let stopped: StopReason | undefined;
    try {
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
          env: { ...env, CONVEYOR_STEP: step.name },
          signal,
          killGraceMs: this.killGraceMs,
          onLine: (stream, line) => this.log(run, step.name, stream, line),
        });
        const finishedAt = new Date().toISOString();
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
      return this.finish(run.runid, 'Failed', Reasons.StartFailed, (err as Error).message, workspace);
    }

    if (stopped) {
      this.log(run, null, 'system', RunStopMessages[stopped]);
      const phase = stopped === Reasons.Cancelled ? 'Cancelled' : 'Failed';
      return this.finish(run.runid, phase, stopped, RunStopMessages[stopped], workspace);
    }
    const message = resultMessage(run.steps);
    const failed = run.steps.some((s) => s.phase === 'Failed');
    return this.finish(run.runid, failed ? 'Failed' : 'Succeeded', failed ? Reasons.StepFailed : Reasons.Succeeded, message, workspace);
  }

  private async finish(runid: string, phase: RunRecord['phase'], reason: string, message: string, workspace: string): Promise<RunRecord> {
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

