// Kubernetes mode on the real cluster: the seed tutorial verbatim, failures, kubectl apply,
// logs that outlive their pod, a server killed mid-run, a cut log stream, many runs at
// once, cancel and timeout. Every run is a real Job whose pod runs the steps.
import * as k8s from '@kubernetes/client-node';
import { expect } from 'chai';
import { DOLLAR_STEP } from '../support/dollar-step.ts';
import { collectFrames, pipeline, request, seedResource, waitForRun } from '../support/http.ts';
import { newDataDir, type TestServer } from '../support/server.ts';
import { kubectl, suiteNamespace, writeKubeConfig } from './support/conveyor.ts';
import { FaultyProxy, apiServerAddress, proxiedKubeConfig } from './support/faulty-proxy.ts';
import { sleep, waitFor } from './support/kube.ts';

const TERMINAL = ['Succeeded', 'Failed', 'Cancelled'];
const messagesOf = (frames: string[]) => frames.map((f) => (JSON.parse(f) as string[])[1]);
const seqsOf = (frames: string[]) => frames.map((f) => (JSON.parse(f) as { seq: number }).seq);

describe('kubernetes mode', function () {
  this.timeout(180_000);
  let kc: k8s.KubeConfig;
  let core: k8s.CoreV1Api;
  let batch: k8s.BatchV1Api;
  let namespace: string;
  let server: TestServer;
  const suite = suiteNamespace('conveyor-k8s');
  const ws = (runid: string, query = '') => `${server.wsUrl}/drivers/streams/logs/command-runner/${runid}${query}`;

  async function jobsOf(runid: string): Promise<k8s.V1Job[]> {
    return (await batch.listNamespacedJob({ namespace, labelSelector: `conveyor.ci/run-id=${runid}` })).items;
  }

  // The Kubernetes Events about a Run as "<type> <reason>", sorted, once there are `count`.
  async function eventsOf(runid: string, count: number): Promise<string[]> {
    return waitFor(`${count} events of run ${runid}`, 30_000, async () => {
      const list = await core.listNamespacedEvent({ namespace, fieldSelector: `involvedObject.kind=Run,involvedObject.name=${runid}` });
      // Stamps are whole seconds, so one run's events often tie: compare them as a set.
      const events = list.items.map((e) => `${e.type} ${e.reason}`).sort();
      return events.length >= count ? events : undefined;
    });
  }

  async function archived(runid: string): Promise<void> {
    await waitFor(`run ${runid} logs archived`, 60_000, async () => {
      const obj = JSON.parse(kubectl(['get', 'runs.conveyor.ci', runid, '-n', namespace, '-o', 'json'])) as { status?: { logsArchived?: boolean } };
      return obj.status?.logsArchived ? true : undefined;
    });
  }

  before(async () => {
    ({ kc, core, namespace } = suite);
    batch = kc.makeApiClient(k8s.BatchV1Api);
    server = await suite.start();
  });

  it('runs the seed tutorial verbatim: 201, frames, pwd prints /workspace, the image os-release', async () => {
    const res = await request(server.url, 'POST', '/resources/', { ...seedResource, spec: { ...seedResource.spec, steps: [...seedResource.spec.steps, { name: 'show-os-info', command: 'cat /etc/os-release' }] } });
    expect(res.status).to.equal(201);
    expect(Object.keys(res.body).sort()).to.deep.equal(['message', 'name', 'runid', 'version']);
    expect(res.body.message).to.equal('Resource created successfully');
    const { frames, closeCode } = await collectFrames(ws(res.body.runid), 120_000);
    expect(closeCode).to.equal(1000);
    const messages = messagesOf(frames);
    expect(messages.slice(0, 3)).to.deep.equal(['Executing step: print-working-directory', '/workspace', 'Step completed successfully']);
    expect(messages[3]).to.equal('Executing step: list-files');
    expect(messages).to.include('Executing step: show-os-info');
    expect(messages.some((m) => /^NAME=/.test(m ?? ""))).to.equal(true);
    expect(messages.at(-1)).to.equal('Step completed successfully');
    for (const frame of frames) {
      const parsed = JSON.parse(frame) as unknown[];
      expect(parsed).to.have.lengthOf(2);
      expect(parsed[0]).to.match(/^\d{19}$/);
    }
    const run = await waitForRun(server.url, res.body.runid, TERMINAL, 60_000);
    expect(run).to.include({ phase: 'Succeeded', driver: 'command-runner' });
    expect(run.steps.map((s: any) => s.phase)).to.deep.equal(['Succeeded', 'Succeeded', 'Succeeded']);
    expect(await jobsOf(res.body.runid)).to.have.lengthOf(1);
    expect(await eventsOf(res.body.runid, 2)).to.deep.equal(['Normal Started', 'Normal Succeeded']);
  });

  it('fails at a failing middle step: exit code recorded, later step Skipped and never run', async () => {
    const res = await request(server.url, 'POST', '/resources', pipeline('k8s-fails', [['first', 'echo one'], ['second', 'echo oops; exit 3'], ['third', 'echo never']]));
    const { frames } = await collectFrames(ws(res.body.runid), 120_000);
    expect(messagesOf(frames)).to.deep.equal(['Executing step: first', 'one', 'Step completed successfully', 'Executing step: second', 'oops', 'Step failed with exit code 3']);
    const run = await waitForRun(server.url, res.body.runid, TERMINAL, 60_000);
    expect(run).to.include({ phase: 'Failed', reason: 'StepFailed' });
    expect(run.steps.map((s: any) => [s.phase, s.exitCode])).to.deep.equal([['Succeeded', 0], ['Failed', 3], ['Skipped', null]]);
    expect(await eventsOf(res.body.runid, 2)).to.deep.equal(['Normal Started', 'Warning Failed']);
    const pods = await core.listNamespacedPod({ namespace, labelSelector: `conveyor.ci/run-id=${res.body.runid}` });
    // The last step's container started with the others, saw the failure and ran nothing.
    const third = pods.items[0]!.status!.containerStatuses!.find((c) => c.name === 'third');
    expect(third?.state?.terminated?.message, 'the last step says it was skipped').to.equal('{"skipped":true}');
    expect(kubectl(['logs', '-n', namespace, pods.items[0]!.metadata!.name!, '-c', 'third']), 'the last step printed nothing').to.equal('');
  });

  it('runs the steps in turn in one pod: each after the one before ended, each with its own log, the pod requesting what was asked once', async () => {
    const resources = { requests: { cpu: '50m', memory: '16Mi' }, limits: { memory: '64Mi' } };
    const steps: [string, string][] = [['one', 'echo 1 > turns; sleep 2; echo first'], ['two', 'cat turns; echo 2 >> turns; echo second'], ['three', 'cat turns']];
    const res = await request(server.url, 'POST', '/resources', pipeline('k8s-turns', steps, { resources }));
    expect(res.status).to.equal(201);
    const { frames } = await collectFrames(ws(res.body.runid), 120_000);
    expect(messagesOf(frames)).to.deep.equal([
      'Executing step: one', 'first', 'Step completed successfully',
      'Executing step: two', '1', 'second', 'Step completed successfully',
      'Executing step: three', '1', '2', 'Step completed successfully',
    ]);
    const run = await waitForRun(server.url, res.body.runid, TERMINAL, 60_000);
    expect(run).to.include({ phase: 'Succeeded' });
    expect(run.steps.map((s: any) => [s.name, s.phase, s.exitCode])).to.deep.equal([['one', 'Succeeded', 0], ['two', 'Succeeded', 0], ['three', 'Succeeded', 0]]);
    // Each step's own times, from its report: in order, never overlapping.
    for (const [i, step] of run.steps.entries()) {
      expect(step.startedAt <= step.finishedAt, `${step.name} ends after it starts`).to.equal(true);
      if (i > 0) expect(run.steps[i - 1].finishedAt <= step.startedAt, `${step.name} starts after ${run.steps[i - 1].name} ended`).to.equal(true);
    }
    expect(Date.parse(run.steps[0].finishedAt) - Date.parse(run.steps[0].startedAt), 'the first step slept 2 s').to.be.at.least(1000);
    const pod = (await core.listNamespacedPod({ namespace, labelSelector: `conveyor.ci/run-id=${res.body.runid}` })).items[0]!;
    expect(pod.spec!.initContainers ?? []).to.deep.equal([]);
    expect(pod.spec!.containers.map((c) => c.name)).to.deep.equal(['one', 'two', 'three']);
    // The API server kept the requests as built: asked once for the pod, every step limited.
    expect(pod.spec!.containers.map((c) => c.resources?.requests)).to.deep.equal([resources.requests, { cpu: '0', memory: '0' }, { cpu: '0', memory: '0' }]);
    for (const c of pod.spec!.containers) expect(c.resources?.limits).to.deep.equal(resources.limits);
    // Each step's output is its own container's log, through the log API.
    const logsOf = (container: string) => kubectl(['logs', '-n', namespace, pod.metadata!.name!, '-c', container]).trim().split('\n');
    expect(steps.map(([name]) => logsOf(name))).to.deep.equal([['first'], ['1', 'second'], ['1', '2']]);
  });

  it("runs a step's command and env values as written, not through Kubernetes' $(NAME) expansion: the same lines as local mode", async () => {
    const res = await request(server.url, 'POST', '/resources', pipeline('k8s-dollars', [['dollars', DOLLAR_STEP.command]], { env: DOLLAR_STEP.env }));
    expect(res.status).to.equal(201);
    const { frames } = await collectFrames(ws(res.body.runid), 120_000);
    expect(messagesOf(frames)).to.deep.equal(['Executing step: dollars', ...DOLLAR_STEP.printed, 'Step completed successfully']);
  });

  it('starts exactly one run per Pipeline generation applied with kubectl', async () => {
    const manifest = (command: string) =>
      JSON.stringify({ apiVersion: 'conveyor.ci/v1alpha1', kind: 'Pipeline', metadata: { name: 'applied', namespace }, spec: { image: 'jimjuniorb/hello-node:1.2.3', steps: [{ name: 'say', command }] } });
    kubectl(['apply', '-f', '-'], manifest('echo first'));
    const first = await waitFor('lastRunId', 30_000, async () => JSON.parse(kubectl(['get', 'pipelines.conveyor.ci', 'applied', '-n', namespace, '-o', 'json'])).status?.lastRunId as string | undefined);
    const run1 = await waitForRun(server.url, first, TERMINAL, 90_000);
    expect(run1.phase).to.equal('Succeeded');
    kubectl(['apply', '-f', '-'], manifest('echo first'));
    kubectl(['apply', '-f', '-'], manifest('echo second'));
    const second = await waitFor('second run', 30_000, async () => {
      const id = JSON.parse(kubectl(['get', 'pipelines.conveyor.ci', 'applied', '-n', namespace, '-o', 'json'])).status?.lastRunId as string;
      return id !== first ? id : undefined;
    });
    const run2 = await waitForRun(server.url, second, TERMINAL, 90_000);
    expect(run2.version).to.equal(2);
    const logs = await request(server.url, 'GET', `/logs?runid=${second}`);
    expect(logs.body.map((l: any) => l.message)).to.include('second');
    const runs = await request(server.url, 'GET', '/runs?resource=pipeline&name=applied');
    expect(runs.body.items.map((r: any) => r.version).sort()).to.deep.equal([1, 2]);
  });

  it('serves the logs of a run after its pod is deleted', async () => {
    const res = await request(server.url, 'POST', '/resources', pipeline('k8s-pod-gone', [['print', 'seq 1 5']]));
    const before = await collectFrames(ws(res.body.runid), 120_000);
    await archived(res.body.runid);
    const pods = await core.listNamespacedPod({ namespace, labelSelector: `conveyor.ci/run-id=${res.body.runid}` });
    for (const pod of pods.items) await core.deleteNamespacedPod({ name: pod.metadata!.name!, namespace, gracePeriodSeconds: 0 });
    await waitFor('pod gone', 30_000, async () => ((await core.listNamespacedPod({ namespace, labelSelector: `conveyor.ci/run-id=${res.body.runid}` })).items.length === 0 ? true : undefined));
    const after = await collectFrames(ws(res.body.runid));
    expect(after.frames).to.deep.equal(before.frames);
    expect(messagesOf(after.frames)).to.include.members(['1', '5']);
  });

  it('keeps every line a pod printed when the pod is deleted mid-run (the log finalizer holds it)', async () => {
    const res = await request(server.url, 'POST', '/resources', pipeline('k8s-pod-deleted', [['count', 'for i in $(seq 1 200); do echo line-$i; sleep 0.1; done']]));
    await waitFor('some lines', 90_000, async () => ((await request(server.url, 'GET', `/logs?runid=${res.body.runid}`)).body.length > 10 ? true : undefined));
    const [pod] = (await core.listNamespacedPod({ namespace, labelSelector: `conveyor.ci/run-id=${res.body.runid}` })).items;
    await core.deleteNamespacedPod({ name: pod!.metadata!.name!, namespace, gracePeriodSeconds: 1 });
    const run = await waitForRun(server.url, res.body.runid, TERMINAL, 90_000);
    expect(run.phase).to.equal('Failed');
    await archived(res.body.runid);
    const output = (await request(server.url, 'GET', `/logs?runid=${res.body.runid}`)).body.filter((l: any) => l.stream === 'stdout').map((l: any) => l.message);
    expect(output.length).to.be.above(10);
    expect(output, 'every line up to the kill, each once').to.deep.equal(Array.from({ length: output.length }, (_, i) => `line-${i + 1}`));
    await waitFor('the pod released and gone', 30_000, async () => ((await core.listNamespacedPod({ namespace, labelSelector: `conveyor.ci/run-id=${res.body.runid}` })).items.length === 0 ? true : undefined));
  });

  it('cancels a running run: containers stop, the pod stays, the run ends Cancelled with its logs', async () => {
    const res = await request(server.url, 'POST', '/resources', pipeline('k8s-cancel', [['long', 'echo started; sleep 120'], ['after', 'echo never']]));
    const frames = collectFrames(ws(res.body.runid), 120_000);
    await waitFor('the step to print', 90_000, async () => ((await request(server.url, 'GET', `/logs?runid=${res.body.runid}`)).body.some((l: any) => l.message === 'started') ? true : undefined));
    const cancel = await request(server.url, 'POST', `/runs/${res.body.runid}/cancel`);
    expect(cancel.status).to.equal(202);
    const { frames: got, closeCode } = await frames;
    expect(closeCode).to.equal(1000);
    expect(messagesOf(got)).to.deep.equal(['Executing step: long', 'started', 'Step stopped (run cancelled)', 'Run cancelled']);
    const run = await waitForRun(server.url, res.body.runid, TERMINAL, 60_000);
    expect(run).to.include({ phase: 'Cancelled' });
    expect(run.steps.map((s: any) => s.phase)).to.deep.equal(['Cancelled', 'Skipped']);
    await archived(res.body.runid);
    const pods = (await core.listNamespacedPod({ namespace, labelSelector: `conveyor.ci/run-id=${res.body.runid}` })).items;
    expect(pods, 'the pod stays, with its stopped container').to.have.lengthOf(1);
    expect(pods[0]!.metadata!.deletionTimestamp).to.equal(undefined);
    expect(pods[0]!.status!.containerStatuses!.find((c) => c.name === 'long')!.state!.terminated).to.not.equal(undefined);
  });

  it('retries a failing run in a new pod and archives every attempt, each once and in order', async () => {
    const res = await request(server.url, 'POST', '/resources', pipeline('k8s-retry', [['flaky', 'echo try; exit 4']], { retries: 1 }));
    const { frames, closeCode } = await collectFrames(ws(res.body.runid), 150_000);
    expect(closeCode).to.equal(1000);
    const once = ['Executing step: flaky', 'try', 'Step failed with exit code 4'];
    expect(messagesOf(frames)).to.deep.equal([...once, 'Retrying: attempt 2', ...once]);
    const run = await waitForRun(server.url, res.body.runid, TERMINAL, 60_000);
    expect(run).to.include({ phase: 'Failed' });
    expect(await jobsOf(res.body.runid)).to.have.lengthOf(1);
    const pods = await core.listNamespacedPod({ namespace, labelSelector: `conveyor.ci/run-id=${res.body.runid}` });
    expect(pods.items, 'one pod per attempt').to.have.lengthOf(2);
  });

  it('cancels a run with retries left: no retry pod starts after the stop', async () => {
    const res = await request(server.url, 'POST', '/resources', pipeline('k8s-cancel-retries', [['long', 'echo started; sleep 120']], { retries: 3 }));
    const frames = collectFrames(ws(res.body.runid), 120_000);
    await waitFor('the step to print', 90_000, async () => ((await request(server.url, 'GET', `/logs?runid=${res.body.runid}`)).body.some((l: any) => l.message === 'started') ? true : undefined));
    expect((await request(server.url, 'POST', `/runs/${res.body.runid}/cancel`)).status).to.equal(202);
    const { frames: got } = await frames;
    expect(messagesOf(got)).to.deep.equal(['Executing step: long', 'started', 'Step stopped (run cancelled)', 'Run cancelled']);
    expect((await waitForRun(server.url, res.body.runid, TERMINAL, 60_000)).phase).to.equal('Cancelled');
    await sleep(12_000); // longer than the Job controller's first retry backoff (10 s)
    const pods = await core.listNamespacedPod({ namespace, labelSelector: `conveyor.ci/run-id=${res.body.runid}` });
    expect(pods.items, 'no retry pod').to.have.lengthOf(1);
  });

  it('fails a run whose Job is deleted mid-run instead of running its steps again', async () => {
    const res = await request(server.url, 'POST', '/resources', pipeline('k8s-job-deleted', [['long', 'echo started; sleep 120'], ['after', 'echo never']]));
    await waitFor('the step to print', 90_000, async () => ((await request(server.url, 'GET', `/logs?runid=${res.body.runid}`)).body.some((l: any) => l.message === 'started') ? true : undefined));
    const [job] = await jobsOf(res.body.runid);
    await batch.deleteNamespacedJob({ name: job!.metadata!.name!, namespace, propagationPolicy: 'Background' });
    const run = await waitForRun(server.url, res.body.runid, TERMINAL, 90_000);
    expect(run).to.include({ phase: 'Failed', reason: 'JobDeleted' });
    expect(run.steps.map((s: any) => s.phase)).to.deep.equal(['Cancelled', 'Skipped']);
    const { frames, closeCode } = await collectFrames(ws(res.body.runid), 60_000);
    expect(closeCode).to.equal(1000);
    expect(messagesOf(frames).slice(0, 2)).to.deep.equal(['Executing step: long', 'started']);
    await sleep(3000);
    expect(await jobsOf(res.body.runid), 'no second Job').to.have.lengthOf(0);
  });

  it('fails a run past timeoutSeconds with DeadlineExceeded and keeps the lines written so far', async () => {
    const res = await request(server.url, 'POST', '/resources', pipeline('k8s-timeout', [['slow', 'echo begun; sleep 120']], { timeoutSeconds: 5 }));
    const { frames } = await collectFrames(ws(res.body.runid), 120_000);
    expect(messagesOf(frames)).to.include('begun');
    const run = await waitForRun(server.url, res.body.runid, TERMINAL, 60_000);
    expect(run).to.include({ phase: 'Failed', reason: 'DeadlineExceeded' });
  });

  it('runs 20 pipelines at once, each to success with exactly one Job', async () => {
    const posts = await Promise.all(Array.from({ length: 20 }, (_, i) => request(server.url, 'POST', '/resources', pipeline(`k8s-many-${i}`, [['hello', `echo run-${i}`]]))));
    expect(posts.map((p) => p.status)).to.deep.equal(Array(20).fill(201));
    const runs = await Promise.all(posts.map((p) => waitForRun(server.url, p.body.runid, TERMINAL, 170_000)));
    expect(runs.map((r) => r.phase)).to.deep.equal(Array(20).fill('Succeeded'));
    for (const [i, p] of posts.entries()) {
      expect(await jobsOf(p.body.runid)).to.have.lengthOf(1);
      const logs = await request(server.url, 'GET', `/logs?runid=${p.body.runid}`);
      expect(logs.body.map((l: any) => l.message)).to.deep.equal(['Executing step: hello', `run-${i}`, 'Step completed successfully']);
    }
  });
});

describe('kubernetes mode under faults', function () {
  this.timeout(240_000);
  let kc: k8s.KubeConfig;
  let core: k8s.CoreV1Api;
  let namespace: string;
  const suite = suiteNamespace('conveyor-faults');

  before(() => {
    ({ kc, core, namespace } = suite);
  });

  function kubectlLogs(runid: string, containers: string[]): string[] {
    const pod = kubectl(['get', 'pods', '-n', namespace, '-l', `conveyor.ci/run-id=${runid}`, '-o', 'jsonpath={.items[0].metadata.name}']);
    return containers.flatMap((c) => kubectl(['logs', '-n', namespace, pod, '-c', c]).split('\n').filter((l, i, all) => i < all.length - 1 || l !== ''));
  }

  it('finishes a run whose server was killed with SIGKILL mid-run: one Job, logs equal kubectl logs, no gap, no repeat', async () => {
    const dataDir = newDataDir();
    const first = await suite.start({ dataDir });
    // Long enough (about 24 s) that the step still runs when the second server, once the
    // killed one's Lease has expired (15 s), takes over its log mid-stream.
    const res = await request(first.url, 'POST', '/resources', pipeline('killed-server', [['count', 'for i in $(seq 1 120); do echo line-$i; sleep 0.2; done'], ['after', 'echo tail-line']]));
    await waitFor('some lines', 90_000, async () => ((await request(first.url, 'GET', `/logs?runid=${res.body.runid}`)).body.length > 5 ? true : undefined));
    await first.kill();
    await sleep(2000);
    const second = await suite.start({ dataDir });
    const { frames } = await collectFrames(`${second.wsUrl}/drivers/streams/logs/command-runner/${res.body.runid}?format=json`, 150_000);
    const finished = Date.parse((await request(second.url, 'GET', `/runs/${res.body.runid}`)).body.steps[0].finishedAt);
    const tookOver = second.output.map((l) => { try { return JSON.parse(l) as { msg?: string; time?: number }; } catch { return {}; } }).find((l) => l.msg === 'controller caches synced; reconciling')?.time;
    expect(tookOver, 'the new server led').to.be.a('number');
    expect(tookOver!, 'it took over while the step still ran').to.be.below(finished);
    const run = await waitForRun(second.url, res.body.runid, TERMINAL, 60_000);
    expect(run.phase).to.equal('Succeeded');
    const seqs = seqsOf(frames);
    expect(seqs).to.deep.equal(Array.from({ length: seqs.length }, (_, i) => i + 1));
    const output = frames.map((f) => JSON.parse(f)).filter((l) => l.stream !== 'system').map((l) => l.message);
    expect(output).to.deep.equal(kubectlLogs(res.body.runid, ['count', 'after']));
    const jobs = await kc.makeApiClient(k8s.BatchV1Api).listNamespacedJob({ namespace, labelSelector: `conveyor.ci/run-id=${res.body.runid}` });
    expect(jobs.items).to.have.lengthOf(1);
    // Stopping releases the controller Lease at once, so the next test's server leads.
    expect(await second.stop()).to.equal(0);
  });

  it('gives each Pipeline generation exactly one Run and one Job under racing writers, two servers and a leader killed mid-way', async () => {
    const dataDirs = [newDataDir(), newDataDir()];
    const a = await suite.start({ dataDir: dataDirs[0] });
    const b = await suite.start({ dataDir: dataDirs[1] });
    const manifest = (name: string, word: string) =>
      JSON.stringify({ apiVersion: 'conveyor.ci/v1alpha1', kind: 'Pipeline', metadata: { name, namespace }, spec: { image: 'jimjuniorb/hello-node:1.2.3', steps: [{ name: 'say', command: `echo ${word}` }] } });
    // Writers race: both servers take POSTs while kubectl applies other pipelines and new
    // generations of the posted ones.
    const posted = await Promise.all(
      Array.from({ length: 6 }, (_, i) => request(i % 2 ? b.url : a.url, 'POST', '/resources', pipeline(`race-${i}`, [['say', `echo v1-${i}`]]))),
    );
    expect(posted.map((p) => p.status)).to.deep.equal(Array(6).fill(201));
    for (let i = 0; i < 3; i++) kubectl(['apply', '-f', '-'], manifest(`race-applied-${i}`, 'v1'));
    for (let i = 0; i < 3; i++) kubectl(['apply', '-f', '-'], manifest(`race-${i}`, 'v2'));
    await a.kill(); // whichever led, one controller dies mid-way
    for (let i = 0; i < 3; i++) kubectl(['apply', '-f', '-'], manifest(`race-applied-${i}`, 'v2'));
    const expected = new Map<string, number>([
      ...Array.from({ length: 6 }, (_, i) => [`race-${i}`, i < 3 ? 2 : 1] as [string, number]),
      ...Array.from({ length: 3 }, (_, i) => [`race-applied-${i}`, 2] as [string, number]),
    ]);
    const runsOf = (name: string) =>
      JSON.parse(kubectl(['get', 'runs.conveyor.ci', '-n', namespace, '-l', `conveyor.ci/pipeline=${name}`, '-o', 'json'])).items as {
        metadata: { name: string };
        spec: { version: number };
        status?: { phase?: string };
      }[];
    try {
      await waitFor('every generation to finish', 150_000, async () => {
        for (const [name, generations] of expected) {
          const runs = runsOf(name);
          if (runs.length < generations || runs.some((r) => !TERMINAL.includes(r.status?.phase ?? ''))) return undefined;
        }
        return true;
      });
    } catch (err) {
      const state = [...expected.keys()].map((name) => `${name}: ${runsOf(name).map((r) => `v${r.spec.version}=${r.status?.phase ?? '-'}`).join(' ')}`);
      throw new Error(`${(err as Error).message}\n${state.join('\n')}\nserver b:\n${b.output.slice(-30).join('\n')}`);
    }
    await sleep(3000); // a late duplicate, if any were coming, would show by now
    const batchApi = kc.makeApiClient(k8s.BatchV1Api);
    for (const [name, generations] of expected) {
      const runs = runsOf(name);
      expect(runs.map((r) => r.spec.version).sort(), name).to.deep.equal(Array.from({ length: generations }, (_, i) => i + 1));
      for (const run of runs) {
        expect(run.status?.phase, `${name} v${run.spec.version}`).to.equal('Succeeded');
        const jobs = await batchApi.listNamespacedJob({ namespace, labelSelector: `conveyor.ci/run-id=${run.metadata.name}` });
        expect(jobs.items, `jobs of ${name} v${run.spec.version}`).to.have.lengthOf(1);
      }
    }
    expect(await b.stop()).to.equal(0);
  });

  it('resumes a log stream cut mid-run without gap or repeat', async () => {
    const { host, port } = apiServerAddress(kc);
    const proxy = new FaultyProxy(host, port);
    const proxyPort = await proxy.listen();
    const dataDir = newDataDir();
    const server = await suite.start({ dataDir, kubeconfig: writeKubeConfig(proxiedKubeConfig(kc, proxyPort), dataDir) });
    try {
      const res = await request(server.url, 'POST', '/resources', pipeline('cut-stream', [['count', 'for i in $(seq 1 40); do echo line-$i; sleep 0.1; done']]));
      await waitFor('some lines', 90_000, async () => ((await request(server.url, 'GET', `/logs?runid=${res.body.runid}`)).body.length > 8 ? true : undefined));
      proxy.set('reset');
      await sleep(1500);
      proxy.set('up');
      const { frames } = await collectFrames(`${server.wsUrl}/drivers/streams/logs/command-runner/${res.body.runid}?format=json`, 150_000);
      const output = frames.map((f) => JSON.parse(f)).filter((l) => l.stream !== 'system').map((l) => l.message);
      expect(output).to.deep.equal(Array.from({ length: 40 }, (_, i) => `line-${i + 1}`));
      const seqs = seqsOf(frames);
      expect(seqs).to.deep.equal(Array.from({ length: seqs.length }, (_, i) => i + 1));
    } finally {
      await proxy.close();
    }
  });
});
