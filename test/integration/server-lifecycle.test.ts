// Local mode: a server that stops says so honestly (websocket 1012, SSE without `end`) and
// its followers resume on the next one, losing and repeating nothing; one server per data
// directory; a follower whose client leaves is released.
import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { connect } from 'node:net';
import { pipeline, request, waitForRun } from '../support/http.ts';
import { readSse } from '../support/sse.ts';
import { mainScript, startServer } from '../support/server.ts';
import { processesWithEnv } from '../support/processes.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(what: string, probe: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

function conveyor(args: string[]) {
  const child = spawn(process.execPath, [mainScript, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const done = new Promise<number | null>((resolve) => child.once('close', resolve));
  return { child, done, stdout: () => stdout, stderr: () => stderr };
}

async function followers(url: string): Promise<number> {
  const text: string = (await request(url, 'GET', '/metrics')).body;
  return Number(/^conveyor_log_followers (\d+)/m.exec(text)?.[1]);
}

describe('server lifecycle (local mode)', () => {
  it('on restart closes websockets with 1012 and SSE without `end`; the CLI and SSE resume on the next server, losing and repeating nothing', async () => {
    const first = await startServer({ args: ['--concurrency', '1', '--shutdown-grace', '0'] });
    const port = new URL(first.url).port;
    let second: Awaited<ReturnType<typeof startServer>> | undefined;
    const cli = { current: undefined as ReturnType<typeof conveyor> | undefined };
    try {
      // The only slot is taken, so `queued` stays Pending across the restart and runs after it.
      const blocker = await request(first.url, 'POST', '/resources', pipeline('blocker', [['hold', 'sleep 300']]));
      await waitForRun(first.url, blocker.body.runid, ['Running']);
      const queued = (await request(first.url, 'POST', '/resources', pipeline('queued', [['count', 'for i in 1 2 3; do echo b-$i; done']]))).body.runid;
      for (const i of [1, 2, 3]) {
        expect((await request(first.url, 'POST', '/logs', { runid: queued, driver: 'command-runner', message: `pre-${i}` })).status).to.equal(201);
      }
      cli.current = conveyor(['--server', first.url, 'logs', '--follow', queued, '-o', 'json']);
      const sse = readSse(`${first.url}/logs/pipeline/${queued}`);
      await until('the CLI to print pre-3', () => cli.current!.stdout().includes('pre-3'));

      expect(await first.stop()).to.equal(0);
      const cut = await sse;
      expect(cut.events.map((e) => e.id)).to.deep.equal(['1', '2', '3']);
      expect(cut.events.some((e) => e.event === 'end'), 'no `end` while the run goes on').to.equal(false);
      expect(cli.current.child.exitCode, 'the CLI keeps following').to.equal(null);

      second = await startServer({ dataDir: first.dataDir, args: ['--port', port, '--concurrency', '1'] });
      expect(await cli.current.done, cli.current.stderr()).to.equal(0);
      const printed = cli.current
        .stdout()
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l));
      expect(printed.map((l) => l.message)).to.deep.equal(['pre-1', 'pre-2', 'pre-3', 'Executing step: count', 'b-1', 'b-2', 'b-3', 'Step completed successfully']);
      expect(printed.map((l) => l.seq)).to.deep.equal([1, 2, 3, 4, 5, 6, 7, 8]);
      expect(cli.current.stderr()).to.match(/server restarting/);

      const resumed = await readSse(`${second.url}/logs/pipeline/${queued}`, { headers: { 'Last-Event-ID': '3' } });
      expect(resumed.events.filter((e) => e.id).map((e) => Number(e.id))).to.deep.equal([4, 5, 6, 7, 8]);
      expect(resumed.events.at(-1)!.event).to.equal('end');
    } finally {
      cli.current?.child.kill('SIGKILL');
      await first.kill();
      if (second) {
        await second.stop();
        second.cleanup();
      } else first.cleanup();
    }
  });

  it('refuses a second server on the same data directory, touching nothing; a lock left by kill -9 does not block the next start', async () => {
    const first = await startServer();
    try {
      const res = await request(first.url, 'POST', '/resources', pipeline('busy', [['hold', 'echo held; sleep 300']]));
      await until('the step to start', async () => (await request(first.url, 'GET', `/logs?runid=${res.body.runid}`)).body.length >= 2);
      const second = conveyor(['serve', '--port', '0', '--data-dir', first.dataDir]);
      const code = await second.done;
      expect(code).to.not.equal(0);
      expect(second.stderr()).to.include(`data directory ${first.dataDir} is in use by another Conveyor server (pid ${first.process.pid})`);
      // The first server's run was not touched: still Running, its step alive, its seq going on.
      expect((await request(first.url, 'GET', `/runs/${res.body.runid}`)).body.phase).to.equal('Running');
      expect(processesWithEnv(`CONVEYOR_RUN_ID=${res.body.runid}`)).not.to.be.empty;
      const posted = await request(first.url, 'POST', '/logs', { runid: res.body.runid, driver: 'command-runner', message: 'still mine' });
      expect(posted.body.seq).to.equal(3);

      await first.kill();
      const third = await startServer({ dataDir: first.dataDir });
      try {
        expect((await request(third.url, 'GET', `/runs/${res.body.runid}`)).body).to.include({ phase: 'Failed', reason: 'Interrupted' });
      } finally {
        await third.stop();
      }
    } finally {
      await first.kill();
      first.cleanup();
    }
  });

  it('releases an SSE follower whose client leaves while the server waits for it to drain', async () => {
    const server = await startServer();
    try {
      const res = await request(server.url, 'POST', '/resources', pipeline('big-log', [['print', 'seq 1 100000']]));
      expect((await waitForRun(server.url, res.body.runid)).phase).to.equal('Succeeded');
      const { host, hostname, port } = new URL(server.url);
      // A client that asks and never reads: the server fills the socket, then waits.
      const socket = connect(Number(port), hostname.replace(/^\[|\]$/g, ''));
      await new Promise<void>((resolve) => socket.once('connect', resolve));
      socket.pause();
      socket.write(`GET /logs/pipeline/${res.body.runid} HTTP/1.1\r\nHost: ${host}\r\n\r\n`);
      await until('the follower to start', async () => (await followers(server.url)) === 1);
      await sleep(300);
      expect(await followers(server.url), 'still blocked on the unread socket').to.equal(1);
      socket.destroy();
      await until('the follower to be released', async () => (await followers(server.url)) === 0, 5_000);
    } finally {
      await server.stop();
      server.cleanup();
    }
  });
});
