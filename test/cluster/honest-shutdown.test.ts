// Kubernetes mode: a server that stops while a run goes on in the cluster does not tell
// its followers that the run ended (websocket 1012, SSE without `end`); `conveyor logs
// --follow` resumes on the next server and prints every line once.
import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { collectFrames, pipeline, request } from '../support/http.ts';
import { readSse } from '../support/sse.ts';
import { authHeadersFor, tokenFor } from '../support/auth.ts';
import { mainScript, newDataDir } from '../support/server.ts';
import { suiteNamespace } from './support/conveyor.ts';
import { waitFor } from './support/kube.ts';

describe('honest shutdown (kubernetes mode)', function () {
  this.timeout(180_000);
  let namespace: string;
  const suite = suiteNamespace('conveyor-restart');

  before(() => {
    namespace = suite.namespace;
  });

  it('closes followers with 1012 and SSE without `end` while the run goes on; the CLI resumes on the next server, losing and repeating nothing', async () => {
    const dataDir = newDataDir();
    const first = await suite.start({ dataDir });
    const res = await request(first.url, 'POST', '/resources', pipeline('k8s-restart', [['count', 'for i in $(seq 1 30); do echo n-$i; sleep 0.4; done']]));
    expect(res.status).to.equal(201);
    const runid: string = res.body.runid;

    const cli = spawn(process.execPath, [mainScript, '--server', first.url, 'logs', '--follow', runid, '-o', 'json'], {
      env: { ...process.env, CONVEYOR_TOKEN: tokenFor(first.url) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    cli.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    cli.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const cliDone = new Promise<number | null>((resolve) => cli.once('close', resolve));
    try {
      const ws = collectFrames(`${first.wsUrl}/drivers/streams/logs/command-runner/${runid}?format=json`, 120_000);
      const sse = readSse(`${first.url}/logs/pipeline/${runid}`, { headers: authHeadersFor(first.url), timeoutMs: 120_000 });
      await waitFor('the CLI to print n-3', 90_000, async () => (stdout.includes('"n-3"') ? true : undefined));

      expect(await first.stop()).to.equal(0);
      const cut = await ws;
      expect(cut.closeCode, 'service restart, not a normal close').to.equal(1012);
      const cutSse = await sse;
      expect(cutSse.events.some((e) => e.event === 'end'), 'no SSE `end` while the run goes on').to.equal(false);
      expect(cli.exitCode, 'the CLI keeps following').to.equal(null);

      const second = await suite.start({ dataDir, args: ['--port', new URL(first.url).port] });
      expect(await cliDone, stderr).to.equal(0);
      const printed = stdout
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as { seq: number; message: string });
      const numbered = printed.filter((l) => l.message.startsWith('n-')).map((l) => l.message);
      expect(numbered).to.deep.equal(Array.from({ length: 30 }, (_, i) => `n-${i + 1}`));
      expect(printed.map((l) => l.seq)).to.deep.equal(Array.from({ length: printed.length }, (_, i) => i + 1));
      expect(stderr).to.match(/server restarting/);
    } finally {
      cli.kill('SIGKILL');
    }
  });
});
