// The run index behind Kubernetes mode's GET /runs and /metrics: pages newest first with a
// cursor that survives inserts, counts by phase through every change, forgets deleted runs.
import { expect } from 'chai';
import type { RunPhase } from '../../src/domain/index.ts';
import type { RunObject } from '../../src/store/kubernetes/mapping.ts';
import { RunIndex } from '../../src/store/kubernetes/run-index.ts';

let rv = 0;
function runObject(i: number, phase: RunPhase = 'Pending', name = `p${i % 3}`): RunObject {
  const id = `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`;
  return {
    apiVersion: 'conveyor.ci/v1alpha1',
    kind: 'Run',
    metadata: { name: id, resourceVersion: String(++rv), annotations: { 'conveyor.ci/created-at': new Date(Date.UTC(2026, 0, 1, 0, 0, i)).toISOString() } },
    spec: { resource: 'pipeline', name, version: 1, driver: 'command-runner', pipelineSpec: { image: 'x', steps: [{ name: 's', command: 'true' }] } },
    status: { phase },
  } as unknown as RunObject;
}

describe('RunIndex', () => {
  it('pages newest first, filters by resource name, and its cursor resumes after the last item even when newer runs arrive', () => {
    const index = new RunIndex();
    for (let i = 0; i < 10; i++) index.set(runObject(i).metadata.name, runObject(i));
    const first = index.page({ limit: 4 });
    expect(first.items.map((r) => r.runid.slice(-2))).to.deep.equal(['09', '08', '07', '06']);
    index.set(runObject(20).metadata.name, runObject(20));
    const second = index.page({ limit: 4, continue: first.continue });
    expect(second.items.map((r) => r.runid.slice(-2))).to.deep.equal(['05', '04', '03', '02']);
    const last = index.page({ limit: 4, continue: second.continue });
    expect(last.items.map((r) => r.runid.slice(-2))).to.deep.equal(['01', '00']);
    expect(last.continue).to.equal(undefined);
    expect(index.page({ limit: 50, name: 'p1' }).items.map((r) => r.runid.slice(-2))).to.deep.equal(['07', '04', '01']);
  });

  it('counts by phase through updates and deletes, and keeps one entry per run', () => {
    const index = new RunIndex();
    for (let i = 0; i < 5; i++) index.set(runObject(i).metadata.name, runObject(i));
    index.set(runObject(1).metadata.name, runObject(1, 'Running'));
    index.set(runObject(1).metadata.name, runObject(1, 'Succeeded'));
    index.set(runObject(2).metadata.name, runObject(2, 'Failed'));
    index.set(runObject(3).metadata.name, undefined);
    expect(index.size).to.equal(4);
    expect(index.countByPhase()).to.include({ Pending: 2, Running: 0, Succeeded: 1, Failed: 1 });
    expect(index.page({ limit: 50 }).items.map((r) => r.runid.slice(-2))).to.deep.equal(['04', '02', '01', '00']);
    expect(index.get(runObject(1).metadata.name)?.phase).to.equal('Succeeded');
    expect(index.inPhase(['Pending']).map((r) => r.runid.slice(-2))).to.deep.equal(['00', '04']);
  });

  it('refuses a cursor it did not issue', () => {
    expect(() => new RunIndex().page({ limit: 5, continue: 'bm9wZQ' })).to.throw(/not a token/);
  });
});
