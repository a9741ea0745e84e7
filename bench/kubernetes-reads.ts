// Kubernetes-mode reads against local mode (issue 13 point 3, issue 10 point 6): with N
// finished Runs in the cluster, GET /runs/{id} and GET /runs?limit=50 at 32 clients on a
// Kubernetes-mode server (answered from its informer caches) against the same routes on a
// local-mode server holding N finished runs in SQLite, in alternating rounds; the Kubernetes
// server's RSS with those Runs cached, its start-up (cache sync) time, and GET /metrics.
import * as k8s from '@kubernetes/client-node';
import { randomUUID } from 'node:crypto';
import { seed } from './api.ts';
import { load, type LoadRep } from './create.ts';
import { HttpClient } from './lib/http.ts';
import { startServer, type BenchServer } from './lib/server.ts';
import { fmt, mb, median, round } from './lib/stats.ts';
import { newRun } from '../src/domain/index.ts';
import { runMetadata, runSpecOf, runStatusOf } from '../src/store/kubernetes/mapping.ts';

const GROUP = 'conveyor.ci';
const VERSION = 'v1alpha1';

export interface ReadsResult {
  runs: number;
  seedSeconds: number;
  serverStartSeconds: number;
  kubernetesRssBytes: number;
  localRssBytes: number;
  routes: { route: string; kubernetes: { rps: number; p50Ms: number; p99Ms: number }; local: { rps: number; p50Ms: number; p99Ms: number }; ratio: number }[];
  metricsMs: number;
}

// The shared test cluster's API server may be restarted by other work: each call is retried
// through connection errors and 5xx for up to two minutes.
async function retried<T>(what: string, call: () => Promise<T>): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await call();
    } catch (err) {
      const code = (err as { code?: number }).code;
      if ((typeof code === 'number' && code < 500) || attempt >= 120) throw err;
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
}

// N finished (Succeeded, log archived) Runs across 100 pipelines, written as the server
// writes them: the Run, then its status.
async function seedRuns(kc: k8s.KubeConfig, namespace: string, n: number): Promise<string[]> {
  const api = kc.makeApiClient(k8s.CustomObjectsApi);
  const ids: string[] = [];
  let next = 0;
  const base = Date.now() - n * 1000;
  await Promise.all(
    Array.from({ length: 32 }, async () => {
      for (;;) {
        const i = next++;
        if (i >= n) return;
        const stamp = new Date(base + i * 1000).toISOString();
        const record = newRun({
          runid: randomUUID(), resource: 'pipeline', name: `bench-p-${i % 100}`, version: 1, pipeline: null, driver: 'command-runner',
          spec: { image: 'alpine:3', steps: [{ name: 'noop', command: 'true' }] }, stepNames: ['noop'], now: stamp,
        });
        const done = { ...record, phase: 'Succeeded' as const, reason: 'Succeeded', message: 'all steps succeeded', startedAt: stamp, finishedAt: stamp,
          steps: [{ name: 'noop', phase: 'Succeeded' as const, exitCode: 0, startedAt: stamp, finishedAt: stamp }] };
        const target = { group: GROUP, version: VERSION, namespace, plural: 'runs' };
        type Created = { metadata: { name: string; generation?: number } };
        const created = (await retried('create', () =>
          api.createNamespacedCustomObject({ ...target, body: { apiVersion: `${GROUP}/${VERSION}`, kind: 'Run', metadata: runMetadata(record, 'bench'), spec: runSpecOf(record) } }),
        ).catch((err: unknown) => {
          // A create that reached the API server before a connection broke: it exists.
          if ((err as { code?: number }).code === 409) return api.getNamespacedCustomObject({ ...target, name: record.runid });
          throw err;
        })) as Created;
        await retried('status', () => api.replaceNamespacedCustomObjectStatus({
          ...target,
          name: created.metadata.name,
          body: { ...created, status: { ...runStatusOf(done, created.metadata.generation, undefined), logsArchived: true } },
        }));
        ids.push(record.runid);
      }
    }),
  );
  return ids;
}

const summary = (reps: LoadRep[]) => ({ rps: round(median(reps.map((r) => r.rps)), 1), p50Ms: round(median(reps.map((r) => r.p50Ms)), 2), p99Ms: round(median(reps.map((r) => r.p99Ms)), 2) });

export async function benchKubernetesReads(options: { kc: k8s.KubeConfig; kubeconfig: string; namespace: string; runs: number; requests: number; rounds: number; log: (l: string) => void }): Promise<ReadsResult> {
  const { kc, namespace, runs, log } = options;
  const t0 = performance.now();
  const ids = await seedRuns(kc, namespace, runs);
  const seedSeconds = (performance.now() - t0) / 1000;
  log(`  ${fmt(runs, 0)} finished Runs written to namespace ${namespace} in ${fmt(seedSeconds, 1)} s`);
  const t1 = performance.now();
  // Retention off: the figure is the server with all N Runs in its caches.
  const k8sServer = await startServer({
    args: ['--mode', 'kubernetes', '--namespace', namespace, '--auth', 'false', '--retain-runs', '0', '--retain-seconds', '0'],
    env: { KUBECONFIG: options.kubeconfig },
  });
  const serverStartSeconds = (performance.now() - t1) / 1000;
  const seeded = await seed(runs, false);
  const localServer = await startServer({ dataDir: seeded.dir });
  const servers: Record<'kubernetes' | 'local', BenchServer> = { kubernetes: k8sServer, local: localServer };
  const localIds = seeded.runids;
  const clients = { kubernetes: new HttpClient(k8sServer.url, 32), local: new HttpClient(localServer.url, 32) };
  const result: ReadsResult = { runs, seedSeconds: round(seedSeconds, 1), serverStartSeconds: round(serverStartSeconds, 1), kubernetesRssBytes: 0, localRssBytes: 0, routes: [], metricsMs: 0 };
  try {
    const routes = [
      { route: 'GET /runs/{id}', path: (which: 'kubernetes' | 'local') => `/runs/${(which === 'kubernetes' ? ids : localIds)[Math.floor(Math.random() * runs)]}` },
      { route: 'GET /runs?limit=50', path: () => '/runs?limit=50' },
    ];
    for (const { route, path } of routes) {
      const reps = { kubernetes: [] as LoadRep[], local: [] as LoadRep[] };
      for (const which of ['local', 'kubernetes'] as const) {
        await load(servers[which], 32, 500, 60_000, async () => {
          await clients[which].send('GET', path(which));
        });
      }
      for (let r = 0; r < options.rounds; r++) {
        for (const which of r % 2 ? (['kubernetes', 'local'] as const) : (['local', 'kubernetes'] as const)) {
          reps[which].push(
            await load(servers[which], 32, options.requests, 60_000, async () => {
              const reply = await clients[which].send('GET', path(which));
              if (reply.status !== 200) throw new Error(`${which} ${route}: ${reply.status} ${reply.text.slice(0, 200)}`);
            }),
          );
        }
      }
      const k = summary(reps.kubernetes);
      const l = summary(reps.local);
      const ratio = round(l.rps / k.rps, 3);
      result.routes.push({ route, kubernetes: k, local: l, ratio });
      log(`  ${route.padEnd(20)} kubernetes ${fmt(k.rps, 0)} req/s p50 ${fmt(k.p50Ms, 1)} p99 ${fmt(k.p99Ms, 1)} ms | local ${fmt(l.rps, 0)} req/s p50 ${fmt(l.p50Ms, 1)} p99 ${fmt(l.p99Ms, 1)} ms | local/kubernetes ${fmt(ratio, 2)}x (target <= 1.5)`);
    }
    const m0 = performance.now();
    const metrics = await clients.kubernetes.send('GET', '/metrics');
    result.metricsMs = round(performance.now() - m0, 1);
    const succeeded = /^conveyor_runs\{phase="Succeeded"\} (\d+)/m.exec(metrics.text)?.[1];
    result.kubernetesRssBytes = k8sServer.memory().rss;
    result.localRssBytes = localServer.memory().rss;
    log(`  kubernetes server: started (caches synced) in ${fmt(serverStartSeconds, 1)} s, RSS ${mb(result.kubernetesRssBytes)} with ${fmt(runs, 0)} Runs cached (local server ${mb(result.localRssBytes)}); GET /metrics ${result.metricsMs} ms, conveyor_runs{phase="Succeeded"} ${succeeded}`);
  } finally {
    clients.kubernetes.close();
    clients.local.close();
    await k8sServer.stop();
    await localServer.stop();
  }
  return result;
}
