// Collects one Kubernetes run's log into the hub: each step's container in order, framed
// by the command-runner's messages, one log connection per container however many
// clients follow the run. It resumes where the archive ends, so a server restart neither
// loses nor repeats a line.
import type { KubeConfig, V1Pod } from '@kubernetes/client-node';
import { StepMessages, retryAttemptOf, type LogLine } from '../../domain/index.ts';
import { stepStatusesFromPod } from '../../drivers/command-runner/kubernetes/index.ts';
import type { LogArchive } from '../archive.ts';
import type { LogHub } from '../hub.ts';
import { ResumeFilter } from '../resume-filter.ts';
import { followContainerLog, type ContainerLogFollowOptions } from './container-log-follower.ts';

export interface RunLogCollectorOptions {
  kc: KubeConfig;
  namespace: string;
  hub: LogHub;
  archive: LogArchive;
  runid: string;
  pipeline: string;
  driver: string;
  stepNames: string[];
  // Which try of the run this is: 1, then one more for each pod a retry of the Job made.
  attempt: number;
  // This attempt's pod as last observed (informer cache), undefined once it is gone.
  pod: () => V1Pod | undefined;
  // When the run is being stopped from outside (cancel, timeout): its RunStopMessages line.
  stopMessage?: () => string | undefined;
  signal: AbortSignal;
  onBreak?: (err: unknown, container: string) => void;
  // A log connection to `container` was opened (a first one, or a resume after a break).
  onConnect?: (container: string) => void;
  open?: ContainerLogFollowOptions['open'];
}

export interface StepProgress {
  executed: boolean;
  finished: boolean;
  lastOutput?: { ts: string; messages: string[] };
}

/** How many attempts the archive has lines of (1 until a retry's first line). */
export function attemptsInArchive(lines: LogLine[]): number {
  return lines.reduce((n, line) => Math.max(n, retryAttemptOf(line) ?? 1), 1);
}

// What the archive already holds for each step of one attempt (the lines after that
// attempt's retry line): whether its header and its result were written, and the last
// output timestamp with the lines stamped with it.
export function progressFromArchive(lines: LogLine[], stepNames: string[], attempt = 1): Map<string, StepProgress> {
  const progress = new Map<string, StepProgress>(stepNames.map((n) => [n, { executed: false, finished: false }]));
  let current = 1;
  for (const line of lines) {
    current = retryAttemptOf(line) ?? current;
    if (current !== attempt) continue;
    const step = line.step === null ? undefined : progress.get(line.step);
    if (!step) continue;
    if (line.stream === 'system') {
      if (line.message === StepMessages.executing(line.step!)) step.executed = true;
      else step.finished = true;
    } else if (step.lastOutput?.ts === line.ts) step.lastOutput.messages.push(line.message);
    else step.lastOutput = { ts: line.ts, messages: [line.message] };
  }
  return progress;
}

type ContainerState = 'waiting' | 'running' | 'terminated' | 'never';

export class RunLogCollector {
  private readonly options: RunLogCollectorOptions;
  private changed: () => void = () => undefined;

  constructor(options: RunLogCollectorOptions) {
    this.options = options;
  }

  // The pod changed (informer event): re-check whatever the collector waits for.
  poke(): void {
    this.changed();
  }

  private nextChange(): Promise<void> {
    return new Promise((resolve) => {
      this.changed = resolve;
      this.options.signal.addEventListener('abort', () => resolve(), { once: true });
    });
  }

  private stateOf(index: number): { state: ContainerState; exitCode: number | null } {
    const pod = this.options.pod();
    if (!pod) return { state: 'never', exitCode: null };
    const step = stepStatusesFromPod(pod, this.options.stepNames)[index]!;
    if (step.phase === 'Succeeded' || step.phase === 'Failed') return { state: 'terminated', exitCode: step.exitCode };
    if (step.phase === 'Running') return { state: 'running', exitCode: null };
    // A pod that is over (or going away) will never start this container.
    const over = pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed' || pod.metadata?.deletionTimestamp !== undefined;
    return { state: over ? 'never' : 'waiting', exitCode: null };
  }

  // After a clean end of the log stream the container has normally exited, but the pod
  // event saying so may lag: wait for it briefly rather than open a second connection.
  private async terminatedSoon(index: number): Promise<boolean> {
    if (this.stateOf(index).state !== 'running') return true;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.nextChange(), new Promise((resolve) => (timer = setTimeout(resolve, 3_000)))]);
    clearTimeout(timer);
    return this.stateOf(index).state !== 'running';
  }

  private append(step: string | null, stream: LogLine['stream'], message: string, ts?: string): void {
    const { hub, runid, driver, pipeline } = this.options;
    hub.append(runid, { driver, pipeline, step, stream, message, ...(ts ? { ts } : {}) });
  }

  // Resolves when every step that ran has its lines and result in the hub (or on abort).
  async collect(): Promise<void> {
    const { stepNames, archive, runid, signal, attempt } = this.options;
    const archived = archive.query({ runid });
    if (attempt > 1 && attemptsInArchive(archived) < attempt) this.append(null, 'system', StepMessages.retrying(attempt));
    const progress = progressFromArchive(archived, stepNames, attempt);
    for (const [index, name] of stepNames.entries()) {
      const done = progress.get(name)!;
      if (done.finished) continue;
      let observed = this.stateOf(index);
      while (observed.state === 'waiting') {
        if (signal.aborted) return;
        await this.nextChange();
        observed = this.stateOf(index);
      }
      if (observed.state === 'never') return;
      if (!done.executed) this.append(name, 'system', StepMessages.executing(name));
      const pod = this.options.pod()!;
      await followContainerLog({
        kc: this.options.kc,
        namespace: this.options.namespace,
        pod: pod.metadata!.name!,
        container: name,
        filter: new ResumeFilter(done.lastOutput),
        isTerminated: () => this.terminatedSoon(index),
        onLine: (line) => this.append(name, 'stdout', line.message, line.ts),
        signal,
        onBreak: (err) => this.options.onBreak?.(err, name),
        open: this.options.open,
        onConnect: () => this.options.onConnect?.(name),
      });
      if (signal.aborted) return;
      const final = this.stateOf(index);
      if (final.state !== 'terminated' || final.exitCode === null) return;
      if (final.exitCode === 0) this.append(name, 'system', StepMessages.completed());
      else {
        // A step killed by a stop says so, as in local mode, not that it failed.
        const stop = this.options.stopMessage?.();
        this.append(name, 'system', stop ? StepMessages.stopped(stop) : StepMessages.failed(final.exitCode));
        return;
      }
    }
  }
}
