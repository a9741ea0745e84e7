// The command-runner in local mode: step order, failures, concurrency, cancel, run listing.
import { expect } from 'chai';
import { existsSync } from 'node:fs';
import { randomInt } from 'node:crypto';
import { join } from 'node:path';
import { collectFrames, pipeline, request, waitForRun } from '../support/http.ts';
import { startServer, type TestServer } from '../support/server.ts';
import { processesRunning } from '../support/processes.ts';

const messagesOf = (frames: string[]) => frames.map((f) => (JSON.parse(f) as string[])[1]);


describe('runs (local mode)', () => {
  let server: TestServer;
  before(async () => {
    server = await startServer({ args: ['--concurrency', '1'] });
  });
  after(async () => {
    await server.stop();
    server.cleanup();
  });

  it('stops at the first failing step: Failed, its exit code, later steps Skipped and never run', async () => {
    const marker = join(server.dataDir, 'third-step-ran');
    const res = await request(server.url, 'POST', '/resources', pipeline('fails-in-the-middle', [
      ['first', 'echo one'],
      ['second', 'echo to-stderr >&2; exit 3'],
      ['third', `touch ${marker}`],
    ]));
    const { frames } = await collectFrames(`${server.wsUrl}/drivers/streams/logs/command-runner/${res.body.runid}`);
    expect(messagesOf(frames)).to.deep.equal([
      'Executing step: first',
      'one',
      'Step completed successfully',
      'Executing step: second',
      'to-stderr',
      'Step failed with exit code 3',
    ]);
    const run = await waitForRun(server.url, res.body.runid);
    expect(run).to.include({ phase: 'Failed', reason: 'StepFailed', message: 'step second failed with exit code 3' });
    expect(run.steps.map((s: any) => [s.name, s.phase, s.exitCode])).to.deep.equal([
      ['first', 'Succeeded', 0],
      ['second', 'Failed', 3],
      ['third', 'Skipped', null],
    ]);
    expect(existsSync(marker)).to.equal(false);
    const full = await request(server.url, 'GET', `/logs?runid=${res.body.runid}`);
    expect(full.body.find((l: any) => l.message === 'to-stderr').stream).to.equal('stderr');
  });

  it('runs commands through /bin/sh -c, so pipes and && work, in one shared workspace', async () => {
    const res = await request(server.url, 'POST', '/resources', pipeline('shell-features', [
      ['write', 'echo hello > greeting && echo written'],
      ['read', 'cat greeting | tr a-z A-Z'],
    ]));
    const { frames } = await collectFrames(`${server.wsUrl}/drivers/streams/logs/command-runner/${res.body.runid}`);
    expect(messagesOf(frames)).to.include.members(['written', 'HELLO']);
    expect((await waitForRun(server.url, res.body.runid)).phase).to.equal('Succeeded');
  });

  it('answers GET /runs/<runid> in the documented shape', async () => {
    const res = await request(server.url, 'POST', '/resources', pipeline('shape', [['only', 'true']]));
    const run = await waitForRun(server.url, res.body.runid);
    expect(run).to.have.keys(['runid', 'resource', 'name', 'version', 'driver', 'phase', 'reason', 'message', 'createdAt', 'startedAt', 'finishedAt', 'steps', 'requestedBy']);
    expect(run).to.include({ runid: res.body.runid, resource: 'pipeline', name: 'shape', driver: 'command-runner', phase: 'Succeeded' });
    // Who started it: in local mode the machine's user; in Kubernetes mode the token's.
    expect(run.requestedBy).to.be.a('string').and.not.equal('');
    expect(run.steps[0]).to.have.keys(['name', 'phase', 'exitCode', 'startedAt', 'finishedAt']);
    expect(Date.parse(run.startedAt)).to.be.at.most(Date.parse(run.finishedAt));
  });

  it('keeps runs beyond the concurrency limit Pending until a slot frees', async () => {
    const long = await request(server.url, 'POST', '/resources', pipeline('holds-the-slot', [['wait', 'sleep 1']]));
    await waitForRun(server.url, long.body.runid, ['Running']);
    const queued = await request(server.url, 'POST', '/resources', pipeline('waits-its-turn', [['go', 'true']]));
    const waiting = await request(server.url, 'GET', `/runs/${queued.body.runid}`);
    expect(waiting.body.phase).to.equal('Pending');
    expect(waiting.body.steps[0].phase).to.equal('Pending');
    const done = await waitForRun(server.url, queued.body.runid);
    expect(done.phase).to.equal('Succeeded');
    expect(Date.parse(done.startedAt)).to.be.at.least(Date.parse((await waitForRun(server.url, long.body.runid)).finishedAt));
  });

  it('cancels a running run: the whole process group stops, the run ends Cancelled and keeps its logs', async () => {
    // Unique to this test run: the machine's other test runs (other checkouts, parallel CI
    // jobs) cancel the same scenario, and their sleeps must not count as ours.
    const marker = `sleep 321.${String(randomInt(1e9)).padStart(9, '0')}`;
    const res = await request(server.url, 'POST', '/resources', pipeline('to-cancel', [
      ['spawns', `echo started; ${marker} & ${marker}`],
      ['after', 'echo never'],
    ]));
    const frames = collectFrames(`${server.wsUrl}/drivers/streams/logs/command-runner/${res.body.runid}`);
    await waitForRun(server.url, res.body.runid, ['Running']);
    const deadline = Date.now() + 5000;
    while (processesRunning(marker).length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(processesRunning(marker).length).to.be.at.least(2);
    const cancel = await request(server.url, 'POST', `/runs/${res.body.runid}/cancel`);
    expect(cancel.status).to.equal(202);
    expect(cancel.body.phase).to.equal('Cancelled');
    const { closeCode, frames: received } = await frames;
    expect(closeCode).to.equal(1000);
    const messages = messagesOf(received);
    expect(messages.slice(0, 2)).to.deep.equal(['Executing step: spawns', 'started']);
    expect(messages.at(-1)).to.equal('Run cancelled');
    expect(messages).not.to.include('never');
    expect(processesRunning(marker)).to.deep.equal([]);
    const run = await waitForRun(server.url, res.body.runid);
    expect(run).to.include({ phase: 'Cancelled', reason: 'Cancelled' });
    expect(run.steps.map((s: any) => s.phase)).to.deep.equal(['Cancelled', 'Skipped']);
    const again = await request(server.url, 'POST', `/runs/${res.body.runid}/cancel`);
    expect(again.status).to.equal(409);
    expect(again.body.error).to.match(/already ended/);
  });

  it('cancels a Pending run before it starts', async () => {
    const long = await request(server.url, 'POST', '/resources', pipeline('busy', [['wait', 'sleep 1']]));
    const queued = await request(server.url, 'POST', '/resources', pipeline('never-starts', [['go', 'echo should-not-run']]));
    const cancel = await request(server.url, 'POST', `/runs/${queued.body.runid}/cancel`);
    expect(cancel.status).to.equal(202);
    const run = await waitForRun(server.url, queued.body.runid);
    expect(run.phase).to.equal('Cancelled');
    expect(run.startedAt).to.equal(null);
    expect(run.steps[0].phase).to.equal('Skipped');
    const { frames } = await collectFrames(`${server.wsUrl}/drivers/streams/logs/command-runner/${queued.body.runid}`);
    expect(messagesOf(frames)).to.deep.equal(['Run cancelled']);
    await waitForRun(server.url, long.body.runid);
  });

  it('answers 404 for cancel and read of an unknown run', async () => {
    const unknown = '00000000-0000-4000-8000-000000000000';
    expect((await request(server.url, 'POST', `/runs/${unknown}/cancel`)).status).to.equal(404);
    const read = await request(server.url, 'GET', `/runs/${unknown}`);
    expect(read.status).to.equal(404);
    expect(read.body.error).to.equal(`run ${unknown} not found`);
  });

  it('fails a run that exceeds timeoutSeconds with DeadlineExceeded', async () => {
    const res = await request(server.url, 'POST', '/resources', pipeline('too-slow', [['slow', 'echo begun; sleep 30']], { timeoutSeconds: 1 }));
    const run = await waitForRun(server.url, res.body.runid, undefined, 15_000);
    expect(run).to.include({ phase: 'Failed', reason: 'DeadlineExceeded' });
    const logs = await request(server.url, 'GET', `/logs?runid=${res.body.runid}`);
    expect(logs.body.map((l: any) => l.message)).to.include('begun');
  });

  it('lists runs newest first, filtered by resource and name, page by page', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const res = await request(server.url, i === 0 ? 'POST' : 'PUT', i === 0 ? '/resources' : '/resources/pipeline/paged', i === 0 ? pipeline('paged', [['s', 'true']]) : { spec: pipeline('paged', [['s', 'true']]).spec });
      ids.push(res.body.runid);
    }
    const first = await request(server.url, 'GET', '/runs?resource=pipeline&name=paged&limit=2');
    expect(first.body.items[0]).not.to.have.any.keys('spec', 'pipeline');
    expect(first.body.items.map((r: any) => r.runid)).to.deep.equal([ids[2], ids[1]]);
    expect(first.body.continue).to.be.a('string');
    const second = await request(server.url, 'GET', `/runs?resource=pipeline&name=paged&limit=2&continue=${first.body.continue}`);
    expect(second.body.items.map((r: any) => r.runid)).to.deep.equal([ids[0]]);
    expect(second.body).not.to.have.property('continue');
    expect((await request(server.url, 'GET', '/runs?limit=0')).status).to.equal(400);
    for (const id of ids) await waitForRun(server.url, id);
  });
});
