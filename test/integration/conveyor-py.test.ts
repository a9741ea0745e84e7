// The older driver generation with upstream's own Python SDK, unchanged: conveyor-py 0.0.3
// from PyPI (installed by scripts/deps/conveyor-py.sh) against Conveyor and a real
// nats-server. Its lines come twice (NATS and Loki's push route) and are archived once.
import { expect } from 'chai';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { collectFrames, request, waitForRun } from '../support/http.ts';
import { startNats, type TestNats } from '../support/nats.ts';
import { repoRoot, startServer, type TestServer } from '../support/server.ts';

const venv = process.env.CONVEYOR_PY_VENV ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'conveyor-py/venv');
const python = join(venv, 'bin/python');

describe('a conveyor-py 0.0.3 driver (older generation) against Conveyor', function () {
  let nats: TestNats;
  let server: TestServer;
  let driver: ChildProcess;
  const call = (method: string, path: string, body?: unknown) => request(server.url, method, path, body);

  before(async function () {
    if (!existsSync(python)) throw new Error(`no conveyor-py virtualenv at ${venv}: run sh scripts/deps/conveyor-py.sh`);
    nats = await startNats();
    server = await startServer({ args: ['--nats-url', nats.url] });
    const seedSchema = (await call('GET', '/resource-definitions/pipeline')).body.schema;
    expect((await call('POST', '/resource-definitions', { name: 'py-pipeline', schema: seedSchema })).status).to.equal(201);
    // The SDK's modules import each other by bare name (`from exceptions import ...`), so its
    // runtime directory goes on the path, as its own examples run it.
    const site = await new Promise<string>((resolve, reject) => {
      const p = spawn(python, ['-c', 'import importlib.util,os; print(os.path.dirname(importlib.util.find_spec("conveyor").origin))']);
      let out = '';
      p.stdout.on('data', (d) => (out += d));
      p.once('exit', (code) => (code === 0 ? resolve(out.trim()) : reject(new Error('conveyor-py is not importable'))));
    });
    driver = spawn(python, [join(repoRoot, 'test/fixtures/conveyor-py-driver.py')], {
      env: { ...process.env, PYTHONPATH: join(site, 'runtime'), NATS_URL: nats.url, CONVEYOR_URL: server.url, DRIVER_NAME: 'py-runner', RESOURCE_TYPE: 'py-pipeline' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const output: string[] = [];
    createInterface({ input: driver.stderr! }).on('line', (l) => output.push(l));
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the python driver did not start:\n${output.join('\n')}`)), 20_000);
      createInterface({ input: driver.stdout! }).on('line', (l) => {
        if (l === 'ready') {
          clearTimeout(timer);
          resolve();
        }
      });
      driver.once('exit', (code) => reject(new Error(`the python driver exited with ${code}:\n${output.join('\n')}`)));
    });
  });
  after(async () => {
    driver?.kill('SIGKILL');
    await server?.stop();
    server?.cleanup();
    await nats?.stop();
    nats?.cleanup();
  });

  it('receives the seed-shaped resource of its type; its lines arrive once on the websocket route; its ack ends the run', async () => {
    const listed = ((await call('GET', '/drivers')).body as any[]).find((d) => d.name === 'py-runner');
    expect(listed, 'listed from its JetStream consumer').to.include({ name: 'py-runner' });
    const created = await call('POST', '/resources/', {
      name: 'ubuntu-pipeline-6',
      resource: 'py-pipeline',
      spec: { image: 'jimjuniorb/hello-node:1.2.3', steps: [{ name: 'print-working-directory', command: 'pwd' }, { name: 'list-files', command: 'ls -l' }] },
    });
    expect(created.status).to.equal(201);
    const runid = created.body.runid;
    const socket = collectFrames(`${server.wsUrl}/drivers/streams/logs/py-runner/${runid}`);
    const run = await waitForRun(server.url, runid);
    expect(run).to.include({ phase: 'Succeeded', driver: 'py-runner' });
    const frames = (await socket).frames.map((f) => JSON.parse(f));
    expect(frames.map((f) => f[1])).to.deep.equal([
      'python driver got py-pipeline/ubuntu-pipeline-6 (create)',
      'would run: pwd',
      'would run: ls -l',
      'done',
    ]);
    for (const [ts] of frames) expect(ts).to.match(/^\d{19}$/);
    const logs = (await call('GET', `/logs?runid=${runid}&driver=py-runner`)).body as any[];
    expect(logs.map((l) => l.seq)).to.deep.equal([1, 2, 3, 4]);
  });
});
