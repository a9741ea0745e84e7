// Where a Kubernetes run's log collection resumes: per attempt (a Job retry reruns every
// step in a new pod), what the archive already holds of each step.
import { expect } from 'chai';
import { StepMessages, retryAttemptOf, type LogLine } from '../../src/domain/index.ts';
import { attemptsInArchive, progressFromArchive } from '../../src/logs/sources/run-log-collector.ts';

let seq = 0;
function line(step: string | null, stream: LogLine['stream'], message: string, ts = String(++seq)): LogLine {
  return { runid: 'r', seq: ++seq, ts, driver: 'command-runner', pipeline: 'p', step, stream, message };
}

const steps = ['build', 'test'];
const firstTry: LogLine[] = [
  line('build', 'system', StepMessages.executing('build')),
  line('build', 'stdout', 'compiled', '100'),
  line('build', 'system', StepMessages.completed()),
  line('test', 'system', StepMessages.executing('test')),
  line('test', 'stdout', 'FAIL', '200'),
  line('test', 'system', StepMessages.failed(1)),
];

describe('log collection progress', () => {
  it('recognises only its own retry line', () => {
    expect(retryAttemptOf(line(null, 'system', StepMessages.retrying(3)))).to.equal(3);
    expect(retryAttemptOf(line('build', 'system', StepMessages.retrying(3))), 'a step line').to.equal(undefined);
    expect(retryAttemptOf(line(null, 'stdout', StepMessages.retrying(3))), 'output that looks like it').to.equal(undefined);
    expect(retryAttemptOf(line(null, 'system', 'Retrying: attempt three'))).to.equal(undefined);
  });

  it('counts the attempts the archive has lines of', () => {
    expect(attemptsInArchive([])).to.equal(1);
    expect(attemptsInArchive(firstTry)).to.equal(1);
    expect(attemptsInArchive([...firstTry, line(null, 'system', StepMessages.retrying(2))])).to.equal(2);
  });

  it('resumes the first attempt after its last archived output', () => {
    const cut = firstTry.slice(0, 5);
    const progress = progressFromArchive(cut, steps);
    expect(progress.get('build')).to.deep.include({ executed: true, finished: true });
    expect(progress.get('test')).to.deep.include({ executed: true, finished: false });
    expect(progress.get('test')!.lastOutput).to.deep.equal({ ts: '200', messages: ['FAIL'] });
  });

  it('starts a retry from nothing, whatever the attempt before it wrote', () => {
    const archived = [...firstTry, line(null, 'system', StepMessages.retrying(2))];
    const second = progressFromArchive(archived, steps, 2);
    for (const name of steps) expect(second.get(name), name).to.deep.equal({ executed: false, finished: false });
    expect(progressFromArchive(archived, steps, 1).get('test')).to.deep.include({ finished: true });
  });

  it('resumes a retry within its own lines only', () => {
    const archived = [
      ...firstTry,
      line(null, 'system', StepMessages.retrying(2)),
      line('build', 'system', StepMessages.executing('build')),
      line('build', 'stdout', 'compiled again', '300'),
    ];
    const second = progressFromArchive(archived, steps, 2);
    expect(second.get('build')).to.deep.equal({ executed: true, finished: false, lastOutput: { ts: '300', messages: ['compiled again'] } });
    expect(second.get('test')).to.deep.equal({ executed: false, finished: false });
  });
});
