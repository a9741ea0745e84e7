// `conveyor apply FILE`: create or update what a JSON file describes. A resource definition
// (it has a `schema`) goes to POST /resource-definitions/apply; a resource is created, or
// replaced when it exists (which starts a new run, as `conveyor run` does, without
// following it). A file may also hold a JSON array of such documents, applied in order.
import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { clientFor, exitOnUsageError, terminal } from './client.ts';
import { formatSubmitResult } from './output.ts';

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

// Reads and parses FILE (`-`: standard input). Only JSON is read.
export async function readJsonInput(file: string): Promise<unknown> {
  const label = file === '-' ? 'standard input' : file;
  let text: string;
  try {
    text = file === '-' ? await readStdin() : await readFile(file, 'utf8');
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const why = e.code === 'ENOENT' ? 'no such file' : e.code === 'EISDIR' ? 'it is a directory' : e.message;
    throw new Error(`cannot read ${label}: ${why}`);
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new Error(`${label} is not valid JSON (${(err as Error).message}); the CLI reads JSON documents`);
  }
}

export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function isDefinition(doc: Record<string, unknown>): boolean {
  return 'schema' in doc && !('spec' in doc);
}

export function describeDocument(doc: Record<string, unknown>): string {
  if (isDefinition(doc)) return `resource definition ${String(doc.name ?? '(unnamed)')}`;
  return `${String(doc.resource ?? '(no type)')}/${String(doc.name ?? '(unnamed)')}`;
}

export function registerApply(program: Command): void {
  program
    .command('apply')
    .description('create or update a resource definition (a document with "schema") or a resource, from a JSON file')
    .argument('<file>', 'JSON file with one document or an array of them, or - for standard input')
    .exitOverride(exitOnUsageError)
    .action(async (file: string, _opts: unknown, command: Command) => {
      const input = await readJsonInput(file);
      const docs = Array.isArray(input) ? input : [input];
      const client = clientFor(command);
      const term = terminal();
      for (const [i, doc] of docs.entries()) {
        const where = Array.isArray(input) ? `document ${i + 1}` : file === '-' ? 'standard input' : file;
        if (!isObject(doc)) throw new Error(`${where} is not a JSON object (expected a resource or a resource definition)`);
        try {
          if (isDefinition(doc)) {
            const def = await client.request<{ name: string; version: string }>('POST', '/resource-definitions/apply', doc);
            term.print(`Applied resource definition ${def.name} (version ${def.version})`);
          } else {
            term.print(formatSubmitResult(await client.submitResource(doc)));
          }
        } catch (err) {
          if (Array.isArray(input) && err instanceof Error) err.message = `${where} (${describeDocument(doc)}): ${err.message}`;
          throw err;
        }
      }
    });
}
