// Local mode's controller: starts Pending command-runner runs up to a concurrency limit,
// cancels and times them out, and at start-up settles runs a crash left Running.
import { COMMAND_RUNNER, ConflictError, NotFoundError, Reasons, isTerminal, skipUnstarted, type PipelineSpec, type RunRecord } from '../domain/index.ts';
import type { LocalCommandRunner, StopReason } from '../drivers/command-runner/local/index.ts';
import type { LogHub } from '../logs/index.ts';
import type { Store } from '../store/index.ts';
import { reportBackgroundError } from '../observability/background.ts';

export interface LocalSchedulerOptions {
  store: Store;
  hub: LogHub;
  runner: LocalCommandRunner;
  concurrency: number;
  onRunFinished?: (run: RunRecord) => void;
}

interface Active {
  abort: AbortController;
  done: Promise<void>;
  timeout?: NodeJS.Timeout;
}

export class LocalScheduler {
  private readonly options: LocalSchedulerOptions;
  private readonly active = new Map<string, Active>();
  private unsubscribe?: () => void;
  private passRunning = false;
  private passAgain = false;
  private stopping = false;

  constructor(options: LocalSchedulerOptions) {
    this.options = options;
  }

  get runningCount(): number {
    return this.active.size;
  }

  async start(): Promise<void> {
    await this.recoverInterrupted();
    this.unsubscribe = this.options.store.onRunChange((run) => {
      // Runs of other drivers (or of none) can never start here: no pass for them.
      if (run.phase === 'Pending' && run.driver === COMMAND_RUNNER) this.kick();
    });
    this.kick();
  }

  // A run left Running by a crash cannot be resumed (its processes died with the server):
  // it ends Failed/Interrupted, and its log ends, so followers are never left waiting.
  private async recoverInterrupted(): Promise<void> {
    const { store, hub } = this.options;
    await this.options.runner.sweepLeftovers();
    for (const run of await store.runsInPhase('Running')) {
      // Runs of external drivers go on without this server: the bus picks them up again.
      if (run.driver !== COMMAND_RUNNER) continue;
      await this.options.runner.stopOrphans(run.runid);
      const now = new Date().toISOString();
      hub.append(run.runid, {
        driver: run.driver,
        pipeline: run.name,
        step: null,
        stream: 'system',
        message: 'Run interrupted: the server stopped before the run finished',
      });
      const ended = await store.updateRun(run.runid, (r) => ({
        ...r,
        phase: 'Failed',
        reason: Reasons.Interrupted,
        message: 'the server stopped while the run was running',
        finishedAt: now,
        steps: skipUnstarted(r.steps.map((s) => (s.phase === 'Running' ? { ...s, phase: 'Failed', finishedAt: now } : s))),
      }));
      hub.end(run.runid);
      this.options.onRunFinished?.(ended);
    }
  }

  kick(): void {
    if (this.stopping) return;
    if (this.passRunning) {
      this.passAgain = true;
      return;
    }
    this.passRunning = true;
    this.pass()
      .catch((err: unknown) => {
        // A pass that failed (the store, say) is tried again shortly: Pending runs must not
        // wait for the next unrelated kick.
        reportBackgroundError('local-scheduler-pass', err);
        this.passAgain = true;
        return new Promise((resolve) => setTimeout(resolve, 1000).unref());
      })
      .finally(() => {
        this.passRunning = false;
        if (this.passAgain) {
          this.passAgain = false;
          this.kick();
        }
      })
      .catch((err: unknown) => reportBackgroundError('local-scheduler-pass', err));
  }

  private async pass(): Promise<void> {
    if (this.active.size >= this.options.concurrency) return;
    // Only as many as could start (a launched run stays Pending until it begins executing):
    // reading every Pending run on each pass made the server slower the longer the queue.
    const pending = await this.options.store.nextPending(COMMAND_RUNNER, this.options.concurrency);
    for (const run of pending) {
      if (this.stopping || this.active.size >= this.options.concurrency) return;
      if (run.driver !== COMMAND_RUNNER || this.active.has(run.runid)) continue;
      this.launch(run);
    }
  }

  private launch(run: RunRecord): void {
    const abort = new AbortController();
    const spec = run.spec as unknown as PipelineSpec;
    const active: Active = { abort, done: Promise.resolve() };
    if (spec.timeoutSeconds) {
      active.timeout = setTimeout(() => abort.abort(Reasons.DeadlineExceeded satisfies StopReason), spec.timeoutSeconds * 1000);
    }
    this.active.set(run.runid, active);
    active.done = this.options.runner
      .execute(run, abort.signal)
      .then((finished) => this.options.onRunFinished?.(finished))
      .catch((err: unknown) => reportBackgroundError('local-run', err))
      .finally(() => {
        if (active.timeout) clearTimeout(active.timeout);
        this.active.delete(run.runid);
        this.kick();
      });
  }

  async cancel(runid: string): Promise<RunRecord> {
    const { store, hub } = this.options;
    const run = await store.getRun(runid);
    if (!run) throw new NotFoundError(`run ${runid} not found`);
    if (isTerminal(run.phase)) throw new ConflictError(`run ${runid} has already ended (${run.phase})`);
    const active = this.active.get(runid);
    if (active) {
      active.abort.abort(Reasons.Cancelled satisfies StopReason);
      await active.done;
      return (await store.getRun(runid))!;
    }
    hub.append(runid, { driver: run.driver, pipeline: run.name, step: null, stream: 'system', message: 'Run cancelled' });
    const cancelled = await store.updateRun(runid, (r) => {
      if (r.phase !== 'Pending') throw new ConflictError(`run ${runid} is ${r.phase} and cannot be cancelled here`);
      return {
        ...r,
        phase: 'Cancelled',
        reason: Reasons.Cancelled,
        message: 'cancelled before it started',
        finishedAt: new Date().toISOString(),
        steps: skipUnstarted(r.steps),
      };
    });
    hub.end(runid);
    this.options.onRunFinished?.(cancelled);
    return cancelled;
  }

  // Stops starting runs, gives running ones `graceMs` to finish, then interrupts the rest
  // so each ends with a final status and a complete log instead of a dangling Running.
  async drain(graceMs: number): Promise<void> {
    this.stopping = true;
    this.unsubscribe?.();
    const all = () => Promise.all([...this.active.values()].map((a) => a.done));
    let timer: NodeJS.Timeout | undefined;
    const graceOver = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), graceMs);
    });
    const outcome = await Promise.race([all().then(() => 'done' as const), graceOver]);
    if (timer) clearTimeout(timer);
    if (outcome === 'timeout') {
      for (const active of this.active.values()) active.abort.abort(Reasons.Interrupted satisfies StopReason);
      await all();
    }
  }
}
