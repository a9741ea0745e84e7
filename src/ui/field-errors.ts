// Places a server validation error at the field it names: the API's messages name fields the
// way a user writes them (`spec.steps[1].command is required`); this finds that field (or its
// nearest existing parent) in the JSON or YAML the user typed and returns its line.
import { isNode, parseDocument } from 'yaml';

export interface FieldError {
  field: string | null;
  line: number | null;
  message: string;
}

const FIELD = /\b((?:name|resource|spec|pipeline)(?:\.[A-Za-z_][\w-]*|\[\d+\])*)/;

export function pathOf(field: string): (string | number)[] {
  const parts: (string | number)[] = [];
  for (const m of field.matchAll(/([A-Za-z_][\w-]*)|\[(\d+)\]/g)) parts.push(m[2] !== undefined ? Number(m[2]) : m[1]!);
  return parts;
}

function lineAt(source: string, offset: number): number {
  let line = 1;
  for (let i = 0; i < offset && i < source.length; i++) if (source.charCodeAt(i) === 10) line++;
  return line;
}

/** The line of the field at `path` in `source`, or of its nearest parent that exists. */
export function lineOfField(source: string, path: (string | number)[], base: (string | number)[] = []): number | null {
  const doc = parseDocument(source);
  for (let k = path.length; k >= 0; k--) {
    const node = doc.getIn([...base, ...path.slice(0, k)], true);
    if (isNode(node) && node.range) return lineAt(source, node.range[0]);
  }
  return null;
}

export function placeError(source: string, message: string, base: (string | number)[] = []): FieldError {
  const match = FIELD.exec(message);
  if (!match) return { field: null, line: null, message };
  const field = match[1]!;
  return { field, line: lineOfField(source, pathOf(field), base), message };
}
