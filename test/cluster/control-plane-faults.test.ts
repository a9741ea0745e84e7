// Kubernetes mode under control-plane faults (issue 14): the API server restarted mid-run,
// the kubelet restarted mid-run, a cancel during an API-server outage, the server killed
// while the API server is down, and a kubelet that does not act on a cancel. Each checks
// the run's phase, every step's record against what the pod shows, and the log: every
// line once, in order. The faults are real (components of the test cluster killed or
// frozen) and short, since the cluster is shared.
import * as k8s from '@kubernetes/client-node';
import { expect } from 'chai';
import { ConveyorClient } from '../../src/cli/client.ts';
import { scenarioToken } from './support/namespaces.ts';
import { staticToken } from '../../src/cli/credentials.ts';
import { collectFrames, pipeline, request, waitForRun } from '../support/http.ts';
import { newDataDir, startServer, type TestServer } from '../support/server.ts';
import { componentsReachable, freezeComponent, restartComponent } from './support/components.ts';
import { installCrds, kubectl, releaseFinalizers } from './support/conveyor.ts';
import { createTestNamespace, deleteNamespace, kubeconfigPath, loadKubeConfig, sleep, waitFor } from './support/kube.ts';
import { stepReport } from '../../src/drivers/command-runner/kubernetes/step-entrypoint.ts';

const TERMINAL = ['Succeeded', 'Failed', 'Cancelled'];

interface JsonLine {
  seq: number;
  ts: string;
  step: string | null;
  stream: string;
  message: string;
}

interface StepRecord {
  name: string;
  phase: string;
  exitCode: number | null;
}

// Keeps the newest state of every pod of a namespace, through API-server outages (the
// watch is opened again), including a pod's last state when it is deleted.
class PodRecorder {
  readonly pods = new Map<string, k8s.V1Pod>();
  private stopped = false;
  private request: { abort(): void } | undefined;

  private readonly kc: k8s.KubeConfig;
  private readonly namespace: string;

  constructor(kc: k8s.KubeConfig, namespace: string) {
    this.kc = kc;
    this.namespace = namespace;
    void this.watch();
    void this.poll();
  }

  // A watch can sit silent for a while after an API server restart (its watch cache is
  // rebuilt); a list twice a second keeps the record current meanwhile.
  private async poll(): Promise<void> {
    const core = this.kc.makeApiClient(k8s.CoreV1Api);
    while (!this.stopped) {
      try {
        for (const pod of (await core.listNamespacedPod({ namespace: this.namespace })).items) {
          const known = this.pods.get(pod.metadata!.name!);
          if (!known || Number(pod.metadata?.resourceVersion) >= Number(known.metadata?.resourceVersion)) this.pods.set(pod.metadata!.name!, pod);
        }
      } catch {
        // the API server is down for the moment: the next round reads again
      }
      await sleep(500);
    }
  }

  private async watch(): Promise<void> {
    while (!this.stopped) {
      const done = new Promise<void>((resolve) => {
        new k8s.Watch(this.kc)
          .watch(
            `/api/v1/namespaces/${this.namespace}/pods`,
            {},
            (_type, pod: k8s.V1Pod) => {
              const known = this.pods.get(pod.metadata!.name!);
              if (!known || Number(pod.metadata?.resourceVersion) >= Number(known.metadata?.resourceVersion)) this.pods.set(pod.metadata!.name!, pod);
            },
            () => resolve(),
          )
          .then((req) => (this.request = req), () => resolve());
      });
      await done;
      if (!this.stopped) await sleep(500);
    }
  }

  of(runid: string): k8s.V1Pod | undefined {
    return [...this.pods.values()].find((p) => p.metadata?.labels?.['conveyor.ci/run-id'] === runid);
  }

  stop(): void {
    this.stopped = true;
    this.request?.abort();
  }
}

// Every step's record agrees with the pod: a step whose container reported that it ran has
// that exit code and a phase that says it ran; one that reported it was skipped, or whose
// container never started, is Skipped; one killed before it could report (a stop) has the
// container's exit code, unless the step before it never succeeded (then it never ran).
function expectStepsMatchPod(steps: StepRecord[], pod: k8s.V1Pod): void {
  expect(['Succeeded', 'Failed'], `pod phase (${pod.status?.phase})`).to.include(pod.status?.phase);
  const statuses = [...(pod.status?.initContainerStatuses ?? []), ...(pod.status?.containerStatuses ?? [])];
  for (const [index, step] of steps.entries()) {
    const state = statuses.find((s) => s.name === step.name)?.state;
    const report = stepReport(state?.terminated);
    const previousSucceeded = index === 0 || steps[index - 1]!.phase === 'Succeeded';
    if (state?.terminated && (report?.ran || (!report && previousSucceeded))) {
      const exitCode = report?.ran ? report.exitCode : state.terminated.exitCode;
      expect(step.exitCode, `${step.name} exit code`).to.equal(exitCode);
      expect(step.phase, `${step.name} ran and exited ${exitCode}`).to.equal(exitCode === 0 ? 'Succeeded' : step.phase === 'Cancelled' ? 'Cancelled' : 'Failed');
    } else {
      expect(state?.running, `${step.name} is not running in a finished pod`).to.equal(undefined);
      expect(step.phase, `${step.name} never ran`).to.equal('Skipped');
    }
  }
}

// The run's whole log, replayed: seq 1..n without a gap, and each step's output the lines
// it printed, once and in order.
async function logOf(server: TestServer, runid: string): Promise<JsonLine[]> {
  const { frames, closeCode } = await collectFrames(`${server.wsUrl}/drivers/streams/logs/command-runner/${runid}?format=json`, 60_000);
  expect(closeCode).to.equal(1000);
  const lines = frames.map((f) => JSON.parse(f) as JsonLine);
  expect(lines.map((l) => l.seq)).to.deep.equal(lines.map((_, i) => i + 1));
  return lines;
}

// The cluster is shared: another test may restart the API server at any moment. A create
// answered 503 is made again, as the CLI would.
async function create(server: TestServer, body: unknown): Promise<{ status: number; body: { runid: string } }> {
  for (let attempt = 0; ; attempt++) {
    const res = await request(server.url, 'POST', '/resources', body);
    if (res.status !== 503 || attempt >= 60) {
      expect(res.status, JSON.stringify(res.body)).to.equal(201);
      return res;
    }
    await sleep(1000);
  }
}

const outputOf = (lines: JsonLine[], step: string) => lines.filter((l) => l.step === step && l.stream !== 'system').map((l) => l.message);
const counted = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => `${prefix}-${i + 1}`);
const countStep = (prefix: string, n: number, pause = '0.2') => `for i in $(seq 1 ${n}); do echo ${prefix}-$i; sleep ${pause}; done`;

describe('kubernetes mode under control-plane faults', function () {
  this.timeout(180_000);
  let kc: k8s.KubeConfig;
  let core: k8s.CoreV1Api;
  let namespace: string;
  let recorder: PodRecorder;
  const servers: TestServer[] = [];

  async function start(dataDir = newDataDir()): Promise<TestServer> {
    const server = await startServer({
      token: await scenarioToken(namespace),
      dataDir,
      args: ['--mode', 'kubernetes', '--namespace', namespace],
      env: { KUBECONFIG: kubeconfigPath(), CONVEYOR_STOP_ESCALATION_SECONDS: '4', CONVEYOR_LOG_LEVEL: process.env.CONVEYOR_FAULT_LOG_LEVEL ?? 'info' },
    });
    servers.push(server);
    return server;
  }

  async function linesArchived(server: TestServer, runid: string, count: number): Promise<void> {
    await waitFor(`${count} lines of run ${runid}`, 90_000, async () => {
      const res = await request(server.url, 'GET', `/logs?runid=${runid}`);
      return res.status === 200 && res.body.length >= count ? true : undefined;
    });
  }

  async function finalPod(runid: string): Promise<k8s.V1Pod> {
    return waitFor(`the pod of run ${runid} to be over`, 60_000, async () => {
      const pod = recorder.of(runid);
      return pod && ['Succeeded', 'Failed'].includes(pod.status?.phase ?? '') ? pod : undefined;
    });
  }

  before(async function () {
    // Another test may be restarting a component of the shared cluster just now.
    const deadline = Date.now() + 60_000;
    while (!componentsReachable() && Date.now() < deadline) await sleep(1000);
    if (!componentsReachable()) {
      // A cluster whose components this machine does not run (any KUBECONFIG) cannot be
      // disturbed from here: say so rather than pass.
      this.skip();
    }
    kc = loadKubeConfig();
    core = kc.makeApiClient(k8s.CoreV1Api);
    await installCrds(kc);
    namespace = await createTestNamespace(core, 'conveyor-cpf');
    recorder = new PodRecorder(kc, namespace);
    await start();
  });

  afterEach(function () {
    // What the server made of the fault, when a scenario failed.
    if (this.currentTest?.state !== 'failed') return;
    for (const s of servers) console.log(s.output.filter((l) => !l.includes('"level":20')).slice(-40).map((l) => `      ${l.slice(0, 600)}`).join('\n'));
  });

  after(async () => {
    recorder?.stop();
    for (const s of servers) {
      await s.stop();
      s.cleanup();
    }
    if (namespace) {
      await releaseFinalizers(core, namespace);
      await deleteNamespace(core, namespace);
    }
  });

  it('finishes a run across an API server restart mid-run: Succeeded, steps as the pod shows, every line once', async () => {
    const server = servers.at(-1)!;
    const res = await create(server, pipeline('apiserver-restart', [['count', countStep('line', 30)], ['after', 'echo tail-line']]));
    await linesArchived(server, res.body.runid, 3);
    await restartComponent('kube-apiserver', { downMs: 5000 });
    const run = await waitForRun(server.url, res.body.runid, TERMINAL, 90_000);
    expect(run.phase).to.equal('Succeeded');
    expectStepsMatchPod(run.steps, await finalPod(res.body.runid));
    const lines = await logOf(server, res.body.runid);
    expect(outputOf(lines, 'count')).to.deep.equal(counted('line', 30));
    expect(outputOf(lines, 'after')).to.deep.equal(['tail-line']);
    expect(lines.filter((l) => l.stream === 'system').map((l) => l.message)).to.deep.equal([
      'Executing step: count', 'Step completed successfully', 'Executing step: after', 'Step completed successfully',
    ]);
  });

  it('finishes a run across a kubelet restart mid-run: Succeeded, steps as the pod shows, every line once', async () => {
    const server = servers.at(-1)!;
    const res = await create(server, pipeline('kubelet-restart', [['count', countStep('line', 25)], ['after', 'echo tail-line']]));
    await linesArchived(server, res.body.runid, 3);
    await restartComponent('kubelet', { downMs: 3000 });
    const run = await waitForRun(server.url, res.body.runid, TERMINAL, 90_000);
    expect(run.phase).to.equal('Succeeded');
    expectStepsMatchPod(run.steps, await finalPod(res.body.runid));
    const lines = await logOf(server, res.body.runid);
    expect(outputOf(lines, 'count')).to.deep.equal(counted('line', 25));
    expect(outputOf(lines, 'after')).to.deep.equal(['tail-line']);
  });

  it('refuses a cancel during an API-server outage with 503 and Retry-After; the CLI retries it and the run is Cancelled, no later step run', async () => {
    const server = servers.at(-1)!;
    // A step long enough (60 s) to be running still when the cancel gets through.
    const res = await create(server, pipeline('cancel-in-outage', [['count', countStep('line', 300)], ['never', 'echo SHOULD-NOT-RUN']]));
    const runid = res.body.runid as string;
    await linesArchived(server, runid, 3);
    let retried: Promise<unknown> | undefined;
    let retries = 0;
    await restartComponent('kube-apiserver', {
      downMs: 5000,
      whileDown: async () => {
        await sleep(500);
        const refused = await request(server.url, 'POST', `/runs/${runid}/cancel`);
        expect(refused.status, JSON.stringify(refused.body)).to.equal(503);
        expect(Number(refused.headers.get('retry-after'))).to.be.greaterThan(0);
        expect(refused.body.error).to.match(/Kubernetes API server/);
        // What `conveyor cancel` does: wait and try again until the server can act.
        const client = new ConveyorClient(server.url, { unavailableRetries: 30, maxRetryDelayMs: 2000, onRetry: () => void retries++ }, staticToken(server.token));
        retried = client.request('POST', `/runs/${runid}/cancel`);
        retried.catch(() => undefined);
      },
    });
    await retried;
    expect(retries, 'the CLI client retried through the outage').to.be.greaterThan(0);
    const run = await waitForRun(server.url, runid, TERMINAL, 90_000);
    expect(run.phase).to.equal('Cancelled');
    expect(run.steps.map((s: StepRecord) => s.phase)).to.deep.equal(['Cancelled', 'Skipped']);
    const pod = await finalPod(runid);
    expectStepsMatchPod(run.steps, pod);
    const lines = await logOf(server, runid);
    const printed = outputOf(lines, 'count');
    expect(printed).to.deep.equal(counted('line', printed.length));
    expect(printed.length).to.be.below(300);
    expect(lines.some((l) => l.message.includes('SHOULD-NOT-RUN'))).to.equal(false);
    expect(lines.at(-1)!.message).to.equal('Run cancelled');
    // The server said 503, not 500, and logged no error for the expected outage.
    const errors = server.output.filter((l) => l.includes('"level":50'));
    expect(errors.filter((l) => /request failed|upgrade failed/.test(l))).to.deep.equal([]);
  });

  it('finishes a run whose server was killed while the API server was down: one Job, every line once', async () => {
    const dataDir = newDataDir();
    // Whoever led before stops, so the server started below leads.
    for (const s of servers.splice(0)) {
      await s.stop();
      s.cleanup();
    }
    const first = await start(dataDir);
    const res = await create(first, pipeline('server-and-apiserver', [['count', countStep('line', 40)], ['after', 'echo tail-line']]));
    const runid = res.body.runid as string;
    await linesArchived(first, runid, 3);
    await restartComponent('kube-apiserver', { downMs: 4000, whileDown: () => first.kill() });
    const second = await start(dataDir);
    const run = await waitForRun(second.url, runid, TERMINAL, 120_000);
    expect(run.phase).to.equal('Succeeded');
    expectStepsMatchPod(run.steps, await finalPod(runid));
    const lines = await logOf(second, runid);
    expect(outputOf(lines, 'count')).to.deep.equal(counted('line', 40));
    expect(outputOf(lines, 'after')).to.deep.equal(['tail-line']);
    const jobs = await kc.makeApiClient(k8s.BatchV1Api).listNamespacedJob({ namespace, labelSelector: `conveyor.ci/run-id=${runid}` });
    expect(jobs.items).to.have.lengthOf(1);
  });

  it('cancels a run whose pod no node can take: Cancelled, every step Skipped, the pod never bound', async () => {
    const server = servers.at(-1)!;
    const res = await create(server, pipeline('unschedulable', [['one', 'echo never']], { resources: { requests: { cpu: '500' } } }));
    const runid = res.body.runid as string;
    await waitFor('the pod to be unschedulable', 90_000, async () => {
      const pod = recorder.of(runid);
      return pod?.status?.conditions?.some((c) => c.type === 'PodScheduled' && c.reason === 'Unschedulable') ? true : undefined;
    });
    expect((await request(server.url, 'POST', `/runs/${runid}/cancel`)).status).to.be.within(200, 299);
    const run = await waitForRun(server.url, runid, TERMINAL, 60_000);
    expect(run).to.deep.include({ phase: 'Cancelled', reason: 'Cancelled' });
    expect(run.steps.map((s: StepRecord) => s.phase)).to.deep.equal(['Skipped']);
    expect(recorder.of(runid)?.spec?.nodeName).to.equal(undefined);
  });

  it('corrects a finished run whose record contradicts its pod, with a StatusCorrected Event', async () => {
    const server = servers.at(-1)!;
    const res = await create(server, pipeline('corrected', [['one', 'echo one'], ['two', 'echo two']]));
    const runid = res.body.runid as string;
    expect((await waitForRun(server.url, runid, TERMINAL, 90_000)).phase).to.equal('Succeeded');
    // The record issue 14 found: Cancelled, the second step Skipped, though the pod ran it.
    const wrong = (await request(server.url, 'GET', `/runs/${runid}`)).body;
    const steps = wrong.steps.map((s: StepRecord, i: number) => (i === 1 ? { ...s, phase: 'Skipped', exitCode: null, startedAt: null, finishedAt: null } : s));
    kubectl(['patch', 'runs.conveyor.ci', runid, '-n', namespace, '--subresource=status', '--type=merge', '-p', JSON.stringify({ status: { phase: 'Cancelled', reason: 'Cancelled', message: 'Run cancelled', steps } })]);
    const fixed = await waitForRun(server.url, runid, ['Succeeded'], 30_000);
    expect(fixed.steps.map((s: StepRecord) => [s.name, s.phase, s.exitCode])).to.deep.equal([['one', 'Succeeded', 0], ['two', 'Succeeded', 0]]);
    expectStepsMatchPod(fixed.steps, await finalPod(runid));
    await waitFor('a StatusCorrected event', 30_000, async () => {
      const events = await core.listNamespacedEvent({ namespace, fieldSelector: `involvedObject.kind=Run,involvedObject.name=${runid}` });
      return events.items.some((e) => e.reason === 'StatusCorrected' && e.type === 'Warning') ? true : undefined;
    });
  });

  it('does not call a run Cancelled while its kubelet has not stopped it, escalates, and records what the pod shows', async () => {
    const server = servers.at(-1)!;
    const res = await create(server, pipeline('slow-kubelet', [['first', countStep('first', 15)], ['second', 'echo second-ran'], ['third', 'echo third-ran']]));
    const runid = res.body.runid as string;
    await linesArchived(server, runid, 3);
    const thaw = freezeComponent('kubelet');
    try {
      const cancel = await request(server.url, 'POST', `/runs/${runid}/cancel`);
      expect(cancel.status, JSON.stringify(cancel.body)).to.be.within(200, 299);
      // The first step ends on its own (containerd runs it), and no kubelet is there to
      // stop the pod or to start the next step: the run must stay unfinished (the cancel
      // answered after waiting 10 s for the end, which did not come).
      expect(TERMINAL).not.to.include(cancel.body.phase);
      const until = Date.now() + 3000;
      let deleted = false;
      while (Date.now() < until) {
        const now = await request(server.url, 'GET', `/runs/${runid}`);
        expect(TERMINAL, `phase while the kubelet is frozen: ${JSON.stringify(now.body)}`).not.to.include(now.body.phase);
        deleted ||= recorder.of(runid)?.metadata?.deletionTimestamp !== undefined;
        await sleep(300);
      }
      expect(deleted, `the stop was escalated: the pod is being deleted; run: ${JSON.stringify((await request(server.url, 'GET', `/runs/${runid}`)).body)}`).to.equal(true);
      const events = await core.listNamespacedEvent({ namespace, fieldSelector: `involvedObject.kind=Run,involvedObject.name=${runid}` });
      expect(events.items.map((e) => e.reason)).to.include('StopEscalated');
    } finally {
      thaw();
    }
    const run = await waitForRun(server.url, runid, TERMINAL, 90_000);
    const pod = await finalPod(runid);
    expectStepsMatchPod(run.steps, pod);
    const lines = await logOf(server, runid);
    expect(outputOf(lines, 'first')).to.deep.equal(counted('first', outputOf(lines, 'first').length));
    // A step the kubelet started after all is in the record and the log, never hidden.
    for (const step of run.steps as StepRecord[]) {
      if (step.phase === 'Skipped') expect(outputOf(lines, step.name), step.name).to.deep.equal([]);
    }
    expect(lines.at(-1)!.message).to.equal(run.phase === 'Cancelled' ? 'Run cancelled' : lines.at(-1)!.message);
  });
});
