// Collects one Kubernetes run's log into the hub: each step's container in order, framed
// by the command-runner's messages, one log connection per container however many
// clients follow the run. It resumes where the archive ends, so a server restart neither
// loses nor repeats a line.
import type { KubeConfig, V1Pod } from '@kubernetes/client-node';
import { StepMessages, nanosFromIso, nowNanos, type LogLine, type LogMark } from '../../domain/index.ts';
import { isoTime, noFurtherStep, stepStatusesFromPod } from '../../drivers/command-runner/kubernetes/index.ts';
import type { ArchivedMark, LastOutput, LogArchive } from '../archive.ts';
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
  maxLineBytes?: number;
}

export interface StepProgress {
  executed: boolean;
  finished: boolean;
  lastOutput?: { ts: string; messages: string[] };
}

// Where the archive is, as the collector needs it: its framing marks, and a step's newest
// output after a given line. LogArchive provides both.
export interface ArchivedProgress {
  marks(runid: string): ArchivedMark[];
  lastOutput(runid: string, afterSeq: number, step: string): LastOutput | undefined;
}

/** How many attempts the archive has lines of (1 until a retry's first line). */
export function attemptsInArchive(marks: ArchivedMark[]): number {
  return marks.reduce((n, mark) => Math.max(n, mark.attempt), 1);
}

// What the archive already holds for each step of one attempt, from the marks of that
// attempt: whether the step's start and end lines were written, and (for a step started
// but not ended) its newest output, from which a resumed log stream drops what it has.
export function progressFromArchive(archive: ArchivedProgress, runid: string, stepNames: string[], attempt = 1): Map<string, StepProgress> {
  const progress = new Map<string, StepProgress>(stepNames.map((n) => [n, { executed: false, finished: false }]));
  const startedAt = new Map<string, number>();
  for (const mark of archive.marks(runid)) {
    if (mark.attempt !== attempt || mark.step === null) continue;
    const step = progress.get(mark.step);
    if (!step) continue;
    if (mark.event === 'start') {
      step.executed = true;
      startedAt.set(mark.step, mark.seq);
    } else if (mark.event === 'end') step.finished = true;
  }
  for (const [name, seq] of startedAt) {
    const step = progress.get(name)!;
    if (step.finished) continue;
    const lastOutput = archive.lastOutput(runid, seq, name);
    if (lastOutput) step.lastOutput = lastOutput;
  }
  return progress;
}

// A line Conveyor writes about an event (a step's start or end) is stamped with the time
// of that event, as the cluster recorded it, so that sorting frames by timestamp gives
// their order: the container times have whole seconds only, so the stamp is kept just
// after the line before it (never before the output it follows).
export function eventStamp(eventIso: string | null, previousTs: string | undefined): string {
  const floor = previousTs === undefined ? 0n : BigInt(previousTs) + 1n;
  const event = eventIso === null ? undefined : BigInt(nanosFromIso(eventIso));
  if (event === undefined) return (floor > BigInt(nowNanos()) ? floor : BigInt(nowNanos())).toString();
  return (event > floor ? event : floor).toString();
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

  private stateOf(index: number): { state: ContainerState; exitCode: number | null; startedAt: string | null; finishedAt: string | null } {
    const pod = this.options.pod();
    const none = { exitCode: null, startedAt: null, finishedAt: null };
    if (!pod) return { state: 'never', ...none };
    const step = stepStatusesFromPod(pod, this.options.stepNames)[index]!;
    const times = { startedAt: step.startedAt, finishedAt: step.finishedAt };
    if (step.phase === 'Succeeded' || step.phase === 'Failed') return { state: 'terminated', exitCode: step.exitCode, ...times };
    if (step.phase === 'Running') return { state: 'running', exitCode: null, ...times };
    // A pod that is over will never start this container. One being deleted still may,
    // while its kubelet has not seen the deletion: its lines must be collected then.
    return { state: noFurtherStep(pod) ? 'never' : 'waiting', ...none };
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

  private append(step: string | null, stream: LogLine['stream'], message: string, ts?: string, event?: LogMark['event']): void {
    const { hub, runid, driver, pipeline, attempt } = this.options;
    hub.append(runid, { driver, pipeline, step, stream, message, ...(ts ? { ts } : {}), ...(event ? { mark: { attempt, event } } : {}) });
  }

  // A framing line, stamped at the cluster's time of the event it reports.
  private appendEvent(step: string | null, message: string, event: LogMark['event'], eventIso: string | null): void {
    this.append(step, 'system', message, eventStamp(eventIso, this.options.hub.lastLine(this.options.runid)?.ts), event);
  }

  // Resolves when every step that ran has its lines and result in the hub (or on abort).
  async collect(): Promise<void> {
    const { stepNames, archive, runid, signal, attempt } = this.options;
    if (attempt > 1 && attemptsInArchive(archive.marks(runid)) < attempt) {
      this.appendEvent(null, StepMessages.retrying(attempt), 'attempt', isoTime(this.options.pod()?.metadata?.creationTimestamp));
    }
    const progress = progressFromArchive(archive, runid, stepNames, attempt);
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
      if (!done.executed) this.appendEvent(name, StepMessages.executing(name), 'start', observed.startedAt);
      const pod = this.options.pod()!;
      await followContainerLog({
        kc: this.options.kc,
        namespace: this.options.namespace,
        pod: pod.metadata!.name!,
        container: name,
        filter: new ResumeFilter(done.lastOutput),
        isTerminated: () => this.terminatedSoon(index),
        isPodGone: () => this.options.pod() === undefined,
        onLine: (line) => this.append(name, 'stdout', line.message, line.ts),
        signal,
        onBreak: (err) => this.options.onBreak?.(err, name),
        open: this.options.open,
        onConnect: () => this.options.onConnect?.(name),
        maxLineBytes: this.options.maxLineBytes,
      });
      if (signal.aborted) return;
      const final = this.stateOf(index);
      if (final.state !== 'terminated' || final.exitCode === null) return;
      if (final.exitCode === 0) this.appendEvent(name, StepMessages.completed(), 'end', final.finishedAt);
      else {
        // A step killed by a stop says so, as in local mode, not that it failed.
        const stop = this.options.stopMessage?.();
        this.appendEvent(name, stop ? StepMessages.stopped(stop) : StepMessages.failed(final.exitCode), 'end', final.finishedAt);
        return;
      }
    }
  }
}
