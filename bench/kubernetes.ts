// `npm run bench:cluster`: Kubernetes-mode benchmarks of issue 5, point 10, on the test
// cluster (KUBECONFIG, else .cluster/kubeconfig from `npm run cluster:up`). Each figure is a
// median with a baseline measured in the same run, against the same API server:
//   1. POST to first log line, vs a bare Job with the same image and command created with
//      client-node and followed to its first log line;
//   2. 200 runs posted at once until all their Jobs exist, vs a plain client-node loop
//      creating 200 Jobs;
//   3. 20 clients following one run: log streams the server opened per container;
//   4. reads from the informer caches with --runs Runs stored, against local mode;
//   5. 1, 5 and 10 trivial steps from POST to Succeeded, against bare Jobs of the same
//      containers (started together, and as init containers).
// Flags: --quick (fewer repetitions, 50 runs instead of 200). BENCH_ONLY=first-line,burst,
// followers,reads,steps picks some.
import * as k8s from '@kubernetes/client-node';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { parseArgs } from 'node:util';
import { HttpClient, createRun } from './lib/http.ts';
import { benchKubernetesReads } from './kubernetes-reads.ts';
import { benchContainer, benchJob, benchStepCounts } from './kubernetes-steps.ts';
import { repoRoot, startServer, type BenchServer } from './lib/server.ts';
import { fmt, median, sleep } from './lib/stats.ts';
import { epochMs, logUrl, openSocket, parseSeedFrame } from './lib/ws.ts';

const { values: flags } = parseArgs({ options: { quick: { type: 'boolean', default: false }, runs: { type: 'string', default: '5000' } } });
const reps = flags.quick ? 3 : 5;
const burst = flags.quick ? 50 : 200;
const burstRounds = flags.quick ? 1 : 3;

const kubeconfig = process.env.KUBECONFIG ?? join(repoRoot, '.cluster', 'kubeconfig');
if (!existsSync(kubeconfig)) {
  process.stderr.write(`bench: no cluster (${kubeconfig} missing): run \`npm run cluster:up\` or set KUBECONFIG\n`);
  process.exit(2);
}
const kc = new k8s.KubeConfig();
kc.loadFromFile(kubeconfig);
const core = kc.makeApiClient(k8s.CoreV1Api);
const batch = kc.makeApiClient(k8s.BatchV1Api);
const kubectl = (args: string[]) =>
  execFileSync(existsSync(join(repoRoot, '.cluster/bin/kubectl')) ? join(repoRoot, '.cluster/bin/kubectl') : 'kubectl', args, {
    encoding: 'utf8',
    env: { ...process.env, KUBECONFIG: kubeconfig },
  });

function bareJob(name: string, command: string): k8s.V1Job {
  return benchJob(name, 'baseline', [benchContainer('step', command)]);
}

async function podOfJob(namespace: string, job: string): Promise<k8s.V1Pod> {
  for (;;) {
    const pods = await core.listNamespacedPod({ namespace, labelSelector: `job-name=${job}` });
    const pod = pods.items[0];
    const state = pod?.status?.containerStatuses?.[0]?.state;
    if (pod && (state?.running || state?.terminated)) return pod;
    await sleep(20);
  }
}

// Baseline 1: create a Job and read its first log line through the log API.
async function bareJobFirstLine(namespace: string, i: number): Promise<number> {
  const name = `bare-${i}-${Date.now() % 100000}`;
  const started = epochMs();
  await batch.createNamespacedJob({ namespace, body: bareJob(name, 'echo hello') });
  const pod = await podOfJob(namespace, name);
  const log = new k8s.Log(kc);
  const firstLine = new Promise<number>((resolve) => {
    const sink = new Writable({
      write(chunk: Buffer, _enc: string, done: () => void) {
        if (chunk.toString().includes('hello')) resolve(epochMs());
        done();
      },
    });
    void log.log(namespace, pod.metadata!.name!, 'step', sink, { follow: true });
  });
  return (await firstLine) - started;
}

async function conveyorFirstLine(server: BenchServer, client: HttpClient, i: number): Promise<number> {
  const started = epochMs();
  const runid = await createRun(client, `first-line-${i}`, [['hello', 'echo hello']]);
  // Retry the websocket until the run exists for the server (it does at once: the POST wrote it).
  return new Promise<number>((resolve, reject) => {
    const ws = openSocket(logUrl(server.wsUrl, runid));
    ws.on('message', (data) => {
      if (parseSeedFrame(data.toString()).message === 'hello') {
        resolve(epochMs() - started);
        ws.close();
      }
    });
    ws.on('error', reject);
  });
}

async function jobsWithLabel(namespace: string, selector: string): Promise<number> {
  return (await batch.listNamespacedJob({ namespace, labelSelector: selector })).items.length;
}

async function withNamespace<T>(prefix: string, work: (namespace: string) => Promise<T>): Promise<T> {
  const namespace = `${prefix}-${Date.now().toString(36)}`;
  await core.createNamespace({ body: { metadata: { name: namespace } } });
  try {
    return await work(namespace);
  } finally {
    // Run pods keep Conveyor's log finalizer until archived; let them go before deleting.
    const pods = await core.listNamespacedPod({ namespace });
    for (const pod of pods.items) {
      if (pod.metadata?.finalizers?.length) {
        await core
          .patchNamespacedPod({ name: pod.metadata.name!, namespace, body: { metadata: { finalizers: null } } }, k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch))
          .catch(() => undefined);
      }
    }
    await core.deleteNamespace({ name: namespace }).catch(() => undefined);
  }
}

// A Kubernetes-mode server in the bench's namespace. Authentication is off: these figures are
// about running steps and following logs; a token review per request is another subject.
function kubernetesArgs(namespace: string): string[] {
  return ['--mode', 'kubernetes', '--namespace', namespace, '--auth', 'false'];
}

async function metric(server: BenchServer, name: string): Promise<number> {
  const text = await (await fetch(`${server.url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line ? Number(line.split(' ')[1]) : 0;
}

const results: Record<string, unknown> = {};
kubectl(['apply', '-f', join(repoRoot, 'manifests', 'crds')]);

const only = process.env.BENCH_ONLY?.split(',');
const wanted = (name: string) => !only || only.includes(name);

// 1. POST to first log line.
if (wanted('first-line')) await withNamespace('bench-first-line', async (namespace) => {
  const server = await startServer({ args: kubernetesArgs(namespace), env: { KUBECONFIG: kubeconfig } });
  const client = new HttpClient(server.url, 4);
  try {
    await conveyorFirstLine(server, client, -1); // warm-up: caches, leader election, image on the node
    await bareJobFirstLine(namespace, -1);
    const conveyor: number[] = [];
    const bare: number[] = [];
    for (let i = 0; i < reps; i++) {
      conveyor.push(await conveyorFirstLine(server, client, i));
      bare.push(await bareJobFirstLine(namespace, i));
    }
    const ratio = median(conveyor) / median(bare);
    results.firstLine = { conveyorMs: median(conveyor), bareJobMs: median(bare), ratio, samples: { conveyor, bare } };
    console.log(`POST -> first log line: conveyor ${fmt(median(conveyor), 0)} ms, bare Job ${fmt(median(bare), 0)} ms, ratio ${fmt(ratio)} (target <= 1.25)`);
  } finally {
    client.close();
    await server.stop();
  }
});

// 2. A burst of runs until all their Jobs exist: `burstRounds` rounds, each a client-node
// loop then a Conveyor burst on a node cleared of the round before's pods.
if (wanted('burst')) await withNamespace('bench-burst', async (namespace) => {
  const server = await startServer({ args: kubernetesArgs(namespace), env: { KUBECONFIG: kubeconfig } });
  const client = new HttpClient(server.url, 32);
  const rounds: { postedMs: number; allJobsMs: number; clientLoopMs: number; ratio: number }[] = [];
  const clearJobs = async (selector: string) => {
    await batch.deleteCollectionNamespacedJob({ namespace, labelSelector: selector, propagationPolicy: 'Background' });
    // Conveyor's pods keep their log finalizer until archived; wait for the pods to go.
    while ((await core.listNamespacedPod({ namespace, labelSelector: selector })).items.length > 0) await sleep(500);
  };
  try {
    await createRun(client, 'burst-warm-up', [['ok', 'true']]);
    while ((await jobsWithLabel(namespace, 'app.kubernetes.io/managed-by=conveyor')) < 1) await sleep(20);
    for (let round = 0; round < burstRounds; round++) {
      const started = epochMs();
      // The same Jobs as Conveyor's (their pods start and load the node alike).
      for (let i = 0; i < burst; i++) await batch.createNamespacedJob({ namespace, body: bareJob(`loop-${round}-${i}`, 'true') });
      const clientLoopMs = epochMs() - started;
      await clearJobs('conveyor-bench=baseline');
      const existing = await jobsWithLabel(namespace, 'app.kubernetes.io/managed-by=conveyor');
      const t0 = epochMs();
      await Promise.all(Array.from({ length: burst }, (_, i) => createRun(client, `burst-${round}-${i}`, [['ok', 'true']])));
      const postedMs = epochMs() - t0;
      while ((await jobsWithLabel(namespace, 'app.kubernetes.io/managed-by=conveyor')) < existing + burst) await sleep(50);
      const allJobsMs = epochMs() - t0;
      rounds.push({ postedMs, allJobsMs, clientLoopMs, ratio: allJobsMs / clientLoopMs });
      console.log(`  round ${round + 1}: POSTs answered ${fmt(postedMs, 0)} ms, all Jobs ${fmt(allJobsMs, 0)} ms, client-node loop ${fmt(clientLoopMs, 0)} ms`);
      if (round + 1 < burstRounds) {
        // Let every run finish (so its log is archived and its pod released), then clear.
        while ((await core.listNamespacedPod({ namespace, labelSelector: 'app.kubernetes.io/managed-by=conveyor', fieldSelector: 'status.phase!=Succeeded' })).items.length > 0) await sleep(1000);
        await sleep(3000);
        await clearJobs('app.kubernetes.io/managed-by=conveyor');
      }
    }
    const m = (pick: (r: (typeof rounds)[number]) => number) => median(rounds.map(pick));
    results.burst = { runs: burst, rounds: rounds.length, postedMs: m((r) => r.postedMs), allJobsMs: m((r) => r.allJobsMs), clientLoopMs: m((r) => r.clientLoopMs), ratio: m((r) => r.ratio), samples: rounds };
    console.log(`${burst} runs at once (median of ${rounds.length}): all POSTs answered in ${fmt(m((r) => r.postedMs), 0)} ms, all Jobs exist after ${fmt(m((r) => r.allJobsMs), 0)} ms; client-node loop ${fmt(m((r) => r.clientLoopMs), 0)} ms; ratio ${fmt(m((r) => r.ratio))} (target <= 1.5)`);
  } finally {
    client.close();
    await server.stop();
  }
});

// 3. Many followers, one log stream per container.
if (wanted('followers')) await withNamespace('bench-followers', async (namespace) => {
  // The server logs each log connection it opens (debug): counted per container.
  const perContainer = new Map<string, number>();
  const onLine = (line: string) => {
    if (!line.includes('log stream opened')) return;
    const { container } = JSON.parse(line) as { container: string };
    perContainer.set(container, (perContainer.get(container) ?? 0) + 1);
  };
  const server = await startServer({ args: kubernetesArgs(namespace), env: { KUBECONFIG: kubeconfig, CONVEYOR_LOG_LEVEL: 'debug' }, onLine });
  const client = new HttpClient(server.url, 4);
  try {
    const before = await metric(server, 'conveyor_log_streams_opened_total');
    const runid = await createRun(client, 'followed', [['wait', 'sleep 2'], ['print', 'for i in $(seq 1 200); do echo line-$i; done']]);
    const counts = await Promise.all(
      Array.from({ length: 20 }, () =>
        new Promise<number>((resolve, reject) => {
          let n = 0;
          const ws = openSocket(logUrl(server.wsUrl, runid));
          ws.on('message', () => n++);
          ws.on('close', () => resolve(n));
          ws.on('error', reject);
        }),
      ),
    );
    const opened = (await metric(server, 'conveyor_log_streams_opened_total')) - before;
    const streams = Object.fromEntries(perContainer);
    results.followers = { clients: 20, framesPerClient: counts, logStreamsOpened: opened, perContainer: streams };
    const each = Object.entries(streams).map(([c, n]) => `${c}=${n}`).join(', ');
    console.log(`20 clients on one run: every client got ${new Set(counts).size === 1 ? counts[0] : counts.join('/')} frames; log streams opened per container: ${each} (must be 1 each; ${opened} in all by the metric)`);
  } finally {
    client.close();
    await server.stop();
  }
});

// 4. Reads served from the informer caches, against local mode, with many Runs stored.
if (wanted('reads')) await withNamespace('bench-reads', async (namespace) => {
  const runs = Number(flags.runs);
  console.log(`\n== GET /runs/{id} and GET /runs?limit=50 at 32 clients with ${fmt(runs, 0)} finished Runs, against local mode with as many`);
  (results as Record<string, unknown>).reads = await benchKubernetesReads({ kc, kubeconfig, namespace, runs, requests: flags.quick ? 1000 : 3000, rounds: flags.quick ? 1 : 3, log: console.log });
});

// 5. What a step costs: 1, 5 and 10 steps of `true`, against bare Jobs of the same containers.
if (wanted('steps')) await withNamespace('bench-steps', async (namespace) => {
  console.log('\n== POST to Succeeded for 1, 5 and 10 steps of `true`, against bare Jobs of the same containers');
  const server = await startServer({ args: kubernetesArgs(namespace), env: { KUBECONFIG: kubeconfig } });
  const client = new HttpClient(server.url, 4);
  try {
    results.steps = await benchStepCounts({ batch, core, namespace, client, sizes: [1, 5, 10], rounds: reps, log: console.log });
  } finally {
    client.close();
    await server.stop();
  }
});

mkdirSync(join(repoRoot, 'bench', 'results'), { recursive: true });
writeFileSync(join(repoRoot, 'bench', 'results', 'kubernetes.json'), `${JSON.stringify(results, null, 2)}\n`);
