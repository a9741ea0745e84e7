// External drivers over NATS, against a real nats-server and the real server (local mode):
// 1. an event's round trip: POST /resources until the driver's first line arrives on the
//    websocket, against a bare NATS request/reply measured in the same run (the floor);
// 2. lines/s from one driver to 50 websocket followers of its run.
// Usage: node bench/drivers.ts [--rounds N] [--lines N] [--followers N]
import { connect } from '@nats-io/transport-node';
import { startNats } from '../test/support/nats.ts';
import { startWireDriver } from '../test/support/wire-driver.ts';
import { startServer } from './lib/server.ts';
import { fmt, median } from './lib/stats.ts';
import { openSocket } from './lib/ws.ts';

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
}
const rounds = arg('rounds', 30);
const lineCount = arg('lines', 5_000);
const followerCount = arg('followers', 50);

async function post(url: string, path: string, body: unknown): Promise<any> {
  const res = await fetch(url + path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  if (!res.ok) throw new Error(`${path}: ${res.status} ${await res.text()}`);
  return res.json();
}

const nats = await startNats();
const server = await startServer({ args: ['--nats-url', nats.url] });
try {
  // Baseline: one request/reply over the same NATS server.
  const nc = await connect({ servers: nats.url });
  nc.subscribe('bench.echo', {
    callback: (_e, m) => {
      m.respond(m.data);
    },
  });
  const bare: number[] = [];
  for (let i = 0; i < rounds + 5; i++) {
    const t = performance.now();
    await nc.request('bench.echo', 'x', { timeout: 5_000 });
    if (i >= 5) bare.push(performance.now() - t);
  }

  for (const name of ['echo', 'firehose']) {
    await post(server.url, '/resource-definitions', { name, schema: { type: 'object' } });
  }
  const echo = await startWireDriver({
    natsUrl: nats.url,
    name: 'bench-echo',
    subject: 'resources.echo',
    async handle({ log }) {
      await log('first line');
      return { success: true, message: 'ok' };
    },
  });
  // Wait until Conveyor sees the driver (it publishes only to a consumer that exists).
  for (;;) {
    const list = (await (await fetch(`${server.url}/drivers`)).json()) as { name: string }[];
    if (list.some((d) => d.name === 'bench-echo')) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  await new Promise((r) => setTimeout(r, 1_200));

  const roundTrip: number[] = [];
  for (let i = 0; i < rounds + 3; i++) {
    const t = performance.now();
    const { runid } = await post(server.url, '/resources', { name: `e${i}`, resource: 'echo', spec: {} });
    await new Promise<void>((resolve, reject) => {
      const ws = openSocket(`${server.wsUrl}/drivers/streams/logs/bench-echo/${runid}`);
      ws.once('message', () => {
        if (i >= 3) roundTrip.push(performance.now() - t);
        ws.terminate();
        resolve();
      });
      ws.once('error', reject);
    });
  }
  await echo.stop();

  // Fan-out: one driver writes lineCount lines; followerCount websockets follow the run.
  let startWriting!: () => void;
  const go = new Promise<void>((r) => (startWriting = r));
  let writeStart = 0;
  let writeEnd = 0;
  const firehose = await startWireDriver({
    natsUrl: nats.url,
    name: 'bench-firehose',
    subject: 'resources.firehose',
    async handle({ log }) {
      await go;
      writeStart = performance.now();
      // Each line is one JetStream publish (awaited, like upstream's runtime) and one core one.
      for (let i = 1; i <= lineCount; i++) await log(`line ${i}`);
      writeEnd = performance.now();
      return { success: true, message: 'done' };
    },
  });
  for (;;) {
    const list = (await (await fetch(`${server.url}/drivers`)).json()) as { name: string }[];
    if (list.some((d) => d.name === 'bench-firehose')) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  await new Promise((r) => setTimeout(r, 1_200));
  const { runid } = await post(server.url, '/resources', { name: 'f', resource: 'firehose', spec: {} });
  const done: Promise<number>[] = [];
  for (let f = 0; f < followerCount; f++) {
    const ws = openSocket(`${server.wsUrl}/drivers/streams/logs/bench-firehose/${runid}`);
    await new Promise((r) => ws.once('open', r));
    done.push(
      new Promise((resolve) => {
        let n = 0;
        ws.on('message', () => {
          if (++n === lineCount) resolve(performance.now());
        });
      }),
    );
  }
  startWriting();
  const ends = await Promise.all(done);
  const elapsedS = (Math.max(...ends) - writeStart) / 1000;
  await firehose.stop();
  await nc.close();

  const rt = median(roundTrip);
  const floor = median(bare);
  console.log(`event round trip (POST to first line on the websocket), median of ${roundTrip.length}: ${fmt(rt)} ms`);
  console.log(`bare NATS request/reply, median of ${bare.length}: ${fmt(floor, 3)} ms`);
  console.log(`ratio round trip / bare request: ${fmt(rt / floor, 1)}x`);
  const writeS = (writeEnd - writeStart) / 1000;
  console.log(`baseline: the driver alone writes ${fmt(lineCount / writeS, 0)} lines/s (${lineCount} in ${fmt(writeS)} s); the last follower got the last line ${fmt(Math.max(...ends) - writeEnd, 0)} ms after it was written`);
  console.log(`fan-out: ${lineCount} lines from one driver to ${followerCount} websocket followers in ${fmt(elapsedS)} s: ${fmt(lineCount / elapsedS, 0)} lines/s (${fmt((lineCount * followerCount) / elapsedS, 0)} frames/s)`);
} finally {
  await server.stop();
  await nats.stop();
  nats.cleanup();
}
