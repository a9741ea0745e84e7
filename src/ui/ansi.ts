// A log line as styled pieces: ANSI SGR colour codes (the 16 colours, 256-colour and true
// colour, bold, dim, italic, underline, reset) become classes or colours, other escape
// sequences are dropped, and http(s) URLs become links. Text stays text: the renderer
// never turns a line into HTML.
export interface Piece {
  text: string;
  classes: string;
  color?: string;
  background?: string;
  href?: string;
}

interface Style {
  fg?: string;
  bg?: string;
  bold?: boolean;
  dim?: boolean;
  italic?: boolean;
  underline?: boolean;
}

const ESCAPES = /\x1b\[([0-9;]*)([A-Za-z])|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]/g;
const URL = /\bhttps?:\/\/[^\s<>"'`]+[^\s<>"'`.,;:!?)\]}]/g;

function color256(n: number): string | undefined {
  if (n < 16) return `c${n}`;
  if (n < 232) {
    const v = [0, 95, 135, 175, 215, 255];
    const i = n - 16;
    return `rgb(${v[Math.floor(i / 36)]},${v[Math.floor(i / 6) % 6]},${v[i % 6]})`;
  }
  if (n < 256) {
    const g = 8 + (n - 232) * 10;
    return `rgb(${g},${g},${g})`;
  }
  return undefined;
}

function applySgr(style: Style, params: number[]): Style {
  const next = { ...style };
  for (let i = 0; i < params.length; i++) {
    const p = params[i]!;
    if (p === 0) {
      for (const k of Object.keys(next) as (keyof Style)[]) delete next[k];
    } else if (p === 1) next.bold = true;
    else if (p === 2) next.dim = true;
    else if (p === 3) next.italic = true;
    else if (p === 4) next.underline = true;
    else if (p === 22) next.bold = next.dim = false;
    else if (p === 23) next.italic = false;
    else if (p === 24) next.underline = false;
    else if (p >= 30 && p <= 37) next.fg = `c${p - 30}`;
    else if (p >= 90 && p <= 97) next.fg = `c${p - 90 + 8}`;
    else if (p === 39) delete next.fg;
    else if (p >= 40 && p <= 47) next.bg = `c${p - 40}`;
    else if (p >= 100 && p <= 107) next.bg = `c${p - 100 + 8}`;
    else if (p === 49) delete next.bg;
    else if (p === 38 || p === 48) {
      let value: string | undefined;
      if (params[i + 1] === 5) {
        value = color256(params[i + 2] ?? -1);
        i += 2;
      } else if (params[i + 1] === 2) {
        const [r, g, b] = params.slice(i + 2, i + 5).map((x) => Math.min(255, x));
        value = `rgb(${r ?? 0},${g ?? 0},${b ?? 0})`;
        i += 4;
      }
      if (value) next[p === 38 ? 'fg' : 'bg'] = value;
    }
  }
  return next;
}

function styled(text: string, style: Style): Piece {
  const classes: string[] = [];
  const piece: Piece = { text, classes: '' };
  if (style.fg?.startsWith('c')) classes.push(`fg-${style.fg}`);
  else if (style.fg) piece.color = style.fg;
  if (style.bg?.startsWith('c')) classes.push(`bg-${style.bg}`);
  else if (style.bg) piece.background = style.bg;
  if (style.bold) classes.push('b');
  if (style.dim) classes.push('dim');
  if (style.italic) classes.push('i');
  if (style.underline) classes.push('u');
  piece.classes = classes.join(' ');
  return piece;
}

function linkify(piece: Piece, out: Piece[]): void {
  let last = 0;
  for (const match of piece.text.matchAll(URL)) {
    if (match.index > last) out.push({ ...piece, text: piece.text.slice(last, match.index) });
    out.push({ ...piece, text: match[0], href: match[0] });
    last = match.index + match[0].length;
  }
  if (last < piece.text.length) out.push(last === 0 ? piece : { ...piece, text: piece.text.slice(last) });
}

export function parseLine(line: string): Piece[] {
  const out: Piece[] = [];
  let style: Style = {};
  let last = 0;
  if (!line.includes('\x1b')) {
    linkify({ text: line, classes: '' }, out);
    return out;
  }
  for (const match of line.matchAll(ESCAPES)) {
    if (match.index > last) linkify(styled(line.slice(last, match.index), style), out);
    if (match[2] === 'm') style = applySgr(style, (match[1] || '0').split(';').map((x) => Number(x) || 0));
    last = match.index + match[0].length;
  }
  if (last < line.length) linkify(styled(line.slice(last), style), out);
  return out;
}

/** The line without escape sequences (for search and the raw download). */
export function plainText(line: string): string {
  return line.includes('\x1b') ? line.replace(ESCAPES, '') : line;
}
