// External drivers over NATS JetStream: the run executor for every resource type that the
// built-in command-runner does not serve, and the log source for their lines.
//
// A run of such a type carries one step per driver (see domain/run.ts driverSteps). For the
// current step, once some driver's consumer on `messages` would receive it, the event is
// published (message id `<run id>:<step>`, so a re-publish after a crash is deduplicated by
// JetStream). The run goes Running at the driver's first line or result; its result ends the
// step, and either hands the resource to the next driver of the chain or ends the run. Lines
// arrive twice (two routes per generation) and are archived once (LineDeduper).
import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import { jetstream, type ConsumerInfo, type ConsumerMessages, type JetStreamClient, type JetStreamManager, type JsMsg } from '@nats-io/jetstream';
import type { Logger } from 'pino';
import { BadRequestError, Reasons, isTerminal, skipUnstarted, type DriverResult, type Resource, type RunRecord, type StepStatus } from '../../domain/index.ts';
import type { DriverBus, DriverInfo, RunControl } from '../../api/context.ts';
import type { LogHub } from '../../logs/index.ts';
import type { Store } from '../../store/index.ts';
import { background, reportBackgroundError } from '../../observability/background.ts';
import { Consumers, LOG_ACK_WAIT_MS, connectNats, ensureTopology, type NatsAuth } from './connection.ts';
import { LineDeduper } from './line-deduper.ts';
import {
  Streams,
  Subjects,
  currentLineKey,
  parseDriverLog,
  parseDriverResult,
  parseLegacyLog,
  parseLokiPush,
  resourceEvent,
  subjectMatches,
  typesOfFilters,
  type DriverLine,
  type DriverResultMessage,
} from './wire.ts';

export interface NatsDriverBusOptions {
  url: string;
  auth: NatsAuth;
  store: Store;
  hub: LogHub;
  logger: Logger;
  // How long a run waits while no driver serves its type before it fails NoDriver.
  noDriverTimeoutMs: number;
  // How often driver consumers are re-read (new drivers, acks, the NoDriver timeout).
  pollMs?: number;
  // An older-generation driver reports no result: its ack of the event, then this long
  // without a result, ends the step as succeeded.
  ackGraceMs?: number;
}

const decoder = new TextDecoder();

class RunEnded extends Error {}
function abandon(): never {
  throw new RunEnded('run already ended');
}

function json(data: Uint8Array): unknown {
  try {
    return JSON.parse(decoder.decode(data));
  } catch {
    return undefined;
  }
}

function isDriverRun(run: RunRecord): boolean {
  return run.steps.length > 0 && run.steps.every((s) => s.event !== undefined);
}

function filtersOf(info: ConsumerInfo): string[] {
  const c = info.config as { filter_subject?: string; filter_subjects?: string[] };
  return c.filter_subjects?.length ? c.filter_subjects : c.filter_subject ? [c.filter_subject] : [];
}

function consumerReceives(info: ConsumerInfo, subject: string): boolean {
  const filters = filtersOf(info);
  return filters.length === 0 || filters.some((f) => subjectMatches(f, subject));
}

export class NatsDriverBus implements DriverBus {
  private readonly o: Required<NatsDriverBusOptions>;
  private nc?: NatsConnection;
  private js?: JetStreamClient;
  private jsm?: JetStreamManager;
  private consumers: ConsumerInfo[] = [];
  private readonly deduper = new LineDeduper();
  // Runs of external drivers not yet ended, by id (a cache of the store's record).
  private readonly active = new Map<string, RunRecord>();
  private readonly busy = new Set<string>();
  private readonly alive = new Set<string>();
  // Stream sequences of JetStream lines delivered to this server and not yet acked.
  private readonly heldLines = new Set<number>();
  private readonly ackedAt = new Map<string, number>();
  // Lines and results are handled one at a time, in arrival order.
  private chain: Promise<void> = Promise.resolve();
  private readonly subs: Subscription[] = [];
  private readonly loops: ConsumerMessages[] = [];
  private pollTimer?: NodeJS.Timeout;
  private unsubscribe?: () => void;
  private stopped = false;

  constructor(options: NatsDriverBusOptions) {
    this.o = {
      pollMs: Math.max(50, Math.min(1_000, Math.floor(options.noDriverTimeoutMs / 4))),
      ackGraceMs: 2_000,
      ...options,
    };
  }

  async start(): Promise<void> {
    try {
      this.nc = await connectNats(this.o.url, this.o.auth, 'conveyor');
      this.jsm = await ensureTopology(this.nc);
    } catch (err) {
      // The connection is given up on: its close failing changes nothing worth reporting.
      await this.nc?.close().catch((closeErr: unknown) => this.o.logger.debug({ err: closeErr }, 'closing the NATS connection failed'));
      throw new Error(`cannot reach the NATS server at ${this.o.url}: ${(err as Error).message}`);
    }
    this.js = jetstream(this.nc);
    const { logger } = this.o;
    background('nats-status', async () => {
      for await (const s of this.nc!.status()) logger.info({ nats: s.type }, 'NATS connection status');
    });

    // First in the queue, so that no line or result is handled before the runs under way
    // are known again (and the lines they already have).
    this.enqueue(() => this.resume());
    this.unsubscribe = this.o.store.onRunChange((run) => {
      if (!isDriverRun(run)) return;
      if (isTerminal(run.phase)) this.active.delete(run.runid);
      else {
        this.active.set(run.runid, run);
        this.kick(run.runid);
      }
    });

    // Current generation: JetStream (durable, survives our restarts) and core (live).
    this.loops.push(await this.consume(Streams.logsEngine.name, Consumers.logs, (m) => this.onLogMessage(m)));
    this.loops.push(await this.consume(Streams.pipelineEngine.name, Consumers.results, (m) => this.onResultMessage(m)));
    this.subs.push(
      this.nc.subscribe('live.logs.>', { callback: (_e, m) => this.enqueue(() => this.onLine('live', parseDriverLog(json(m.data)))) }),
      // Older generation: `driver:<driver>:logs:<runid>` is one subject token.
      this.nc.subscribe('*', {
        callback: (_e, m) => {
          if (m.subject.startsWith('driver:')) this.enqueue(() => this.onLine('legacy', parseLegacyLog(m.subject, json(m.data))));
        },
      }),
    );
    await this.poll().catch((err: unknown) => this.o.logger.warn({ err }, 'reading driver consumers failed'));
    this.schedulePoll();
  }

  // The runs of external drivers not yet ended, from the store; retried until it answers.
  private async resume(): Promise<void> {
    for (let attempt = 0; !this.stopped; attempt++) {
      try {
        for (const run of await this.o.store.runsInPhase('Pending', 'Running')) {
          if (!isDriverRun(run)) continue;
          this.active.set(run.runid, run);
          // JetStream redelivers lines this server archived but had not acked when it stopped.
          for (const line of this.o.hub.committed(run.runid)) {
            if (line.stream !== 'system') this.deduper.seed(run.runid, line.driver, currentLineKey(line.ts, line.message));
          }
        }
        return;
      } catch (err) {
        this.o.logger.warn({ err, attempt }, 'reading the runs under way failed; retrying');
        await new Promise((r) => setTimeout(r, Math.min(5_000, 200 * 2 ** attempt)));
      }
    }
  }

  private async consume(stream: string, name: string, handle: (m: JsMsg) => void): Promise<ConsumerMessages> {
    const consumer = await this.js!.consumers.get(stream, name);
    const messages = await consumer.consume({ max_messages: 256 });
    background(`jetstream-consumer-${stream}`, async () => {
      for await (const m of messages) handle(m);
    });
    return messages;
  }

  // Runs `work` after everything queued before it; acks `msg` once its effect is committed
  // (a line is in the archive), so a crash before that means redelivery, not loss.
  private enqueue(work: () => Promise<void>, msg?: JsMsg, done?: () => void): void {
    this.chain = this.chain
      .then(work)
      .then(
        () => {
          if (!msg) return;
          this.o.hub.flush();
          msg.ack();
        },
        (err: unknown) => {
          this.o.logger.error({ err }, 'driver message not handled');
          msg?.nak(1_000);
        },
      )
      .finally(done);
  }

  // A line redelivered while its first delivery still waits in the queue is that same line.
  private onLogMessage(m: JsMsg): void {
    const seq = m.seq;
    if (this.heldLines.has(seq)) return;
    this.heldLines.add(seq);
    this.enqueue(() => this.onLine('jetstream', parseDriverLog(json(m.data))), m, () => this.heldLines.delete(seq));
  }

  // A driver sends its lines before its result, but the two come through different consumers.
  // Once every line in the log stream has been delivered to us (queued here), the result is
  // queued behind them, so the run ends after its last line, never before.
  private onResultMessage(m: JsMsg): void {
    const result = parseDriverResult(json(m.data));
    this.enqueue(async () => {
      await this.logsDelivered();
      await new Promise((r) => setImmediate(r));
      this.enqueue(() => this.onResult(result), m);
    });
  }

  private schedulePoll(): void {
    if (this.stopped) return;
    this.pollTimer = setTimeout(() => {
      background('driver-consumer-poll', this.poll().finally(() => this.schedulePoll()));
    }, this.o.pollMs);
  }

  private async poll(): Promise<void> {
    const list: ConsumerInfo[] = [];
    for await (const c of this.jsm!.consumers.list(Streams.messages.name)) list.push(c);
    this.consumers = list;
    for (const runid of [...this.active.keys()]) await this.advance(runid).catch((err: unknown) => this.o.logger.warn({ err, runid }, 'advancing a driver run failed'));
  }

  // ---- runs ----

  private servedBy(subject: string): ConsumerInfo[] {
    return this.consumers.filter((c) => consumerReceives(c, subject));
  }

  private subjectOf(run: RunRecord, step: StepStatus): string {
    return run.pipeline ? Subjects.driverResource(step.driver!, run.resource) : Subjects.resource(run.resource);
  }

  private currentStep(run: RunRecord): number {
    return run.steps.findIndex((s) => s.phase === 'Pending' || s.phase === 'Running');
  }

  private kick(runid: string): void {
    this.advance(runid).catch((err: unknown) => this.o.logger.warn({ err, runid }, 'advancing a driver run failed; the next poll retries'));
  }

  // A write that lost a race with the run's end (a fast driver's result) changes nothing.
  private async update(runid: string, change: (run: RunRecord) => RunRecord): Promise<RunRecord | undefined> {
    try {
      return await this.o.store.updateRun(runid, (r) => (isTerminal(r.phase) ? abandon() : change(r)));
    } catch (err) {
      if (err instanceof RunEnded) return undefined;
      throw err;
    }
  }

  // Moves one run on from what is observed: publish its current step's event once a driver
  // would get it, fail it when none has come in time, or end an older driver's step on ack.
  private async advance(runid: string): Promise<void> {
    if (this.busy.has(runid) || this.stopped) return;
    this.busy.add(runid);
    try {
      const run = await this.o.store.getRun(runid);
      if (!run || isTerminal(run.phase)) {
        this.active.delete(runid);
        return;
      }
      const index = this.currentStep(run);
      if (index < 0) return;
      const step = run.steps[index]!;
      const subject = this.subjectOf(run, step);
      const served = this.servedBy(subject);
      if (step.dispatchedAt === undefined) {
        if (served.length === 0) return this.waitForDriver(run, index, subject);
        return await this.dispatch(run, index, subject, served);
      }
      if (step.result === undefined && step.eventSeq !== undefined) this.checkAcked(run, index, served);
    } finally {
      this.busy.delete(runid);
    }
  }

  private async waitForDriver(run: RunRecord, index: number, subject: string): Promise<void> {
    const since = Date.parse(index === 0 ? run.createdAt : (run.steps[index - 1]!.finishedAt ?? run.createdAt));
    const step = run.steps[index]!;
    const what = run.pipeline ? `driver "${step.driver}" (step ${step.name} of pipeline "${run.pipeline}")` : `any driver of resources of type "${run.resource}"`;
    if (Date.now() - since >= this.o.noDriverTimeoutMs) {
      const message = `no driver came: ${what} was not connected within ${Math.round(this.o.noDriverTimeoutMs / 1000)} s (subject ${subject})`;
      await this.finish(run.runid, 'Failed', Reasons.NoDriver, message, `Run failed: ${message}`);
      return;
    }
    if (run.reason !== Reasons.NoDriver) {
      await this.update(run.runid, (r) => ({ ...r, reason: Reasons.NoDriver, message: `waiting for ${what}: none is connected` }));
    }
  }

  private async dispatch(run: RunRecord, index: number, subject: string, served: ConsumerInfo[]): Promise<void> {
    const step = run.steps[index]!;
    const resource: Resource = {
      name: run.name,
      resource: run.resource,
      spec: run.spec,
      ...(run.pipeline ? { pipeline: run.pipeline } : {}),
      metadata: { version: run.version, createdAt: run.createdAt, updatedAt: run.createdAt },
    };
    const id = `${run.runid}:${index}`;
    const message = resourceEvent(step.event!, resource, id, run.runid);
    const ack = await this.js!.publish(subject, JSON.stringify(message), { msgID: id });
    const driver = step.driver || (served.length === 1 ? served[0]!.name : '');
    const now = new Date().toISOString();
    await this.update(run.runid, (r) => ({
      ...r,
      driver: driver || r.driver,
      reason: r.phase === 'Pending' ? Reasons.Waiting : r.reason,
      message: r.phase === 'Pending' ? `handed to ${driver ? `driver "${driver}"` : served.map((c) => c.name).join(', ')}; waiting for it to start` : r.message,
      steps: r.steps.map((s, i) => (i === index ? { ...s, driver: s.driver || driver, dispatchedAt: now, eventSeq: ack.seq } : s)),
    }));
    this.o.logger.info({ runid: run.runid, subject, seq: ack.seq, duplicate: ack.duplicate }, 'resource event published');
  }

  // Older drivers (conveyor-py) report no result: their ack of the event is the end.
  private checkAcked(run: RunRecord, index: number, served: ConsumerInfo[]): void {
    const step = run.steps[index]!;
    const key = `${run.runid}:${index}`;
    const acked = served.some((c) => (!step.driver || c.name === step.driver) && c.ack_floor.stream_seq >= step.eventSeq!);
    if (!acked) return;
    const at = this.ackedAt.get(key) ?? Date.now();
    this.ackedAt.set(key, at);
    if (Date.now() - at < this.o.ackGraceMs) return;
    this.ackedAt.delete(key);
    const driver = step.driver || served[0]?.name || 'unknown';
    this.enqueue(() =>
      this.onResult({ runid: run.runid, driver, success: true, message: 'the driver acknowledged the event (it reports no result)', data: null }),
    );
  }

  private async markAlive(run: RunRecord, driver: string): Promise<RunRecord> {
    const key = `${run.runid}:${driver}`;
    if (this.alive.has(key) && run.phase === 'Running') return run;
    const index = run.steps.findIndex((s) => (s.driver === driver || s.driver === '') && (s.phase === 'Pending' || s.phase === 'Running'));
    if (index < 0 || (run.phase === 'Running' && run.steps[index]!.phase === 'Running')) {
      this.alive.add(key);
      return run;
    }
    const now = new Date().toISOString();
    const next = await this.update(run.runid, (r) => ({
      ...r,
      driver,
      phase: 'Running',
      reason: Reasons.Started,
      message: `driver "${driver}" is running`,
      startedAt: r.startedAt ?? now,
      steps: r.steps.map((s, i) => (i === index ? { ...s, driver, phase: 'Running', startedAt: s.startedAt ?? now } : s)),
    }));
    this.alive.add(key);
    return next ?? run;
  }

  private async runFor(runid: string): Promise<RunRecord | undefined> {
    return this.active.get(runid) ?? (await this.o.store.getRun(runid));
  }

  private async onLine(route: string, line: DriverLine | undefined): Promise<void> {
    if (!line) return;
    if (!this.deduper.accept(route, line.runid, line.driver, line.key)) return;
    let run = await this.runFor(line.runid);
    if (!run || isTerminal(run.phase) || this.o.hub.hasEnded(line.runid)) {
      this.o.logger.debug({ runid: line.runid, driver: line.driver }, 'log line for a run that is not running: dropped');
      return;
    }
    run = await this.markAlive(run, line.driver);
    const step = run.steps.find((s) => s.driver === line.driver)?.name ?? null;
    this.o.hub.append(line.runid, { driver: line.driver, pipeline: run.name, step, stream: 'stdout', message: line.message, ts: line.ts });
  }

  private async onResult(result: DriverResultMessage | undefined): Promise<void> {
    if (!result) return;
    let run = await this.o.store.getRun(result.runid);
    if (!run || isTerminal(run.phase)) return; // already ended: a redelivered result changes nothing
    run = await this.markAlive(run, result.driver);
    const index = run.steps.findIndex((s) => s.driver === result.driver && s.result === undefined && (s.phase === 'Running' || s.phase === 'Pending'));
    if (index < 0) return;
    const outcome: DriverResult = { success: result.success, message: result.message, data: result.data };
    const now = new Date().toISOString();
    const updated = await this.update(run.runid, (r) => ({
      ...r,
      steps: r.steps.map((s, i) => (i === index ? { ...s, phase: result.success ? 'Succeeded' : 'Failed', finishedAt: now, result: outcome } : s)),
    }));
    if (!updated) return;
    const step = updated.steps[index]!;
    const more = updated.steps.some((s) => s.phase === 'Pending');
    if (!result.success) {
      const message = `driver "${result.driver}" failed${updated.pipeline ? ` at step ${step.name}` : ''}: ${result.message || 'no message'}`;
      await this.finish(run.runid, 'Failed', Reasons.DriverFailed, message, `Run failed: ${message}`);
    } else if (!more) {
      await this.finish(run.runid, 'Succeeded', Reasons.Succeeded, result.message || `driver "${result.driver}" succeeded`, null);
    } else {
      this.kick(run.runid);
    }
  }

  // Waits until every line in the log stream has been delivered to this server and none is
  // held by anyone else: lines a crashed predecessor had in hand come back after the log
  // consumer's ack wait (LOG_ACK_WAIT_MS), and the run must not end before them.
  private async logsDelivered(): Promise<void> {
    const deadline = Date.now() + LOG_ACK_WAIT_MS + 2_000;
    while (Date.now() < deadline && !this.stopped) {
      const info = await this.jsm!.consumers.info(Streams.logsEngine.name, Consumers.logs);
      if (info.num_pending === 0 && info.num_ack_pending <= this.heldLines.size) return;
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  private async finish(runid: string, phase: 'Succeeded' | 'Failed' | 'Cancelled', reason: string, message: string, lastLine: string | null): Promise<void> {
    const run = await this.o.store.getRun(runid);
    if (!run || isTerminal(run.phase)) return;
    if (lastLine && !this.o.hub.hasEnded(runid)) {
      this.o.hub.append(runid, { driver: run.driver, pipeline: run.name, step: null, stream: 'system', message: lastLine });
    }
    await this.update(runid, (r) => ({ ...r, phase, reason, message, finishedAt: new Date().toISOString(), steps: skipUnstarted(r.steps) }));
    this.active.delete(runid);
    this.o.hub.end(runid);
    // Late second copies of its lines are dropped as lines of an ended run.
    setTimeout(() => this.deduper.forget(runid), 60_000).unref();
    for (const key of this.alive) if (key.startsWith(`${runid}:`)) this.alive.delete(key);
  }

  // ---- API ----

  // Upstream's wire has no cancel event: the run ends Cancelled here, and what its driver
  // still sends for it (lines, a result) is dropped.
  async cancel(runid: string, otherwise: RunControl): Promise<RunRecord> {
    const run = await this.o.store.getRun(runid);
    if (!run || !isDriverRun(run) || isTerminal(run.phase)) return otherwise.cancel(runid);
    await this.finish(runid, 'Cancelled', Reasons.Cancelled, 'cancelled; its driver was not told (the driver wire has no cancel)', 'Run cancelled');
    return (await this.o.store.getRun(runid))!;
  }

  async listDrivers(): Promise<DriverInfo[]> {
    const list: DriverInfo[] = [];
    for await (const c of this.jsm!.consumers.list(Streams.messages.name)) {
      const filters = filtersOf(c);
      const last = c.delivered.last_active ?? c.ack_floor.last_active;
      list.push({
        name: c.name,
        resources: typesOfFilters(filters),
        subjects: filters,
        // A pull consumer with a waiting request, or a push consumer with a subscriber.
        connected: c.push_bound === true || c.num_waiting > 0,
        pending: c.num_pending,
        ackPending: c.num_ack_pending,
        redelivered: c.num_redelivered,
        lastActive: last ? new Date(last).toISOString() : null,
      });
    }
    return list.sort((a, b) => a.name.localeCompare(b.name));
  }

  async acceptLokiPush(body: unknown): Promise<number> {
    const lines = parseLokiPush(body);
    if (typeof lines === 'string') throw new BadRequestError(lines);
    for (const line of lines) this.enqueue(() => this.onLine('loki', line));
    await this.chain;
    return lines.length;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.pollTimer) clearTimeout(this.pollTimer);
    this.unsubscribe?.();
    for (const loop of this.loops) loop.stop();
    await this.chain.catch((err: unknown) => reportBackgroundError('nats-chain', err));
    this.o.hub.flush();
    await this.nc?.drain().catch((err: unknown) => reportBackgroundError('nats-drain', err));
  }
}
