// A big log arrives whole (issue 10, point 11): a step prints 100,000 lines in one burst and
// exits at once; through the kubelet's log API, the server's collector and the archive, every
// line reaches GET /logs and the websocket exactly once, in order. On a containerd whose shim
// gives a container's output 2 s to drain after it exits (containerd #12364, Debian's 1.6)
// this loses tens of thousands of lines; the test cluster's containerd has the fix.
import * as k8s from '@kubernetes/client-node';
import { expect } from 'chai';
import { collectFrames, pipeline, request, waitForRun } from '../support/http.ts';
import type { TestServer } from '../support/server.ts';
import { suiteNamespace } from './support/conveyor.ts';

const LINES = 100_000;

interface Line {
  seq: number;
  message: string;
  step: string | null;
}

// What a log must be: the step's header, 1..LINES each once in order, the step's end; and
// seq 1..n without a gap or a repeat.
function expectWhole(lines: Line[], where: string): void {
  const numbers = lines.filter((l) => l.step === 'burst' && /^\d+$/.test(l.message)).map((l) => Number(l.message));
  const missing = LINES - new Set(numbers).size;
  expect(missing, `${where}: lines missing`).to.equal(0);
  expect(numbers.length, `${where}: lines repeated`).to.equal(LINES);
  const outOfOrder = numbers.findIndex((n, i) => n !== i + 1);
  expect(outOfOrder, `${where}: first line out of order`).to.equal(-1);
  expect(lines[0]?.message).to.equal('Executing step: burst');
  expect(lines.at(-1)?.message).to.equal('Step completed successfully');
  expect(lines, where).to.have.lengthOf(LINES + 2);
  const gap = lines.findIndex((l, i) => l.seq !== i + 1);
  expect(gap, `${where}: first seq out of step`).to.equal(-1);
}

describe('kubernetes mode: a burst of 100,000 lines arrives whole', function () {
  this.timeout(300_000);
  let core: k8s.CoreV1Api;
  let namespace: string;
  let server: TestServer;

  const suite = suiteNamespace('conveyor-burst');

  before(async () => {
    ({ core, namespace } = suite);
    server = await suite.start();
  });

  it('prints 100,000 lines and exits at once: GET /logs and the websocket have each line exactly once', async () => {
    // busybox's seq writes the whole burst in a few milliseconds, and the container exits
    // right after: whatever the runtime has not drained by then is what a faulty shim drops.
    const res = await request(server.url, 'POST', '/resources/', pipeline('burst', [['burst', `seq 1 ${LINES}`]]));
    expect(res.status, JSON.stringify(res.body)).to.equal(201);
    const runid = res.body.runid as string;
    const started = Date.now();
    const live = await collectFrames(`${server.wsUrl}/drivers/streams/logs/command-runner/${runid}?format=json`, 240_000);
    const took = Date.now() - started;
    expect(live.closeCode).to.equal(1000);
    expectWhole(live.frames.map((f) => JSON.parse(f) as Line), 'websocket');
    const run = await waitForRun(server.url, runid, ['Succeeded', 'Failed', 'Cancelled'], 60_000);
    expect(run.phase).to.equal('Succeeded');

    const archived = await request(server.url, 'GET', `/logs?runid=${runid}`);
    expect(archived.status).to.equal(200);
    expectWhole(archived.body as Line[], 'GET /logs');
    console.log(`      (${LINES} lines streamed in ${(took / 1000).toFixed(1)} s)`);
  });
});
