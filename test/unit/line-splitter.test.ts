import { expect } from 'chai';
import { LINE_CONTINUES, LineSplitter } from '../../src/logs/line-splitter.ts';

function split(max: number, chunks: (string | Buffer)[]): string[] {
  const lines: string[] = [];
  const splitter = new LineSplitter(max, (l) => lines.push(l));
  for (const c of chunks) splitter.push(typeof c === 'string' ? Buffer.from(c) : c);
  splitter.end();
  return lines;
}

// The original text back from the parts, as README tells readers to do.
function join(lines: string[]): string[] {
  const out: string[] = [];
  let carry = '';
  for (const l of lines) {
    if (l.endsWith(LINE_CONTINUES)) carry += l.slice(0, -LINE_CONTINUES.length);
    else {
      out.push(carry + l);
      carry = '';
    }
  }
  return out;
}

describe('line splitter', () => {
  it('splits on newlines across chunks, drops a CR before LF, keeps a last line without newline', () => {
    expect(split(100, ['a', 'b\nc', 'd\r\n', '\n', 'tail'])).to.deep.equal(['ab', 'cd', '', 'tail']);
  });

  it('cuts a line longer than the limit into marked parts of at most the limit, which join back', () => {
    const long = 'x'.repeat(25);
    const lines = split(10, [long.slice(0, 7), long.slice(7), '\nnext\n']);
    expect(lines.slice(0, 3)).to.deep.equal([`${'x'.repeat(10)}${LINE_CONTINUES}`, `${'x'.repeat(10)}${LINE_CONTINUES}`, 'xxxxx']);
    expect(join(lines)).to.deep.equal([long, 'next']);
  });

  it('never cuts a UTF-8 character in half', () => {
    const text = 'é€😀'.repeat(20); // 2-, 3- and 4-byte characters
    for (const max of [4, 5, 6, 7, 9, 13]) {
      const bytes = Buffer.from(text);
      // One byte at a time: the worst case for a cut.
      const lines = split(max, [...bytes].map((b) => Buffer.from([b])));
      for (const l of lines) {
        const part = l.endsWith(LINE_CONTINUES) ? l.slice(0, -LINE_CONTINUES.length) : l;
        expect(part).not.to.include('\ufffd');
        expect(Buffer.byteLength(part)).to.be.at.most(max);
      }
      expect(join(lines)).to.deep.equal([text]);
    }
  });

  it('holds at most about one limit of bytes however long the line', () => {
    const lines: string[] = [];
    const splitter = new LineSplitter(1024, (l) => lines.push(l));
    const chunk = Buffer.alloc(64 * 1024, 0x61);
    for (let i = 0; i < 100; i++) splitter.push(chunk); // 6.4 MB, no newline
    splitter.end();
    expect(lines).to.have.lengthOf(6400);
    expect(lines.every((l) => l.length <= 1024 + LINE_CONTINUES.length)).to.equal(true);
  });
});
