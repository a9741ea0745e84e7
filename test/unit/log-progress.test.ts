// Where a Kubernetes run's log collection resumes: per attempt (a Job retry reruns every
// step in a new pod), what the archive already holds of each step. Decided from the marks
// Conveyor stores beside its framing lines, never from their text (issue 10, point 13),
// and run here against the real sqlite archive.
import { expect } from 'chai';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { StepMessages, type LogLine, type LogMark } from '../../src/domain/index.ts';
import { LogArchive } from '../../src/logs/archive.ts';
import { attemptsInArchive, eventStamp, progressFromArchive } from '../../src/logs/sources/run-log-collector.ts';
import { openDatabase } from '../../src/store/embedded/database.ts';

const steps = ['build', 'test'];

describe('log collection progress', () => {
  let dir: string;
  let archive: LogArchive;
  let seq = 0;
  let runid = '';

  function write(step: string | null, stream: LogLine['stream'], message: string, ts = String(seq + 1), mark?: LogMark): void {
    seq++;
    archive.append([{ runid, seq, ts, driver: 'command-runner', pipeline: 'p', step, stream, message, ...(mark ? { mark } : {}) }]);
  }
  function firstTry(upTo = 6): void {
    const lines: [string | null, LogLine['stream'], string, string?, LogMark?][] = [
      ['build', 'system', StepMessages.executing('build'), undefined, { attempt: 1, event: 'start' }],
      ['build', 'stdout', 'compiled', '100'],
      ['build', 'system', StepMessages.completed(), undefined, { attempt: 1, event: 'end' }],
      ['test', 'system', StepMessages.executing('test'), undefined, { attempt: 1, event: 'start' }],
      ['test', 'stdout', 'FAIL', '200'],
      ['test', 'system', StepMessages.failed(1), undefined, { attempt: 1, event: 'end' }],
    ];
    for (const l of lines.slice(0, upTo)) write(...l);
  }

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'conveyor-progress-'));
    archive = new LogArchive(openDatabase(dir));
    seq = 0;
    runid = `r-${Math.random()}`;
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('counts the attempts the archive has lines of, from marks only', () => {
    expect(attemptsInArchive(archive.marks(runid))).to.equal(1);
    firstTry();
    expect(attemptsInArchive(archive.marks(runid))).to.equal(1);
    // A step printing the retry line's words is output, not a retry.
    write('test', 'stdout', StepMessages.retrying(7));
    expect(attemptsInArchive(archive.marks(runid))).to.equal(1);
    write(null, 'system', StepMessages.retrying(2), undefined, { attempt: 2, event: 'attempt' });
    expect(attemptsInArchive(archive.marks(runid))).to.equal(2);
  });

  it('resumes the first attempt after its last archived output', () => {
    firstTry(5);
    const progress = progressFromArchive(archive, runid, steps);
    expect(progress.get('build')).to.deep.include({ executed: true, finished: true });
    expect(progress.get('test')).to.deep.include({ executed: true, finished: false });
    expect(progress.get('test')!.lastOutput).to.deep.equal({ ts: '200', messages: ['FAIL'] });
  });

  it('is not fooled by output that looks like a framing line', () => {
    write('build', 'system', StepMessages.executing('build'), undefined, { attempt: 1, event: 'start' });
    write('build', 'stdout', StepMessages.completed(), '100');
    write('build', 'stdout', 'and more', '100');
    const progress = progressFromArchive(archive, runid, steps);
    expect(progress.get('build')).to.deep.equal({ executed: true, finished: false, lastOutput: { ts: '100', messages: ['Step completed successfully', 'and more'] } });
  });

  it('starts a retry from nothing, whatever the attempt before it wrote', () => {
    firstTry();
    write(null, 'system', StepMessages.retrying(2), undefined, { attempt: 2, event: 'attempt' });
    const second = progressFromArchive(archive, runid, steps, 2);
    for (const name of steps) expect(second.get(name), name).to.deep.equal({ executed: false, finished: false });
    expect(progressFromArchive(archive, runid, steps, 1).get('test')).to.deep.include({ finished: true });
  });

  it('forgets the marks with the lines when a run is deleted', () => {
    firstTry();
    expect(archive.marks(runid)).to.have.lengthOf(4);
    expect(archive.delete(runid)).to.equal(6);
    expect(archive.marks(runid)).to.deep.equal([]);
  });

  it('resumes a retry within its own lines only', () => {
    firstTry();
    write(null, 'system', StepMessages.retrying(2), undefined, { attempt: 2, event: 'attempt' });
    write('build', 'system', StepMessages.executing('build'), undefined, { attempt: 2, event: 'start' });
    write('build', 'stdout', 'compiled again', '300');
    const second = progressFromArchive(archive, runid, steps, 2);
    expect(second.get('build')).to.deep.equal({ executed: true, finished: false, lastOutput: { ts: '300', messages: ['compiled again'] } });
    expect(second.get('test')).to.deep.equal({ executed: false, finished: false });
  });
});

describe('the stamp of a framing line', () => {
  it("is the event's time when that keeps the log in order", () => {
    expect(eventStamp('2026-01-15T10:00:05Z', '1768471204000000000')).to.equal('1768471205000000000');
  });
  it('comes just after the line before when the second-precision event time is earlier', () => {
    // The container's finish is reported as 10:00:05 but its last line came at 05.7.
    expect(eventStamp('2026-01-15T10:00:05Z', '1768471205700000000')).to.equal('1768471205700000001');
  });
  it('is the current time, kept after the line before, for an event without a time', () => {
    const stamp = BigInt(eventStamp(null, '1'));
    expect(stamp > BigInt(Date.now() - 1000) * 1_000_000n).to.equal(true);
    const future = String(BigInt(Date.now() + 60_000) * 1_000_000n);
    expect(eventStamp(null, future)).to.equal(String(BigInt(future) + 1n));
  });
});
