// Cuts a byte stream into lines with a bound on memory: a line longer than `maxLineBytes`
// is emitted in parts of at most that many bytes (never splitting a UTF-8 character), each
// part but the last ending with LINE_CONTINUES. readline keeps a whole line as one string,
// so one step printing gigabytes without a newline took the server down with it.

import { LINE_CONTINUES } from '../domain/index.ts';

export { LINE_CONTINUES, DEFAULT_MAX_LINE_BYTES } from '../domain/index.ts';

const NEWLINE = 0x0a;
const CR = 0x0d;

export class LineSplitter {
  private readonly maxLineBytes: number;
  private readonly onLine: (line: string) => void;
  // The start of the current line: chunks received since the last newline (or cut).
  private pending: Buffer[] = [];
  private pendingBytes = 0;

  constructor(maxLineBytes: number, onLine: (line: string) => void) {
    if (!Number.isSafeInteger(maxLineBytes) || maxLineBytes < 4) throw new RangeError('maxLineBytes must be at least 4');
    this.maxLineBytes = maxLineBytes;
    this.onLine = onLine;
  }

  push(chunk: Buffer): void {
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf(NEWLINE, start);
      const end = nl < 0 ? chunk.length : nl;
      this.take(chunk.subarray(start, end));
      if (nl < 0) return;
      this.emitLine();
      start = nl + 1;
    }
  }

  // The last line, when the stream ended without a newline.
  end(): void {
    if (this.pendingBytes > 0) this.emitLine();
  }

  // Adds bytes of the current line, cutting parts off while it is over the limit.
  private take(bytes: Buffer): void {
    let rest = bytes;
    while (this.pendingBytes + rest.length > this.maxLineBytes) {
      const room = this.maxLineBytes - this.pendingBytes;
      const joined = Buffer.concat([...this.pending, rest.subarray(0, room)]);
      const cut = characterBoundary(joined, joined.length);
      this.onLine(joined.toString('utf8', 0, cut) + LINE_CONTINUES);
      // Bytes of a character cut in half start the next part.
      const carry = joined.subarray(cut);
      this.pending = carry.length > 0 ? [Buffer.from(carry)] : [];
      this.pendingBytes = carry.length;
      rest = rest.subarray(room);
    }
    if (rest.length > 0) {
      this.pending.push(rest);
      this.pendingBytes += rest.length;
    }
  }

  private emitLine(): void {
    let line = this.pending.length === 1 ? this.pending[0]! : Buffer.concat(this.pending);
    // CRLF line ends lose their CR, as readline's did.
    if (line.length > 0 && line[line.length - 1] === CR) line = line.subarray(0, line.length - 1);
    this.pending = [];
    this.pendingBytes = 0;
    this.onLine(line.toString('utf8'));
  }
}

// The largest offset <= `end` that does not fall inside a multi-byte UTF-8 character.
function characterBoundary(bytes: Buffer, end: number): number {
  let i = end;
  // Step back over continuation bytes (10xxxxxx), at most three.
  while (i > 0 && end - i < 3 && (bytes[i - 1]! & 0xc0) === 0x80) i--;
  if (i === 0) return end;
  const lead = bytes[i - 1]!;
  const size = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : lead >= 0xc0 ? 2 : 1;
  // The character starting at i-1 is complete: the cut may stay at `end`.
  return i - 1 + size <= end ? end : i - 1;
}
