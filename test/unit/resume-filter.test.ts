import { expect } from 'chai';
import { ResumeFilter } from '../../src/logs/resume-filter.ts';

const S = 1_000_000_000n;
const at = (seconds: number, nanos = 0) => (BigInt(seconds) * S + BigInt(nanos)).toString();

describe('log resume filter', () => {
  it('keeps every line of one unbroken stream, repeated lines included', () => {
    const f = new ResumeFilter();
    expect(f.accept(at(10, 1), 'a')).to.equal(true);
    expect(f.accept(at(10, 1), 'a')).to.equal(true);
    expect(f.accept(at(10, 2), 'b')).to.equal(true);
  });

  it('reconnects from the second of the last line and drops what it already kept', () => {
    const f = new ResumeFilter();
    f.accept(at(10, 5), 'one');
    f.accept(at(11, 7), 'two');
    f.accept(at(11, 7), 'two');
    expect(f.sinceTime).to.equal('1970-01-01T00:00:11Z');
    f.restart();
    // The server replays from 00:00:11, including both copies kept at 11.000000007.
    expect(f.accept(at(11, 7), 'two')).to.equal(false);
    expect(f.accept(at(11, 7), 'two')).to.equal(false);
    expect(f.accept(at(11, 7), 'two'), 'a third copy is new').to.equal(true);
    expect(f.accept(at(11, 9), 'three')).to.equal(true);
    expect(f.accept(at(10, 5), 'one'), 'older than the last kept line').to.equal(false);
  });

  it('resumes from the archive after a restart', () => {
    const f = new ResumeFilter({ ts: at(20, 3), messages: ['x', 'y'] });
    expect(f.sinceTime).to.equal('1970-01-01T00:00:20Z');
    f.restart();
    expect(f.accept(at(20, 1), 'w')).to.equal(false);
    expect(f.accept(at(20, 3), 'x')).to.equal(false);
    expect(f.accept(at(20, 3), 'y')).to.equal(false);
    expect(f.accept(at(20, 4), 'z')).to.equal(true);
  });

  it('has no sinceTime before the first line', () => {
    expect(new ResumeFilter().sinceTime).to.equal(undefined);
  });
});
