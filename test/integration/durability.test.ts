// Restarts, crashes and shutdowns: nothing stored is lost, no run is left Running, and every
// line a client saw replays again, once, in order.
import { expect } from 'chai';
import WebSocket from 'ws';
import { collectFrames, pipeline, request, seedResource, waitForRun } from '../support/http.ts';
import { newDataDir, startServer } from '../support/server.ts';
import { rmSync } from 'node:fs';
import { processesWithEnv } from '../support/processes.ts';

describe('durability (local mode)', () => {
  const dirs: string[] = [];
  const dataDir = () => {
    const dir = newDataDir();
    dirs.push(dir);
    return dir;
  };
  after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

  it('keeps resources, versions, runs and every log line across a restart', async () => {
    const dir = dataDir();
    const first = await startServer({ dataDir: dir });
    const created = await request(first.url, 'POST', '/resources', seedResource);
    await waitForRun(first.url, created.body.runid);
    const replaced = await request(first.url, 'PUT', '/resources/pipeline/ubuntu-pipeline-6', { spec: seedResource.spec });
    await waitForRun(first.url, replaced.body.runid);
    const before = await collectFrames(`${first.wsUrl}/drivers/streams/logs/command-runner/${created.body.runid}`);
    expect(await first.stop()).to.equal(0);

    const second = await startServer({ dataDir: dir });
    try {
      expect((await request(second.url, 'GET', '/resources/pipeline/ubuntu-pipeline-6')).body.metadata.version).to.equal('2');
      expect((await request(second.url, 'GET', '/resources/pipeline/ubuntu-pipeline-6/1')).status).to.equal(200);
      expect((await request(second.url, 'GET', `/runs/${created.body.runid}`)).body.phase).to.equal('Succeeded');
      const after = await collectFrames(`${second.wsUrl}/drivers/streams/logs/command-runner/${created.body.runid}`);
      expect(after.frames).to.deep.equal(before.frames);
      expect(after.frames).to.have.lengthOf(6);
      // The next run's seq continues from the archive, not from 1 again.
      const third = await request(second.url, 'PUT', '/resources/pipeline/ubuntu-pipeline-6', { spec: seedResource.spec });
      expect(third.body.version).to.equal('3');
    } finally {
      await second.stop();
    }
  });

  it('after kill -9 mid-run: the run ends Failed/Interrupted, and every line a client received replays once, in order', async () => {
    const dir = dataDir();
    const first = await startServer({ dataDir: dir });
    const res = await request(first.url, 'POST', '/resources', pipeline('cut-off', [['count', 'for i in $(seq 1 50); do echo line-$i; done; sleep 30'], ['later', 'echo never']]));
    const received: string[] = [];
    const ws = new WebSocket(`${first.wsUrl}/drivers/streams/logs/command-runner/${res.body.runid}?format=json`);
    ws.on('message', (data) => received.push(data.toString()));
    ws.on('error', () => undefined);
    const deadline = Date.now() + 10_000;
    while (!received.some((f) => JSON.parse(f).message === 'line-50') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    await first.kill();
    expect(received.length).to.equal(51);
    expect(processesWithEnv(`CONVEYOR_RUN_ID=${res.body.runid}`).length, 'kill -9 leaves the step running').to.be.above(0);

    const second = await startServer({ dataDir: dir });
    try {
      const run = (await request(second.url, 'GET', `/runs/${res.body.runid}`)).body;
      expect(run).to.include({ phase: 'Failed', reason: 'Interrupted' });
      expect(run.finishedAt).to.be.a('string');
      expect(run.steps.map((s: any) => s.phase)).to.deep.equal(['Failed', 'Skipped']);
      const replay = await collectFrames(`${second.wsUrl}/drivers/streams/logs/command-runner/${res.body.runid}?format=json`);
      expect(replay.closeCode).to.equal(1000);
      expect(replay.frames.slice(0, received.length)).to.deep.equal(received);
      const seqs = replay.frames.map((f) => JSON.parse(f).seq);
      expect(seqs).to.deep.equal(Array.from({ length: seqs.length }, (_, i) => i + 1));
      expect(JSON.parse(replay.frames.at(-1)!).message).to.match(/^Run interrupted/);
      expect(replay.frames.map((f) => JSON.parse(f).message)).not.to.include('never');
      expect(processesWithEnv(`CONVEYOR_RUN_ID=${res.body.runid}`), 'the cut-off step\'s processes were stopped').to.deep.equal([]);
      const metrics: string = (await request(second.url, 'GET', '/metrics')).body;
      expect(metrics, 'the interrupted run is counted as it ended').to.match(/conveyor_run_duration_seconds_count\{phase="Failed"\} 1\b/);
      // Pending work is not lost either: the server keeps taking runs after recovery.
      const next = await request(second.url, 'POST', '/resources', pipeline('after-crash', [['ok', 'true']]));
      expect((await waitForRun(second.url, next.body.runid)).phase).to.equal('Succeeded');
    } finally {
      await second.stop();
    }
  });

  it('on SIGTERM exits 0 even when nothing reads its log any more (stdout a broken pipe)', async () => {
    const server = await startServer({ dataDir: dataDir() });
    server.process.stdout!.destroy(); // the reader of the server's stdout goes away
    // Each request logs a line, which now meets EPIPE.
    for (let i = 0; i < 20; i++) expect((await request(server.url, 'GET', '/ping')).status).to.equal(200);
    const exited = server.stop();
    const code = await Promise.race([exited, new Promise((resolve) => setTimeout(() => resolve('still running after 10 s'), 10_000))]);
    if (code !== 0) await server.kill();
    expect(code).to.equal(0);
  });

  it('on SIGTERM lets a running run finish, closes cleanly and exits 0', async () => {
    const server = await startServer({ dataDir: dataDir() });
    const res = await request(server.url, 'POST', '/resources', pipeline('drained', [['short', 'sleep 0.5; echo done']]));
    await waitForRun(server.url, res.body.runid, ['Running']);
    let opened!: () => void;
    const open = new Promise<void>((resolve) => (opened = resolve));
    const frames = collectFrames(`${server.wsUrl}/drivers/streams/logs/command-runner/${res.body.runid}`, 20_000, opened);
    await open;
    expect(await server.stop()).to.equal(0);
    const { frames: got, closeCode } = await frames;
    expect(closeCode).to.equal(1000);
    expect(got.map((f) => JSON.parse(f)[1])).to.deep.equal(['Executing step: short', 'done', 'Step completed successfully']);
    const again = await startServer({ dataDir: server.dataDir });
    try {
      expect((await request(again.url, 'GET', `/runs/${res.body.runid}`)).body.phase).to.equal('Succeeded');
    } finally {
      await again.stop();
    }
  });

  it('on SIGTERM past the grace period interrupts a long run with a final status and a complete log', async () => {
    const server = await startServer({ dataDir: dataDir(), args: ['--shutdown-grace', '0'] });
    const res = await request(server.url, 'POST', '/resources', pipeline('too-long', [['long', 'echo begun; sleep 60']]));
    const deadline = Date.now() + 5000;
    while (Date.now() < deadline) {
      const logs = await request(server.url, 'GET', `/logs?runid=${res.body.runid}`);
      if (logs.body.some((l: any) => l.message === 'begun')) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    const started = Date.now();
    expect(await server.stop()).to.equal(0);
    expect(Date.now() - started).to.be.below(8000);
    const again = await startServer({ dataDir: server.dataDir });
    try {
      const run = (await request(again.url, 'GET', `/runs/${res.body.runid}`)).body;
      expect(run).to.include({ phase: 'Failed', reason: 'Interrupted' });
      const logs = (await request(again.url, 'GET', `/logs?runid=${res.body.runid}`)).body.map((l: any) => l.message);
      expect(logs).to.deep.equal(['Executing step: long', 'begun', 'Step stopped (run interrupted: the server shut down before the run finished)', 'Run interrupted: the server shut down before the run finished']);
    } finally {
      await again.stop();
    }
  });
});
