// Retention's plan: which finished Runs go (count per pipeline, age) and which lose only
// their Job; never a run whose log is not archived, never an unfinished one.
import { expect } from 'chai';
import { planRetention, type RetainedRun } from '../../src/controller/kubernetes/retention.ts';

const NOW = Date.parse('2026-06-01T00:00:00Z');
const at = (minutesAgo: number) => new Date(NOW - minutesAgo * 60_000).toISOString();
function run(runid: string, group: string, minutesAgo: number | null, extra: Partial<RetainedRun> = {}): RetainedRun {
  return { runid, group, phase: minutesAgo === null ? 'Running' : 'Succeeded', finishedAt: minutesAgo === null ? null : at(minutesAgo), logsArchived: true, hasJob: true, ...extra };
}

describe('planRetention', () => {
  it('keeps the newest finished runs of each pipeline up to the limit and deletes the rest', () => {
    const runs = [run('a1', 'pipeline/a', 1), run('a2', 'pipeline/a', 2), run('a3', 'pipeline/a', 3), run('a4', 'pipeline/a', 4), run('b1', 'pipeline/b', 10)];
    const plan = planRetention(runs, NOW, { runsPerPipeline: 2, maxAgeSeconds: 0, jobSeconds: 0 });
    expect(plan.deleteRuns.sort()).to.deep.equal(['a3', 'a4']);
    expect(plan.deleteJobs.sort(), 'the kept ones lose only their Job').to.deep.equal(['a1', 'a2', 'b1']);
  });

  it('deletes finished runs older than the age limit, whatever the count', () => {
    const plan = planRetention([run('old', 'pipeline/a', 120), run('new', 'pipeline/a', 5)], NOW, { runsPerPipeline: 0, maxAgeSeconds: 3600, jobSeconds: 0 });
    expect(plan.deleteRuns).to.deep.equal(['old']);
  });

  it('removes the Job of a kept run only once it has been finished for the Job grace period', () => {
    const plan = planRetention([run('recent', 'pipeline/a', 1), run('older', 'pipeline/a', 10)], NOW, { runsPerPipeline: 0, maxAgeSeconds: 0, jobSeconds: 300 });
    expect(plan).to.deep.equal({ deleteRuns: [], deleteJobs: ['older'] });
  });

  it('never touches a run still going, one whose log is not archived yet, or a Job already gone', () => {
    const runs = [
      run('going', 'pipeline/a', null),
      run('unarchived', 'pipeline/a', 500, { logsArchived: false }),
      run('nojob', 'pipeline/a', 1, { hasJob: false }),
      run('failed', 'pipeline/a', 2, { phase: 'Failed' }),
    ];
    const plan = planRetention(runs, NOW, { runsPerPipeline: 1, maxAgeSeconds: 60, jobSeconds: 0 });
    expect(plan.deleteRuns).to.deep.equal(['failed']);
    expect(plan.deleteJobs).to.deep.equal([]);
    expect(planRetention(runs, NOW, { runsPerPipeline: 0, maxAgeSeconds: 0, jobSeconds: 0 })).to.deep.equal({ deleteRuns: [], deleteJobs: ['failed'] });
  });
});
