// The Kubernetes API server's refusals, in Conveyor's terms: an object it rejects as invalid
// (422) is the client's mistake, a 400 as local mode's validation answers, not a 409
// (which says "retry"); a missing one is a 404.
import * as k8s from '@kubernetes/client-node';
import { expect } from 'chai';
import { ConveyorError } from '../../src/domain/index.ts';
import { CustomResources } from '../../src/kube/names.ts';
import { CustomObjects } from '../../src/store/kubernetes/custom-objects.ts';
import { installCrds } from './support/conveyor.ts';
import { createTestNamespace, deleteNamespace, loadKubeConfig } from './support/kube.ts';

describe('kubernetes: API server errors mapped as local mode answers', () => {
  const kc = loadKubeConfig();
  const core = kc.makeApiClient(k8s.CoreV1Api);
  let namespace: string;
  let pipelines: CustomObjects<Record<string, unknown>, Record<string, unknown>>;

  before(async () => {
    await installCrds(kc);
    namespace = await createTestNamespace(core, 'api-errors');
    pipelines = new CustomObjects(kc, namespace, CustomResources.Pipeline.kind, CustomResources.Pipeline.plural);
  });
  after(async () => {
    if (namespace) await deleteNamespace(core, namespace);
  });

  async function statusOf(work: Promise<unknown>): Promise<{ status: number; message: string }> {
    try {
      await work;
    } catch (err) {
      if (err instanceof ConveyorError) return { status: err.status, message: err.message };
      throw err;
    }
    throw new Error('the API server accepted it');
  }

  it('a Pipeline the CRD schema refuses (422) is a 400 naming what Kubernetes said', async () => {
    const refused = await statusOf(pipelines.create({ name: 'no-steps' }, { steps: [] }));
    expect(refused.status).to.equal(400);
    expect(refused.message).to.match(/Kubernetes refused Pipeline no-steps: .*spec.steps/);
    const badName = await statusOf(pipelines.create({ name: 'bad-step' }, { steps: [{ name: 'Not A Label', command: 'true' }] }));
    expect(badName.status).to.equal(400);
  });

  it('an object that does not exist is a 404 on replace and delete', async () => {
    expect((await statusOf(pipelines.delete('absent'))).status).to.equal(404);
    expect((await statusOf(pipelines.mergePatch('absent', { spec: {} }))).status).to.equal(404);
  });
});
