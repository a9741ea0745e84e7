// External drivers over a real nats-server with JetStream: a driver speaking upstream's
// current wire, a driver pipeline of two, a failing driver, a driver dying mid-run, the
// NoDriver timeout, and a Conveyor restart mid-run.
import { expect } from 'chai';
import { collectFrames, request, waitForRun } from '../support/http.ts';
import { readSse } from '../support/sse.ts';
import { connect } from '@nats-io/transport-node';
import { jetstream } from '@nats-io/jetstream';
import { startNats, type TestNats } from '../support/nats.ts';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { inMode, mainScript, serverMode, startServer, type TestServer, suiteServer } from '../support/server.ts';
import { startWireDriver, type WireDriver } from '../support/wire-driver.ts';

const widgetDefinition = { name: 'widget', version: '1.0.0', description: 'a widget', schema: { type: 'object', required: ['size'], properties: { size: { type: 'string' } } } };

async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe(inMode('external drivers over NATS JetStream'), function () {
  let nats: TestNats;
  let server: TestServer;
  const drivers: WireDriver[] = [];
  const call = (method: string, path: string, body?: unknown) => request(server.url, method, path, body);
  // In Kubernetes mode a restarted server must find its runs: one namespace for all servers.
  let cluster: { args: string[]; env: NodeJS.ProcessEnv; token: string; cleanup: () => void } | undefined;
  const serve = async (dataDir?: string) => {
    if (serverMode() === 'kubernetes' && !cluster) {
      const support = await import('../cluster/support/namespaces.ts');
      const namespace = await support.createScenarioNamespace();
      cluster = {
        args: ['--mode', 'kubernetes', '--namespace', namespace],
        env: { KUBECONFIG: support.kubeconfigPath() },
        token: await support.scenarioToken(namespace),
        cleanup: () => support.deleteScenarioNamespace(namespace),
      };
    }
    return startServer({
      ...(dataDir ? { dataDir } : {}),
      args: [...(cluster?.args ?? []), '--nats-url', nats.url, '--driver-timeout', '1.5'],
      env: cluster?.env,
      token: cluster?.token,
    });
  };

  before(async () => {
    nats = await startNats();
    server = await serve();
    expect((await call('POST', '/resource-definitions', widgetDefinition)).status).to.equal(201);
    expect((await call('POST', '/resource-definitions', { ...widgetDefinition, name: 'gadget' })).status).to.equal(201);
  });
  afterEach(function () {
    if (this.currentTest?.state === 'failed' && process.env.CONVEYOR_TEST_DEBUG) console.log(server.output.slice(-40).join('\n'));
  });
  after(async () => {
    for (const d of drivers) await d.stop().catch(() => undefined);
    await server?.stop();
    server?.cleanup();
    cluster?.cleanup();
    await nats?.stop();
    nats?.cleanup();
  });

  it('hands a resource to the current-generation driver serving its type, archives each line once, and ends the run on its result', async () => {
    const driver = await startWireDriver({
      natsUrl: nats.url,
      name: 'widget-maker',
      subject: 'resources.widget',
      async handle({ log, resource }) {
        await log(`making a ${(resource.spec as { size: string }).size} widget`);
        await log('same line');
        await log('same line');
        return { success: true, message: 'widget made', data: { artifact: 'w.tar' } };
      },
    });
    drivers.push(driver);
    const listed = await until('the driver listed as connected', async () => {
      const list = (await call('GET', '/drivers')).body as any[];
      return list.find((d) => d.name === 'widget-maker' && d.connected);
    });
    expect(listed).to.include({ name: 'widget-maker', connected: true });
    expect(listed.resources).to.deep.equal(['widget']);

    const created = await call('POST', '/resources/', { name: 'w1', resource: 'widget', spec: { size: 'big' } });
    expect(created.status).to.equal(201);
    const runid = created.body.runid;
    const socket = collectFrames(`${server.wsUrl}/drivers/streams/logs/widget-maker/${runid}?format=json`);
    const run = await waitForRun(server.url, runid);
    expect(run).to.include({ phase: 'Succeeded', reason: 'Succeeded', message: 'widget made', driver: 'widget-maker' });
    expect(run.startedAt).to.be.a('string');
    expect(run.steps[0]).to.deep.include({ driver: 'widget-maker', phase: 'Succeeded', event: 'create', result: { success: true, message: 'widget made', data: { artifact: 'w.tar' } } });

    // The event as upstream's drivers read it.
    expect(driver.received).to.have.lengthOf(1);
    const event = driver.received[0]!;
    expect(event).to.include({ event: 'create', run_id: runid, id: `${runid}:0` });
    const payload = JSON.parse(event.payload);
    expect(payload).to.deep.include({ name: 'w1', resource: 'widget', spec: { size: 'big' } });
    expect(payload.metadata.version).to.equal('1');

    // Each line sent twice (JetStream and live) is archived once; a repeated line stays two.
    const frames = (await socket).frames.map((f) => JSON.parse(f));
    expect(frames.map((f) => f.message)).to.deep.equal(['making a big widget', 'same line', 'same line']);
    expect(frames.map((f) => f.seq)).to.deep.equal([1, 2, 3]);
    const logs = (await call('GET', `/logs?runid=${runid}`)).body as any[];
    expect(logs.map((l) => [l.driver, l.message])).to.deep.equal([
      ['widget-maker', 'making a big widget'],
      ['widget-maker', 'same line'],
      ['widget-maker', 'same line'],
    ]);
    // The seed's frame on the seed's route, and SSE like any other run.
    const seedFrames = await collectFrames(`${server.wsUrl}/drivers/streams/logs/widget-maker/${runid}`);
    expect(JSON.parse(seedFrames.frames[0]!)).to.deep.equal([logs[0].timestamp, 'making a big widget']);
    const sse = await readSse(`${server.url}/logs/streams/widget-maker/${runid}`);
    expect(sse.status).to.equal(200);
    expect(sse.events.filter((e) => e.data.includes('widget') || e.data.includes('same line')).map((e) => e.id)).to.deep.equal(['1', '2', '3']);

    // Replace and delete are events too.
    const replaced = await call('PUT', '/resources/widget/w1', { spec: { size: 'small' } });
    expect((await waitForRun(server.url, replaced.body.runid)).phase).to.equal('Succeeded');
    const deleted = await call('DELETE', '/resources/widget/w1');
    expect(deleted.status).to.equal(200);
    expect((await waitForRun(server.url, deleted.body.runid)).phase).to.equal('Succeeded');
    expect(driver.received.map((e) => e.event)).to.deep.equal(['create', 'update', 'delete']);
    expect(JSON.parse(driver.received[1]!.payload).spec).to.deep.equal({ size: 'small' });
  });

  it('runs a driver pipeline of two drivers under one run id, each result kept per step', async () => {
    const order: string[] = [];
    for (const name of ['builder', 'shipper']) {
      drivers.push(
        await startWireDriver({
          natsUrl: nats.url,
          name,
          subject: `drivers.${name}.resources.gadget`,
          async handle({ log, event }) {
            order.push(`${name}:${event.run_id}`);
            await log(`${name} starts`);
            await log(`${name} done`);
            return { success: true, message: `${name} ok`, data: { by: name } };
          },
        }),
      );
    }
    const chain = { name: 'build-and-ship', resource: 'gadget', steps: [{ id: '1', name: 'build', driver: 'builder' }, { id: '2', name: 'ship', driver: 'shipper' }] };
    expect((await call('POST', '/pipelines', chain)).status).to.equal(201);
    const created = await call('POST', '/resources', { name: 'g1', resource: 'gadget', spec: { size: 'm' }, pipeline: 'build-and-ship' });
    const runid = created.body.runid;
    const run = await waitForRun(server.url, runid);
    expect(run.phase).to.equal('Succeeded');
    expect(order).to.deep.equal([`builder:${runid}`, `shipper:${runid}`]);
    expect(run.steps.map((s: any) => [s.name, s.driver, s.phase, s.result?.message])).to.deep.equal([
      ['build', 'builder', 'Succeeded', 'builder ok'],
      ['ship', 'shipper', 'Succeeded', 'shipper ok'],
    ]);
    const all = (await call('GET', `/logs?runid=${runid}`)).body.map((l: any) => `${l.driver}:${l.message}`);
    expect(all).to.deep.equal(['builder:builder starts', 'builder:builder done', 'shipper:shipper starts', 'shipper:shipper done']);
    const shipperOnly = await collectFrames(`${server.wsUrl}/drivers/streams/logs/shipper/${runid}`);
    expect(shipperOnly.frames.map((f) => JSON.parse(f)[1])).to.deep.equal(['shipper starts', 'shipper done']);
  });

  it('lists the drivers from their JetStream consumers, over HTTP and as `conveyor get drivers`', async () => {
    const list = (await call('GET', '/drivers')).body as any[];
    expect(list.map((d) => [d.name, d.resources.join(',')])).to.deep.include.members([
      ['builder', 'gadget'],
      ['shipper', 'gadget'],
      ['widget-maker', 'widget'],
    ]);
    for (const d of list) expect(d).to.have.all.keys('name', 'resources', 'subjects', 'connected', 'pending', 'ackPending', 'redelivered', 'lastActive');
    const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1' };
    delete env.CONVEYOR_SERVER;
    if (cluster) env.CONVEYOR_TOKEN = cluster.token;
    const { stdout } = await promisify(execFile)(process.execPath, [mainScript, '--server', server.url, 'get', 'drivers'], { env });
    const rows = stdout.trim().split('\n');
    expect(rows[0]).to.match(/^NAME\s+RESOURCES\s+CONNECTED\s+PENDING\s+IN HAND\s+LAST ACTIVE$/);
    expect(rows.some((r) => /^widget-maker\s+widget\s+(yes|no)\s+0\s+0\s+/.test(r)), stdout).to.equal(true);
  });

  it('a failing driver fails the run and stops its pipeline', async () => {
    drivers.push(
      await startWireDriver({
        natsUrl: nats.url,
        name: 'breaker',
        subject: 'drivers.breaker.resources.gadget',
        async handle({ log }) {
          await log('about to break');
          return { success: false, message: 'disk full', data: { code: 28 } };
        },
      }),
    );
    const chain = { name: 'break-then-ship', resource: 'gadget', steps: [{ id: '1', name: 'break', driver: 'breaker' }, { id: '2', name: 'ship', driver: 'shipper' }] };
    expect((await call('POST', '/pipelines', chain)).status).to.equal(201);
    const shipper = drivers.find((d) => d.received.some(() => true) && d !== drivers[0]);
    const before = shipper?.received.length ?? 0;
    const created = await call('POST', '/resources', { name: 'g2', resource: 'gadget', spec: { size: 'l' }, pipeline: 'break-then-ship' });
    const run = await waitForRun(server.url, created.body.runid);
    expect(run).to.include({ phase: 'Failed', reason: 'DriverFailed' });
    expect(run.message).to.equal('driver "breaker" failed at step break: disk full');
    expect(run.steps.map((s: any) => s.phase)).to.deep.equal(['Failed', 'Skipped']);
    expect(run.steps[0].result).to.deep.equal({ success: false, message: 'disk full', data: { code: 28 } });
    expect(shipper?.received.length ?? 0, 'the next driver never got it').to.equal(before);
    const lines = (await call('GET', `/logs?runid=${created.body.runid}`)).body.map((l: any) => l.message);
    expect(lines).to.deep.equal(['about to break', 'Run failed: driver "breaker" failed at step break: disk full']);
  });

  it('a run of a type no driver serves says NoDriver, then fails NoDriver after the configured time', async () => {
    expect((await call('POST', '/resource-definitions', { ...widgetDefinition, name: 'orphan' })).status).to.equal(201);
    const created = await call('POST', '/resources', { name: 'o1', resource: 'orphan', spec: { size: 's' } });
    const pending = await until('NoDriver', async () => {
      const r = (await call('GET', `/runs/${created.body.runid}`)).body;
      return r.reason === 'NoDriver' ? r : undefined;
    });
    expect(pending.phase).to.equal('Pending');
    const run = await waitForRun(server.url, created.body.runid);
    expect(run).to.include({ phase: 'Failed', reason: 'NoDriver' });
    expect(run.message).to.match(/any driver of resources of type "orphan" was not connected within 2 s/);
  });

  it('a driver that dies before acking gets the event again, and the run ends once', async () => {
    let attempts = 0;
    const options = {
      natsUrl: nats.url,
      name: 'flaky',
      subject: 'resources.flaky',
      ackWaitMs: 1_000,
      async handle({ log }: { log: (m: string) => Promise<void> }) {
        attempts++;
        await log(`attempt ${attempts}`);
        if (attempts === 1) return 'crash' as const;
        return { success: true, message: 'second time lucky' };
      },
    };
    expect((await call('POST', '/resource-definitions', { ...widgetDefinition, name: 'flaky' })).status).to.equal(201);
    const first = await startWireDriver(options);
    const created = await call('POST', '/resources', { name: 'f1', resource: 'flaky', spec: { size: 's' } });
    await until('first attempt', async () => (attempts === 1 ? true : undefined));
    await waitForRun(server.url, created.body.runid, ['Running']);
    await first.crash();
    drivers.push(await startWireDriver(options));
    const run = await waitForRun(server.url, created.body.runid);
    expect(run).to.include({ phase: 'Succeeded', message: 'second time lucky' });
    expect(attempts).to.equal(2);
    const lines = (await call('GET', `/logs?runid=${created.body.runid}`)).body.map((l: any) => l.message);
    expect(lines).to.deep.equal(['attempt 1', 'attempt 2']);
  });

  it('a Conveyor restart mid-run loses no event, line or result, and duplicates none', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    expect((await call('POST', '/resource-definitions', { ...widgetDefinition, name: 'slow' })).status).to.equal(201);
    drivers.push(
      await startWireDriver({
        natsUrl: nats.url,
        name: 'slowpoke',
        subject: 'resources.slow',
        async handle({ log }) {
          await log('before the restart');
          await gate;
          await log('while conveyor was down');
          await log('after');
          return { success: true, message: 'done across a restart' };
        },
      }),
    );
    const created = await call('POST', '/resources', { name: 's1', resource: 'slow', spec: { size: 's' } });
    const runid = created.body.runid;
    await waitForRun(server.url, runid, ['Running']);
    await until('first line', async () => ((await call('GET', `/logs?runid=${runid}`)).body.length === 1 ? true : undefined));
    expect(await server.stop()).to.equal(0);
    release();
    await new Promise((r) => setTimeout(r, 300));
    server = await serve(server.dataDir);
    const run = await waitForRun(server.url, runid);
    expect(run).to.include({ phase: 'Succeeded', message: 'done across a restart' });
    const lines = (await call('GET', `/logs?runid=${runid}`)).body.map((l: any) => [l.seq, l.message]);
    expect(lines).to.deep.equal([
      [1, 'before the restart'],
      [2, 'while conveyor was down'],
      [3, 'after'],
    ]);
  });

  // A driver that logs a line, waits for the test's go, logs two more and succeeds.
  async function gatedDriver(name: string, type: string) {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    expect((await call('POST', '/resource-definitions', { ...widgetDefinition, name: type })).status).to.equal(201);
    const driver = await startWireDriver({
      natsUrl: nats.url,
      name,
      subject: `resources.${type}`,
      async handle({ log }) {
        await log('first');
        await gate;
        await log('second');
        await log('third');
        return { success: true, message: 'done' };
      },
    });
    drivers.push(driver);
    const created = await call('POST', '/resources', { name: `${type}-1`, resource: type, spec: { size: 's' } });
    const runid = created.body.runid as string;
    await waitForRun(server.url, runid, ['Running']);
    await until('the first line archived', async () => ((await call('GET', `/logs?runid=${runid}`)).body.length === 1 ? true : undefined));
    return { runid, release, driver };
  }

  it('a Conveyor crash (SIGKILL) mid-run loses nothing and duplicates nothing', async () => {
    const { runid, release } = await gatedDriver('crashproof', 'crashy');
    await server.kill();
    release();
    await new Promise((r) => setTimeout(r, 300));
    server = await serve(server.dataDir);
    const run = await waitForRun(server.url, runid);
    expect(run).to.include({ phase: 'Succeeded', message: 'done' });
    const lines = (await call('GET', `/logs?runid=${runid}`)).body.map((l: any) => [l.seq, l.message]);
    expect(lines).to.deep.equal([
      [1, 'first'],
      [2, 'second'],
      [3, 'third'],
    ]);
  });

  it('a NATS server restart mid-run loses no line or result', async () => {
    const { runid, release } = await gatedDriver('survivor', 'sturdy');
    await nats.restart();
    release();
    const run = await waitForRun(server.url, runid, undefined, 20_000);
    expect(run).to.include({ phase: 'Succeeded', message: 'done' });
    const lines = (await call('GET', `/logs?runid=${runid}`)).body.map((l: any) => l.message);
    expect(lines).to.deep.equal(['first', 'second', 'third']);
  });

  it('cancels a running driver run; what its driver sends afterwards is dropped', async () => {
    const { runid, release } = await gatedDriver('cancellable', 'stoppable');
    const cancelled = await call('POST', `/runs/${runid}/cancel`);
    expect(cancelled.status, JSON.stringify(cancelled.body)).to.equal(202);
    const run = await waitForRun(server.url, runid);
    expect(run).to.include({ phase: 'Cancelled', reason: 'Cancelled' });
    release();
    await new Promise((r) => setTimeout(r, 500));
    expect((await call('GET', `/runs/${runid}`)).body.phase).to.equal('Cancelled');
    const lines = (await call('GET', `/logs?runid=${runid}`)).body.map((l: any) => l.message);
    expect(lines).to.deep.equal(['first', 'Run cancelled']);
  });

  // Kubernetes mode only: a Pipeline applied with kubectl (not through the API) that names a
  // driver pipeline is handed to its drivers too.
  if (serverMode() === 'kubernetes') {
    it('hands a Pipeline applied with kubectl and naming a driver pipeline to its drivers', async () => {
      drivers.push(
        await startWireDriver({
          natsUrl: nats.url,
          name: 'kube-builder',
          subject: 'drivers.kube-builder.resources.pipeline',
          async handle({ log, event }) {
            await log(`building for ${event.event}`);
            return { success: true, message: 'built' };
          },
        }),
      );
      const chain = { name: 'kube-chain', resource: 'pipeline', steps: [{ id: '1', name: 'build', driver: 'kube-builder' }] };
      expect((await call('POST', '/pipelines', chain)).status).to.equal(201);
      const { kubectl } = await import('../cluster/support/conveyor.ts');
      const namespace = cluster!.args[cluster!.args.indexOf('--namespace') + 1]!;
      const manifest = {
        apiVersion: 'conveyor.ci/v1alpha1',
        kind: 'Pipeline',
        metadata: { name: 'applied', namespace, annotations: { 'conveyor.ci/driver-pipeline': 'kube-chain' } },
        spec: { image: 'jimjuniorb/hello-node:1.2.3', steps: [{ name: 'one', command: 'true' }] },
      };
      kubectl(['apply', '-f', '-'], JSON.stringify(manifest));
      const runid = await until('the Pipeline run', async () => {
        const id = kubectl(['get', 'pipelines.conveyor.ci', 'applied', '-n', namespace, '-o', 'jsonpath={.status.lastRunId}']).trim();
        return id || undefined;
      });
      const run = await waitForRun(server.url, runid);
      expect(run).to.include({ phase: 'Succeeded', message: 'built', driver: 'kube-builder' });
      expect((await call('GET', `/logs?runid=${runid}`)).body.map((l: any) => l.message)).to.deep.equal(['building for create']);
    });
  }

  it('applies each driver result once: a re-sent result neither hands the resource on twice nor changes the outcome', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const packer = await startWireDriver({
      natsUrl: nats.url,
      name: 'packer',
      subject: 'drivers.packer.resources.parcel',
      async handle({ log }) {
        await log('packed');
        return { success: true, message: 'packed', data: { boxes: 1 } };
      },
    });
    const sender = await startWireDriver({
      natsUrl: nats.url,
      name: 'sender',
      subject: 'drivers.sender.resources.parcel',
      async handle({ log }) {
        await gate;
        await log('sent');
        return { success: true, message: 'sent' };
      },
    });
    drivers.push(packer, sender);
    expect((await call('POST', '/resource-definitions', { ...widgetDefinition, name: 'parcel' })).status).to.equal(201);
    const chain = { name: 'pack-and-send', resource: 'parcel', steps: [{ id: '1', name: 'pack', driver: 'packer' }, { id: '2', name: 'send', driver: 'sender' }] };
    expect((await call('POST', '/pipelines', chain)).status).to.equal(201);
    const created = await call('POST', '/resources', { name: 'p1', resource: 'parcel', spec: { size: 's' }, pipeline: 'pack-and-send' });
    const runid = created.body.runid as string;
    await until('the second driver has it', async () => (sender.received.length === 1 ? true : undefined));

    const nc = await connect({ servers: nats.url });
    const js = jetstream(nc);
    const resend = (driver: string, success: boolean, message: string) =>
      js.publish('pipelines.driver.result', JSON.stringify({ event: 'driver.result', run_id: runid, resource: {}, driverresult: { success, message, data: null, driver } }));
    await resend('packer', true, 'packed again');
    await new Promise((r) => setTimeout(r, 500));
    release();
    const run = await waitForRun(server.url, runid);
    await resend('sender', false, 'too late');
    await resend('packer', false, 'much too late');
    await new Promise((r) => setTimeout(r, 500));
    await nc.close();

    expect(sender.received, 'the second driver got the resource once').to.have.lengthOf(1);
    const after = (await call('GET', `/runs/${runid}`)).body;
    expect(after).to.deep.equal(run);
    expect(after).to.include({ phase: 'Succeeded', message: 'sent' });
    expect(after.steps.map((s: any) => s.result.message)).to.deep.equal(['packed', 'sent']);
  });
});

describe(inMode('a server without NATS'), () => {
  const suite = suiteServer();
  const call = (method: string, path: string, body?: unknown) => request(suite.server.url, method, path, body);

  it('lists no drivers, has no Loki route to take lines, and leaves runs of other types Pending NoDriver', async () => {
    expect((await call('GET', '/drivers')).body).to.deep.equal([]);
    const loki = await call('POST', '/loki/api/v1/push', { streams: [] });
    expect(loki.status).to.equal(404);
    expect(loki.body.error).to.match(/no driver bus: start it with --nats-url/);
    expect((await call('POST', '/resource-definitions', { name: 'lonely', schema: { type: 'object' } })).status).to.equal(201);
    const created = await call('POST', '/resources', { name: 'l1', resource: 'lonely', spec: {} });
    expect((await call('GET', `/runs/${created.body.runid}`)).body).to.include({ phase: 'Pending', reason: 'NoDriver' });
    // Without a bus a deletion tells no driver: no run, the answer of old.
    expect((await call('DELETE', '/resources/lonely/l1')).status).to.equal(204);
  });
});
