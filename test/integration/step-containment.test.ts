// Local mode: every process a step starts ends with the step, however it detached; a step
// that leaves a process holding its output cannot wedge its run, a timeout, a cancel, the
// concurrency slot or the server's shutdown. Run with the per-run cgroup (where this machine
// allows it) and with the /proc fallback (CONVEYOR_CGROUP_FREEZER=off).
import { expect } from 'chai';
import { accessSync, constants } from 'node:fs';
import { randomUUID } from 'node:crypto';
import { pipeline, request, waitForRun } from '../support/http.ts';
import { startServer, type TestServer } from '../support/server.ts';
import { processesRunning } from '../support/processes.ts';

function freezerWritable(): boolean {
  try {
    accessSync('/sys/fs/cgroup/freezer/cgroup.procs', constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function gone(token: string, timeoutMs = 5_000): Promise<number[]> {
  const deadline = Date.now() + timeoutMs;
  let left = processesRunning(token);
  while (left.length > 0 && Date.now() < deadline) {
    await sleep(50);
    left = processesRunning(token);
  }
  return left;
}

async function logOf(server: TestServer, runid: string): Promise<string[]> {
  return (await request(server.url, 'GET', `/logs?runid=${runid}`)).body.map((l: any) => l.message);
}

const modes = [
  { title: 'per-run cgroup', env: {}, available: freezerWritable() },
  { title: '/proc fallback', env: { CONVEYOR_CGROUP_FREEZER: 'off' }, available: true },
];

for (const mode of modes) {
  (mode.available ? describe : describe.skip)(`step containment: ${mode.title} (local mode)`, function () {
    let server: TestServer;
    before(async () => {
      server = await startServer({ args: ['--concurrency', '1'], env: mode.env });
    });
    after(async () => {
      await server.stop();
      server.cleanup();
    });

    it('starts the server with the expected containment', () => {
      const banner = server.output.map((l) => JSON.parse(l)).find((l: any) => l.url);
      expect(banner.stepContainment).to.equal(mode.title === 'per-run cgroup' ? 'cgroup' : 'scan');
    });

    it('ends a run whose step left a detached process holding its stdout, and kills that process', async () => {
      const token = `holder-${randomUUID()}`;
      const res = await request(server.url, 'POST', '/resources', pipeline('holder', [['leave', `setsid sh -c 'sleep 300; echo ${token}' & echo left`], ['next', 'echo next']]));
      const run = await waitForRun(server.url, res.body.runid, ['Succeeded', 'Failed', 'Cancelled'], 10_000);
      expect(run.phase).to.equal('Succeeded');
      expect(await logOf(server, res.body.runid)).to.include.members(['left', 'next']);
      expect(await gone(token)).to.deep.equal([]);
    });

    it('kills a setsid + env -i escapee when its step ends', async () => {
      const token = `escapee-${randomUUID()}`;
      const res = await request(server.url, 'POST', '/resources', pipeline('escapee', [['escape', `env -i setsid sh -c 'sleep 300; echo ${token}' </dev/null >/dev/null 2>&1 & sleep 0.2`]]));
      expect((await waitForRun(server.url, res.body.runid, undefined, 10_000)).phase).to.equal('Succeeded');
      expect(await gone(token)).to.deep.equal([]);
    });

    it('times a wedged step out within seconds, and frees the slot', async () => {
      const token = `timeout-${randomUUID()}`;
      const res = await request(server.url, 'POST', '/resources', pipeline('wedged-timeout', [['hold', `setsid sh -c 'sleep 300; echo ${token}' & sleep 300`]], { timeoutSeconds: 1 }));
      const run = await waitForRun(server.url, res.body.runid, ['Succeeded', 'Failed', 'Cancelled'], 8_000);
      expect(run).to.include({ phase: 'Failed', reason: 'DeadlineExceeded' });
      expect(await gone(token)).to.deep.equal([]);
      // Concurrency 1: the next run can only start if the slot was freed.
      const next = await request(server.url, 'POST', '/resources', pipeline('after-timeout', [['ok', 'echo ok']]));
      expect((await waitForRun(server.url, next.body.runid, undefined, 5_000)).phase).to.equal('Succeeded');
    });

    it('answers a cancel of a wedged step within seconds, and frees the slot', async () => {
      const token = `cancel-${randomUUID()}`;
      const res = await request(server.url, 'POST', '/resources', pipeline('wedged-cancel', [['hold', `setsid sh -c 'trap "" TERM; sleep 300; echo ${token}' & echo holding; sleep 300`]]));
      const deadline = Date.now() + 5_000;
      while (!(await logOf(server, res.body.runid)).includes('holding') && Date.now() < deadline) await sleep(50);
      const started = Date.now();
      const cancelled = await request(server.url, 'POST', `/runs/${res.body.runid}/cancel`);
      expect(Date.now() - started).to.be.below(8_000);
      expect(cancelled.body).to.include({ phase: 'Cancelled' });
      expect(await gone(token)).to.deep.equal([]);
      const next = await request(server.url, 'POST', '/resources', pipeline('after-cancel', [['ok', 'echo ok']]));
      expect((await waitForRun(server.url, next.body.runid, undefined, 5_000)).phase).to.equal('Succeeded');
    });
  });
}

describe('step containment across servers (local mode)', () => {
  it('after kill -9, the next server kills the steps left behind without reading their environment', async function () {
    if (!freezerWritable()) this.skip();
    const token = `leftover-${randomUUID()}`;
    const first = await startServer();
    // The escapee leaves the workspace, its session and its environment: only the cgroup
    // still knows it.
    const res = await request(first.url, 'POST', '/resources', pipeline('leftover', [['escape', `cd / && env -i setsid sh -c 'sleep 300; echo ${token}' </dev/null >/dev/null 2>&1 & echo escaped; sleep 300`]]));
    const deadline = Date.now() + 5_000;
    while (!(await logOf(first, res.body.runid)).includes('escaped') && Date.now() < deadline) await sleep(50);
    await first.kill();
    expect(processesRunning(token), 'kill -9 leaves the escapee running').not.to.be.empty;
    const second = await startServer({ dataDir: first.dataDir });
    try {
      expect(await gone(token, 3_000)).to.deep.equal([]);
      expect((await request(second.url, 'GET', `/runs/${res.body.runid}`)).body).to.include({ phase: 'Failed', reason: 'Interrupted' });
    } finally {
      await second.stop();
      second.cleanup();
    }
  });

  it('on SIGTERM exits within the grace period plus 5 s, even with a step that ignores TERM and a detached process holding its output', async () => {
    const token = `shutdown-${randomUUID()}`;
    const server = await startServer({ args: ['--shutdown-grace', '1'] });
    try {
      const res = await request(server.url, 'POST', '/resources', pipeline('stubborn', [['hold', `trap "" TERM; setsid sh -c 'trap "" TERM; sleep 300; echo ${token}' & echo holding; sleep 300`]]));
      const deadline = Date.now() + 5_000;
      while (!(await logOf(server, res.body.runid)).includes('holding') && Date.now() < deadline) await sleep(50);
      const started = Date.now();
      const code = await server.stop();
      expect(Date.now() - started).to.be.below(1_000 + 5_000);
      expect(code).to.equal(0);
      expect(await gone(token)).to.deep.equal([]);
    } finally {
      await server.kill();
      server.cleanup();
    }
  });
});
