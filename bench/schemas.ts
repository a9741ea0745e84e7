// `npm run bench:schemas`: the server's memory over 10,000 resource-definition writes
// (issue 10, point 5). Each write replaces a definition with a new ~11 KB schema carrying
// the same `$id` and RE2 patterns; every 10th write also validates a resource against it,
// and every 100th deletes the definition and creates it again. Before the fix one shared
// Ajv kept every schema it compiled (RSS 134 → 610 MB after 4,500 writes) and refused the
// second schema with the same `$id`. RSS is sampled from /proc every 1,000 writes; the
// baseline is the RSS after the first 1,000 writes (warm), the figure the ratio end/baseline.
//
// Flags: --writes N (default 10000)
import { parseArgs } from 'node:util';
import { HttpClient } from './lib/http.ts';
import { startServer } from './lib/server.ts';
import { fmt, mb, median } from './lib/stats.ts';

const { values: flags } = parseArgs({ options: { writes: { type: 'string', default: '10000' } } });
const WRITES = Number(flags.writes);
const SAMPLE_EVERY = Math.max(1, Math.floor(WRITES / 10));

// About 11 KB: 80 string properties, each with a pattern and a description.
function schemaFor(write: number): Record<string, unknown> {
  const properties: Record<string, unknown> = {};
  for (let i = 0; i < 80; i++) {
    properties[`field${i}`] = {
      type: 'string',
      pattern: `^(w${write % 97}|[a-z]{1,${(i % 20) + 1}})+$`,
      description: `Property ${i} of write ${write}: a description long enough to make the schema realistic.`,
    };
  }
  return { $id: 'urn:conveyor:bench:build', type: 'object', required: ['field0'], properties };
}

const server = await startServer({ label: 'schemas' });
const client = new HttpClient(server.url, 1);
try {
  const expectStatus = (what: string, got: { status: number; text: string }, want: number) => {
    if (got.status !== want) throw new Error(`${what}: expected ${want}, got ${got.status} ${got.text.slice(0, 300)}`);
  };
  const definition = (write: number) => ({ name: 'build', version: '1.0.0', description: 'bench', schema: schemaFor(write) });
  console.log(`schema size: ${fmt(JSON.stringify(schemaFor(0)).length / 1024, 1)} KB; ${WRITES} writes`);
  expectStatus('create', await client.send('POST', '/resource-definitions', definition(0)), 201);
  const start = server.memory().rss;
  console.log(`${'writes'.padStart(7)}  ${'RSS'.padStart(10)}  median write ms`);
  console.log(`${'0'.padStart(7)}  ${mb(start).padStart(10)}`);
  let baseline = start;
  let window: number[] = [];
  const medians: number[] = [];
  for (let write = 1; write <= WRITES; write++) {
    const began = performance.now();
    if (write % 100 === 0) {
      expectStatus('delete', await client.send('DELETE', '/resource-definitions/build'), 204);
      expectStatus('re-create', await client.send('POST', '/resource-definitions', definition(write)), 201);
    } else {
      expectStatus('replace', await client.send('PUT', '/resource-definitions/build', definition(write)), 200);
    }
    window.push(performance.now() - began);
    if (write % 10 === 0) {
      const bad = await client.send('POST', '/resources', { name: `r${write}`, resource: 'build', spec: { field0: 'A!' } });
      expectStatus('validate', bad, 400);
    }
    if (write % SAMPLE_EVERY === 0) {
      const { rss } = server.memory();
      if (write === SAMPLE_EVERY) baseline = rss;
      const m = median(window);
      medians.push(m);
      window = [];
      console.log(`${String(write).padStart(7)}  ${mb(rss).padStart(10)}  ${fmt(m)}`);
    }
  }
  const end = server.memory();
  console.log(`RSS at start ${mb(start)}, after ${SAMPLE_EVERY} writes (baseline) ${mb(baseline)}, at the end ${mb(end.rss)}, peak ${mb(end.peakRss)}`);
  console.log(`ratio end/baseline: ${fmt(end.rss / baseline)}; end/start: ${fmt(end.rss / start)}`);
  console.log(`median write: first window ${fmt(medians[0] ?? NaN)} ms, last window ${fmt(medians.at(-1) ?? NaN)} ms`);
} finally {
  client.agent.destroy();
  await server.stop();
}
