// Issue 13, point 6: what a step costs on Kubernetes. For 1, 5 and 10 steps of `true`,
// the time from sending the request to the run's (or Job's) success, measured in rounds
// that alternate three ways of running the same containers on the same cluster:
//   - conveyor: `POST /resources/` of an n-step pipeline until `GET /runs/{id}` says
//     Succeeded (the server's job model: one container per step, taking turns);
//   - bare: a Job created with client-node whose pod has the same n containers (same image,
//     `/bin/sh -c true`), started together with no ordering at all, until its pod has
//     succeeded: the floor for starting n containers on this node;
//   - init containers: the same Job with containers 1..n-1 as init containers (the model
//     Conveyor used before), until its pod has succeeded.
// Printed: medians per size, each size's ratio to its 1-step figure (target for conveyor
// at 10 steps: <= 1.3) and conveyor's ratio to the bare Job of as many containers.
import type * as k8s from '@kubernetes/client-node';
import { createRun, type HttpClient } from './lib/http.ts';
import { fmt, median, sleep } from './lib/stats.ts';
import { epochMs } from './lib/ws.ts';

const IMAGE = 'jimjuniorb/hello-node:1.2.3';
const POLL_MS = 20;

export type Way = 'conveyor' | 'bare' | 'initContainers';

export interface StepCountsOptions {
  batch: k8s.BatchV1Api;
  core: k8s.CoreV1Api;
  namespace: string;
  client: HttpClient;
  sizes: number[];
  rounds: number;
  log: (line: string) => void;
}

export type StepCountsResult = Record<string, Record<Way, { medianMs: number; samples: number[] }>>;

// A Job of the bench's own, outside Conveyor: `containers` started together, or all but the
// last as init containers.
export function benchJob(name: string, label: string, containers: k8s.V1Container[], sequential = false): k8s.V1Job {
  return {
    metadata: { name, labels: { 'conveyor-bench': label } },
    spec: {
      backoffLimit: 0,
      template: {
        metadata: { labels: { 'conveyor-bench': label } },
        spec: {
          restartPolicy: 'Never',
          automountServiceAccountToken: false,
          enableServiceLinks: false,
          ...(sequential && containers.length > 1 ? { initContainers: containers.slice(0, -1), containers: containers.slice(-1) } : { containers }),
        },
      },
    },
  };
}

export function benchContainer(name: string, command: string): k8s.V1Container {
  return { name, image: IMAGE, imagePullPolicy: 'IfNotPresent', command: ['/bin/sh', '-c', command] };
}

function stepJob(name: string, steps: number, sequential: boolean): k8s.V1Job {
  return benchJob(name, 'steps', Array.from({ length: steps }, (_, i) => benchContainer(`step-${i + 1}`, 'true')), sequential);
}

// Until the Job's pod has succeeded: the moment Conveyor's reconciler can tell the run
// succeeded too (it reads the pod), one step before the Job controller marks the Job Complete.
async function podSucceeded(core: k8s.CoreV1Api, namespace: string, job: string, started: number): Promise<number> {
  for (;;) {
    const pods = await core.listNamespacedPod({ namespace, labelSelector: `job-name=${job}` });
    const phase = pods.items[0]?.status?.phase;
    if (phase === 'Succeeded') return epochMs() - started;
    if (phase === 'Failed') throw new Error(`bench Job ${job} failed`);
    await sleep(POLL_MS);
  }
}

async function bareRun(o: StepCountsOptions, steps: number, sequential: boolean, tag: string): Promise<number> {
  const name = `${sequential ? 'init' : 'bare'}-${steps}-${tag}`;
  const started = epochMs();
  await o.batch.createNamespacedJob({ namespace: o.namespace, body: stepJob(name, steps, sequential) });
  return podSucceeded(o.core, o.namespace, name, started);
}

async function conveyorRun(o: StepCountsOptions, steps: number, tag: string): Promise<number> {
  const started = epochMs();
  const runid = await createRun(o.client, `steps-${steps}-${tag}`, Array.from({ length: steps }, (_, i): [string, string] => [`step-${i + 1}`, 'true']));
  for (;;) {
    const reply = await o.client.send('GET', `/runs/${runid}`);
    const phase = (JSON.parse(reply.text) as { phase?: string }).phase;
    if (phase === 'Succeeded') return epochMs() - started;
    if (phase === 'Failed' || phase === 'Cancelled') throw new Error(`bench run ${runid} (${steps} steps) ended ${phase}: ${reply.text}`);
    await sleep(POLL_MS);
  }
}

export async function benchStepCounts(o: StepCountsOptions): Promise<StepCountsResult> {
  const ways: Way[] = ['conveyor', 'bare', 'initContainers'];
  const samples = new Map<string, number[]>();
  const record = (way: Way, steps: number, ms: number) => samples.set(`${way}/${steps}`, [...(samples.get(`${way}/${steps}`) ?? []), ms]);
  const once = (way: Way, steps: number, tag: string) =>
    way === 'conveyor' ? conveyorRun(o, steps, tag) : bareRun(o, steps, way === 'initContainers', tag);
  // Warm-up: the image on the node, the server's caches and leadership.
  for (const way of ways) await once(way, 1, 'warm');
  for (let round = 0; round < o.rounds; round++) {
    for (const steps of o.sizes) {
      for (const way of ways) record(way, steps, await once(way, steps, `r${round}`));
    }
    o.log(`  round ${round + 1} of ${o.rounds} done`);
  }
  const result: StepCountsResult = {};
  for (const steps of o.sizes) {
    result[String(steps)] = Object.fromEntries(ways.map((way) => {
      const s = samples.get(`${way}/${steps}`) ?? [];
      return [way, { medianMs: median(s), samples: s }];
    })) as StepCountsResult[string];
  }
  const one = result[String(o.sizes[0])]!;
  o.log(`steps | conveyor ms (x 1-step) | bare Job, same containers ms (x 1-step) | init containers ms (x 1-step) | conveyor / bare`);
  for (const steps of o.sizes) {
    const r = result[String(steps)]!;
    const cell = (way: Way) => `${fmt(r[way].medianMs, 0)} (${fmt(r[way].medianMs / one[way].medianMs)})`;
    o.log(`${String(steps).padStart(5)} | ${cell('conveyor').padEnd(22)} | ${cell('bare').padEnd(39)} | ${cell('initContainers').padEnd(29)} | ${fmt(r.conveyor.medianMs / r.bare.medianMs)}`);
  }
  const last = result[String(o.sizes.at(-1))]!;
  o.log(`conveyor ${o.sizes.at(-1)} steps / 1 step: ${fmt(last.conveyor.medianMs / one.conveyor.medianMs)} (target <= 1.3; Tekton v1.15 on this cluster, from the issue: 10 steps 6-7 s, 5 steps 3-4 s)`);
  return result;
}
