import { expect } from 'chai';
import { ManualClock, settle, sleep } from '../../src/controller/clock.ts';
import { TerminalError, WorkQueue, type ReconcileContext } from '../../src/controller/queue.ts';

/** A promise the test resolves by hand. */
function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((done) => (resolve = done));
  return { promise, resolve };
}

/** Waits (on the real event loop) until `condition` holds. */
async function until(what: string, condition: () => boolean, rounds = 200): Promise<void> {
  for (let i = 0; i < rounds; i++) {
    if (condition()) return;
    await settle(1);
  }
  throw new Error(`never happened: ${what}`);
}

const quiet = () => {};

describe('controller: ManualClock', () => {
  it('fires due timers in order, including ones scheduled while advancing', () => {
    const clock = new ManualClock(1000);
    const fired: string[] = [];
    clock.setTimeout(() => fired.push(`b@${clock.now()}`), 20);
    clock.setTimeout(() => {
      fired.push(`a@${clock.now()}`);
      clock.setTimeout(() => fired.push(`c@${clock.now()}`), 5);
    }, 10);
    const cancelled = clock.setTimeout(() => fired.push('never'), 15);
    clock.clearTimeout(cancelled);
    clock.setTimeout(() => fired.push(`d@${clock.now()}`), 100);
    clock.advance(30);
    expect(fired).to.deep.equal(['a@1010', 'c@1015', 'b@1020']);
    expect(clock.now()).to.equal(1030);
    expect(clock.pending).to.equal(1);
    clock.advance(70);
    expect(fired).to.have.length(4);
  });

  it('sleep resolves on the clock and rejects on abort without leaving a timer', async () => {
    const clock = new ManualClock();
    let slept = false;
    const done = sleep(clock, 50).then(() => (slept = true));
    await clock.advanceAsync(49);
    expect(slept).to.equal(false);
    await clock.advanceAsync(1);
    await done;
    expect(slept).to.equal(true);

    const abort = new AbortController();
    const aborted = sleep(clock, 50, abort.signal);
    abort.abort(new Error('stop'));
    await aborted.catch((err: Error) => expect(err.message).to.equal('stop'));
    expect(clock.pending).to.equal(0);
  });
});

describe('controller: WorkQueue', () => {
  it('dedupes a key while it is pending', async () => {
    const queue = new WorkQueue({ clock: new ManualClock(), onError: quiet });
    const adds: string[] = [];
    const q2 = new WorkQueue({ clock: new ManualClock(), onError: quiet, metrics: { add: (k) => adds.push(k) } });
    for (const key of ['ns/a', 'ns/a', 'ns/b', 'ns/a', 'ns/b']) {
      queue.add(key);
      q2.add(key);
    }
    expect(queue.depth).to.equal(2);
    expect(adds).to.deep.equal(['ns/a', 'ns/b']);
    const seen: string[] = [];
    void queue.run(async (key) => {
      seen.push(key);
    });
    await until('both keys processed', () => seen.length === 2);
    await settle();
    expect(seen).to.deep.equal(['ns/a', 'ns/b']);
    await queue.shutDown();
    await q2.shutDown();
  });

  it('addFirst puts a key ahead of the ready ones, moves a pending one to the front, and still dedupes', async () => {
    const queue = new WorkQueue({ clock: new ManualClock(), onError: quiet });
    queue.add('ns/a');
    queue.add('ns/b');
    queue.add('ns/c');
    queue.addFirst('ns/new');
    queue.addFirst('ns/c'); // pending already: moves, is not queued twice
    queue.addFirst('ns/new'); // and again to the front
    expect(queue.depth).to.equal(4);
    const seen: string[] = [];
    void queue.run(async (key) => {
      seen.push(key);
    });
    await until('every key processed', () => seen.length === 4);
    await settle();
    expect(seen).to.deep.equal(['ns/new', 'ns/c', 'ns/a', 'ns/b']);
    await queue.shutDown();
  });

  it('never processes one key in two workers; a key added while in flight runs exactly once more after', async () => {
    const queue = new WorkQueue({ clock: new ManualClock(), onError: quiet });
    const gates = [deferred(), deferred()];
    let calls = 0;
    let inFlight = 0;
    let maxInFlight = 0;
    void queue.run(
      async () => {
        const gate = gates[calls++];
        inFlight++;
        maxInFlight = Math.max(maxInFlight, inFlight);
        await gate?.promise;
        inFlight--;
      },
      { workers: 4 },
    );
    queue.add('ns/a');
    await until('first reconcile started', () => calls === 1);
    for (let i = 0; i < 5; i++) queue.add('ns/a');
    await settle();
    expect(calls, 'not started again while in flight').to.equal(1);
    expect(queue.isProcessing('ns/a')).to.equal(true);
    expect(queue.depth, 'held back, not ready').to.equal(0);
    gates[0]?.resolve();
    await until('second reconcile started', () => calls === 2);
    gates[1]?.resolve();
    await until('second reconcile done', () => !queue.isProcessing('ns/a'));
    await settle();
    expect(calls, 'exactly once more').to.equal(2);
    expect(maxInFlight).to.equal(1);
    await queue.shutDown();
  });

  it('processes different keys in parallel, up to the number of workers', async () => {
    const queue = new WorkQueue({ clock: new ManualClock(), onError: quiet });
    const gate = deferred();
    const active = new Set<string>();
    let maxActive = 0;
    const finished: string[] = [];
    void queue.run(
      async (key) => {
        active.add(key);
        maxActive = Math.max(maxActive, active.size);
        await gate.promise;
        active.delete(key);
        finished.push(key);
      },
      { workers: 3 },
    );
    for (const key of ['ns/a', 'ns/b', 'ns/c', 'ns/d', 'ns/e']) queue.add(key);
    await until('three in flight', () => active.size === 3);
    await settle();
    expect(active.size).to.equal(3);
    expect(queue.depth).to.equal(2);
    gate.resolve();
    await until('all done', () => finished.length === 5);
    expect(maxActive).to.equal(3);
    expect([...finished].sort()).to.deep.equal(['ns/a', 'ns/b', 'ns/c', 'ns/d', 'ns/e']);
    await queue.shutDown();
  });

  it('backs off exponentially per key on errors, caps the delay, and forgets on success', async () => {
    const clock = new ManualClock();
    const errors: Array<[string, number]> = [];
    const retries: string[] = [];
    const queue = new WorkQueue({
      clock,
      backoff: { baseDelayMs: 100, factor: 2, maxDelayMs: 1000 },
      onError: (err, key, n) => errors.push([(err as Error).message, n]),
      metrics: { retry: (k) => retries.push(k) },
    });
    const attempts: number[] = [];
    const seenRetries: number[] = [];
    let failUntil = 7;
    void queue.run(async (key: string, ctx: ReconcileContext) => {
      attempts.push(clock.now());
      seenRetries.push(ctx.retries);
      if (attempts.length <= failUntil) throw new Error(`boom ${key}`);
    });
    queue.add('ns/a');
    await clock.advanceAsync(10_000);
    const gaps = attempts.slice(1).map((t, i) => t - (attempts[i] ?? 0));
    expect(gaps).to.deep.equal([100, 200, 400, 800, 1000, 1000, 1000]);
    expect(seenRetries).to.deep.equal([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(errors).to.have.length(7);
    expect(errors[0]).to.deep.equal(['boom ns/a', 0]);
    expect(retries).to.have.length(7);
    expect(queue.numRequeues('ns/a'), 'forgotten after success').to.equal(0);
    expect(queue.backoffFor('ns/a')).to.equal(100);

    // After the reset, the next failure waits the base delay again.
    failUntil = attempts.length + 1;
    const before = attempts.length;
    queue.add('ns/a');
    await clock.advanceAsync(0);
    await clock.advanceAsync(99);
    expect(attempts.length).to.equal(before + 1);
    await clock.advanceAsync(1);
    expect(attempts.length).to.equal(before + 2);
    await queue.shutDown();
  });

  it('keeps backoff per key: one failing key does not slow another', async () => {
    const clock = new ManualClock();
    const queue = new WorkQueue({ clock, onError: quiet, backoff: { baseDelayMs: 100, maxDelayMs: 60_000 } });
    for (let i = 0; i < 5; i++) queue.addRateLimited('ns/bad');
    expect(queue.numRequeues('ns/bad')).to.equal(5);
    expect(queue.backoffFor('ns/bad')).to.equal(3200);
    expect(queue.backoffFor('ns/good')).to.equal(100);
    queue.forget('ns/bad');
    expect(queue.backoffFor('ns/bad')).to.equal(100);
    await queue.shutDown();
  });

  it('does not retry a TerminalError but reports it', async () => {
    const clock = new ManualClock();
    const errors: unknown[] = [];
    const queue = new WorkQueue({ clock, onError: (err) => errors.push(err) });
    let calls = 0;
    void queue.run(async () => {
      calls++;
      throw new TerminalError('bad spec');
    });
    queue.add('ns/a');
    await clock.advanceAsync(120_000);
    expect(calls).to.equal(1);
    expect(errors).to.have.length(1);
    expect(errors[0]).to.be.instanceOf(TerminalError);
    expect(queue.numRequeues('ns/a')).to.equal(0);
    await queue.shutDown();
  });

  it('honours requeueAfter, and the earliest of several delays wins', async () => {
    const clock = new ManualClock();
    const queue = new WorkQueue({ clock, onError: quiet });
    const attempts: number[] = [];
    void queue.run(async () => {
      attempts.push(clock.now());
      return attempts.length < 3 ? { requeueAfter: 5000 } : undefined;
    });
    queue.add('ns/a');
    await clock.advanceAsync(60_000);
    expect(attempts).to.deep.equal([0, 5000, 10000]);

    queue.addAfter('ns/b', 3000);
    queue.addAfter('ns/b', 1000);
    queue.addAfter('ns/b', 2000);
    await clock.advanceAsync(999);
    expect(attempts).to.have.length(3);
    await clock.advanceAsync(1);
    expect(attempts).to.have.length(4);
    await clock.advanceAsync(10_000);
    expect(attempts, 'the later delays were merged into the earliest').to.have.length(4);
    await queue.shutDown();
  });

  it('resyncs every key periodically, deduped against pending ones, until stopped', async () => {
    const clock = new ManualClock();
    const errors: unknown[] = [];
    const queue = new WorkQueue({ clock, onError: (err) => errors.push(err) });
    const seen: string[] = [];
    let keys: string[] | undefined = ['ns/a', 'ns/b', 'ns/a'];
    const stop = queue.resync(async () => {
      if (!keys) throw new Error('lister down');
      return keys;
    }, 1000);
    await clock.advanceAsync(999);
    expect(queue.depth).to.equal(0);
    await clock.advanceAsync(1);
    expect(queue.depth, 'a and b, a once').to.equal(2);
    void queue.run(async (key) => {
      seen.push(`${key}@${clock.now()}`);
    });
    await clock.advanceAsync(0);
    expect(seen).to.deep.equal(['ns/a@1000', 'ns/b@1000']);
    keys = undefined;
    await clock.advanceAsync(1000);
    expect(errors).to.have.length(1);
    keys = ['ns/c'];
    await clock.advanceAsync(1000);
    expect(seen).to.deep.equal(['ns/a@1000', 'ns/b@1000', 'ns/c@3000']);
    stop();
    await clock.advanceAsync(5000);
    expect(seen).to.have.length(3);
    expect(clock.pending).to.equal(0);
    await queue.shutDown();
  });

  it('shuts down: stops accepting, drops pending keys, cancels timers, waits for in-flight work', async () => {
    const clock = new ManualClock();
    const queue = new WorkQueue({ clock, onError: quiet });
    const gate = deferred();
    const seen: string[] = [];
    let signal: AbortSignal | undefined;
    const running = queue.run(
      async (key, ctx) => {
        seen.push(key);
        signal = ctx.signal;
        if (key === 'ns/slow') await gate.promise;
      },
      { workers: 1 },
    );
    queue.resync(() => ['ns/x'], 1000);
    queue.add('ns/slow');
    queue.add('ns/pending');
    queue.addAfter('ns/later', 500);
    await until('slow started', () => seen.length === 1);
    let stopped = false;
    const shutDown = queue.shutDown().then(() => (stopped = true));
    await settle();
    expect(signal?.aborted, 'in-flight work is told').to.equal(true);
    expect(stopped, 'waits for the in-flight reconcile').to.equal(false);
    queue.add('ns/after');
    queue.addRateLimited('ns/after');
    expect(clock.pending, 'delay and resync timers cancelled').to.equal(0);
    gate.resolve();
    await shutDown;
    await running;
    expect(stopped).to.equal(true);
    await clock.advanceAsync(10_000);
    expect(seen).to.deep.equal(['ns/slow']);
    expect(queue.depth).to.equal(0);
  });

  it('reports depth, latency and work duration through the metric hooks', async () => {
    const clock = new ManualClock();
    const depths: number[] = [];
    const latencies: number[] = [];
    const durations: Array<[number, string]> = [];
    const queue = new WorkQueue({
      clock,
      onError: quiet,
      metrics: {
        depth: (d) => depths.push(d),
        queueLatency: (ms) => latencies.push(ms),
        workDuration: (ms, outcome) => durations.push([ms, outcome]),
      },
    });
    queue.add('ns/a');
    queue.add('ns/b');
    await clock.advanceAsync(250);
    void queue.run(async (key) => {
      await sleep(clock, 40);
      if (key === 'ns/b') throw new Error('no');
    });
    await clock.advanceAsync(100);
    expect(depths.slice(0, 4)).to.deep.equal([1, 2, 1, 0]);
    expect(latencies.slice(0, 2)).to.deep.equal([250, 290]);
    expect(durations.slice(0, 2)).to.deep.equal([
      [40, 'success'],
      [40, 'error'],
    ]);
    await queue.shutDown();
  });

  it('rejects a second run and bad options', async () => {
    const queue = new WorkQueue({ clock: new ManualClock(), onError: quiet });
    expect(() => new WorkQueue({ backoff: { baseDelayMs: 0 } })).to.throw(RangeError);
    expect(() => queue.run(async () => {}, { workers: 0 })).to.throw(RangeError);
    void queue.run(async () => {});
    expect(() => queue.run(async () => {})).to.throw(/already running/);
    await queue.shutDown();
  });
});
