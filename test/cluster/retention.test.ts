// Retention in Kubernetes mode on the real cluster: a pipeline run five times by a server
// that keeps two finished Runs per pipeline and deletes Jobs as soon as a log is archived.
// The three oldest Runs go with their archived logs; the two kept lose their Jobs and pods
// but still answer with their record and their whole log, from the archive.
import * as k8s from '@kubernetes/client-node';
import { expect } from 'chai';
import { pipeline, request, waitForRun } from '../support/http.ts';
import type { TestServer } from '../support/server.ts';
import { kubectl, suiteNamespace } from './support/conveyor.ts';
import { waitFor } from './support/kube.ts';

describe('kubernetes mode: retention', function () {
  this.timeout(240_000);
  let core: k8s.CoreV1Api;
  let batch: k8s.BatchV1Api;
  let namespace: string;
  let server: TestServer;

  const suite = suiteNamespace('conveyor-retention');

  before(async () => {
    ({ core, namespace } = suite);
    batch = suite.kc.makeApiClient(k8s.BatchV1Api);
    server = await suite.start({ args: ['--retain-runs', '2', '--retain-job-seconds', '0'] });
  });

  const runNames = () => (JSON.parse(kubectl(['get', 'runs.conveyor.ci', '-n', namespace, '-o', 'json'])) as { items: { metadata: { name: string } }[] }).items.map((r) => r.metadata.name).sort();

  it('keeps the newest finished Runs per pipeline, deletes the rest with their logs, and removes the kept ones\' Jobs and pods once archived', async () => {
    const runids: string[] = [];
    for (let i = 1; i <= 5; i++) {
      const body = pipeline('kept', [['say', `echo line-${i}`]]);
      const res = i === 1 ? await request(server.url, 'POST', '/resources/', body) : await request(server.url, 'PUT', '/resources/pipeline/kept', body);
      expect(res.status, JSON.stringify(res.body)).to.be.oneOf([200, 201]);
      runids.push(res.body.runid);
      // One after the other, so that "newest" is unambiguous.
      expect((await waitForRun(server.url, res.body.runid, ['Succeeded', 'Failed', 'Cancelled'], 120_000)).phase).to.equal('Succeeded');
    }
    const kept = runids.slice(3).sort();
    const pruned = runids.slice(0, 3);
    await waitFor('only the two newest Runs left', 90_000, async () => (JSON.stringify(runNames()) === JSON.stringify(kept) ? true : undefined));
    await waitFor('no Job and no pod left', 90_000, async () => {
      const jobs = await batch.listNamespacedJob({ namespace, labelSelector: 'app.kubernetes.io/managed-by=conveyor' });
      const pods = await core.listNamespacedPod({ namespace, labelSelector: 'app.kubernetes.io/managed-by=conveyor' });
      return jobs.items.length === 0 && pods.items.length === 0 ? true : undefined;
    });
    for (const runid of pruned) {
      expect((await request(server.url, 'GET', `/runs/${runid}`)).status, `pruned run ${runid}`).to.equal(404);
      const logs = await request(server.url, 'GET', `/logs?runid=${runid}`);
      expect(logs.status === 404 || (Array.isArray(logs.body) && logs.body.length === 0), `no archived log of ${runid}: ${JSON.stringify(logs.body).slice(0, 200)}`).to.equal(true);
    }
    for (const [i, runid] of runids.slice(3).entries()) {
      const run = (await request(server.url, 'GET', `/runs/${runid}`)).body;
      expect(run, 'a kept run keeps its record after its Job went').to.include({ phase: 'Succeeded' });
      const logs = await request(server.url, 'GET', `/logs?runid=${runid}`);
      expect(logs.status).to.equal(200);
      expect(JSON.stringify(logs.body), 'its log, from the archive').to.include(`line-${i + 4}`);
    }
    const list = (await request(server.url, 'GET', '/runs?limit=50')).body;
    expect(list.items.map((r: { runid: string }) => r.runid).sort()).to.deep.equal(kept);
  });
});
