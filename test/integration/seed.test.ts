// The seed tutorial, exactly as written: the contract every other part must keep.
import { expect } from 'chai';
import { join } from 'node:path';
import WebSocket from 'ws';
import { collectFrames, request, seedResource, waitForRun } from '../support/http.ts';
import { suiteServer } from '../support/server.ts';

const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe('seed tutorial (local mode)', () => {
  const suite = suiteServer();

  it('refuses a body over the default limit of 1 MiB with 413, storing nothing', async () => {
    const big = { ...seedResource, name: 'too-big', spec: { ...seedResource.spec, steps: [{ name: 'x', command: 'x'.repeat(1024 * 1024) }] } };
    const res = await request(suite.server.url, 'POST', '/resources/', big);
    expect(res.status).to.equal(413);
    expect(res.body.error).to.match(/larger than the limit of 1048576 bytes/);
    expect((await request(suite.server.url, 'GET', '/resources/pipeline/too-big')).status).to.equal(404);
    // Spread over steps: one command may not be longer than 32,768 characters.
    const steps = Array.from({ length: 32 }, (_, i) => ({ name: `x${i}`, command: `: ${'x'.repeat(31_000)}` }));
    const below = { ...big, name: 'just-below', spec: { ...big.spec, steps } };
    expect((await request(suite.server.url, 'POST', '/resources/', below)).status, 'a body just under the limit').to.equal(201);
  });

  it('says at start-up that it runs in local mode and does not use step images', () => {
    expect(suite.server.output.join('\n')).to.match(/local mode: steps run as local processes and step images are not used/);
  });

  it('answers the seed POST with 201 and exactly the documented body', async () => {
    const res = await request(suite.server.url, 'POST', '/resources/', seedResource);
    expect(res.status).to.equal(201);
    expect(Object.keys(res.body).sort()).to.deep.equal(['message', 'name', 'runid', 'version']);
    expect(res.body.message).to.equal('Resource created successfully');
    expect(res.body.name).to.equal('ubuntu-pipeline-6');
    expect(res.body.version).to.equal('1');
    expect(res.body.runid).to.match(UUID_V4);

    const { frames, closeCode } = await collectFrames(`${suite.server.wsUrl}/drivers/streams/logs/command-runner/${res.body.runid}`);
    expect(closeCode).to.equal(1000);
    const parsed = frames.map((f) => JSON.parse(f) as unknown);
    for (const frame of parsed) {
      expect(frame).to.be.an('array').with.lengthOf(2);
      expect((frame as string[])[0]).to.be.a('string').and.match(/^\d{19}$/);
      expect((frame as string[])[1]).to.be.a('string');
    }
    const timestamps = parsed.map((f) => (f as string[])[0]!);
    expect([...timestamps].sort()).to.deep.equal(timestamps);
    const messages = parsed.map((f) => (f as string[])[1]);
    const workspace = join(suite.server.dataDir, 'workspaces', res.body.runid);
    expect(messages[0]).to.equal('Executing step: print-working-directory');
    expect(messages[1]).to.equal(workspace);
    expect(messages[2]).to.equal('Step completed successfully');
    expect(messages[3]).to.equal('Executing step: list-files');
    expect(messages[4]).to.equal('total 0');
    expect(messages.at(-1)).to.equal('Step completed successfully');
    expect(messages).to.have.lengthOf(6);
  });

  it('replays the same frames, then closes, to a client that connects after the run ended', async () => {
    const { body } = await request(suite.server.url, 'POST', '/resources/', { ...seedResource, name: 'seed-replay' });
    await waitForRun(suite.server.url, body.runid);
    const first = await collectFrames(`${suite.server.wsUrl}/drivers/streams/logs/command-runner/${body.runid}`);
    const second = await collectFrames(`${suite.server.wsUrl}/drivers/streams/logs/command-runner/${body.runid}`);
    expect(first.closeCode).to.equal(1000);
    expect(second.closeCode).to.equal(1000);
    expect(second.frames).to.deep.equal(first.frames);
    expect(first.frames).to.have.lengthOf(6);
  });

  it('answers 404 before the upgrade for an unknown run id or driver', async () => {
    for (const path of [
      '/drivers/streams/logs/command-runner/fbdf5edf-66d4-46ce-859a-8ee44d6c9463',
      '/drivers/streams/logs/command-runner/not-a-run',
    ]) {
      const status = await new Promise<number>((resolve, reject) => {
        const ws = new WebSocket(suite.server.wsUrl + path);
        ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
        ws.on('open', () => reject(new Error('upgraded')));
        ws.on('error', () => undefined);
      });
      expect(status).to.equal(404);
    }
    const run = await request(suite.server.url, 'POST', '/resources', { ...seedResource, name: 'driver-check' });
    const wrongDriver = await request(suite.server.url, 'GET', `/logs/streams/no-such-driver/${run.body.runid}`);
    expect(wrongDriver.status).to.equal(404);
    expect(wrongDriver.body.error).to.match(/no logs from driver "no-such-driver"/);
  });
});
