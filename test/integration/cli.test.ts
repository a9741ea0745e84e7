// The `conveyor` client commands, run as real child processes against a real server.
import { expect } from 'chai';
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer as createTcpServer, connect, type Server as TcpServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline, request, waitForRun } from '../support/http.ts';
import { mainScript, repoRoot, startServer, type TestServer } from '../support/server.ts';

const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}/;
const ANSI = /\u001b\[/;

interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

interface CliOptions {
  input?: string;
  env?: Record<string, string | undefined>;
  timeoutMs?: number;
  command?: string[]; // what to run instead of `node src/main.ts`
}

// The environment a user at a plain pipe would have: no color switches, no default server.
function cleanEnv(extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env.NO_COLOR;
  delete env.FORCE_COLOR;
  delete env.CONVEYOR_SERVER;
  for (const [key, value] of Object.entries(extra)) {
    if (value === undefined) delete env[key];
    else env[key] = value;
  }
  return env;
}

function startCli(args: string[], options: CliOptions = {}): { child: ChildProcess; result: Promise<CliResult>; stdout: () => string } {
  const [cmd, ...pre] = options.command ?? [process.execPath, mainScript];
  const child = spawn(cmd!, [...pre, ...args], { env: cleanEnv(options.env), stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  child.stdin!.end(options.input ?? '');
  const timeoutMs = options.timeoutMs ?? 20_000;
  const result = new Promise<CliResult>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`conveyor ${args.join(' ')} did not exit within ${timeoutMs} ms\nstdout:\n${stdout}\nstderr:\n${stderr}`));
    }, timeoutMs);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
  return { child, result, stdout: () => stdout };
}

function cli(args: string[], options: CliOptions = {}): Promise<CliResult> {
  return startCli(args, options).result;
}

function lines(text: string): string[] {
  return text.split('\n').filter((l) => l !== '');
}

async function until<T>(what: string, probe: () => T | undefined | Promise<T | undefined>, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

// A TCP proxy in front of the server that cuts the first log websocket once the server has
// sent a given text through it: a network break in the middle of a stream.
interface CuttingProxy {
  url: string;
  requestLines: string[];
  cuts: number;
  close(): Promise<void>;
}

async function cuttingProxy(target: string, cutAfterText: string): Promise<CuttingProxy> {
  const { hostname, port } = new URL(target);
  const sockets = new Set<Socket>();
  const state = { cuts: 0, wsSeen: 0 };
  const requestLines: string[] = [];
  const server: TcpServer = createTcpServer((client) => {
    const upstream = connect(Number(port), hostname);
    sockets.add(client).add(upstream);
    let firstLine: string | undefined;
    let cutThis = false;
    let seen = '';
    client.on('data', (chunk) => {
      if (firstLine === undefined) {
        firstLine = chunk.toString('latin1').split('\r\n')[0]!;
        requestLines.push(firstLine);
        if (firstLine.includes('/drivers/streams/logs/') && state.wsSeen++ === 0) cutThis = true;
      }
      upstream.write(chunk);
    });
    let cut = false;
    upstream.on('data', (chunk) => {
      if (cut || client.destroyed) return;
      if (!cutThis) return void client.write(chunk);
      seen = (seen + chunk.toString('latin1')).slice(-4096);
      if (!seen.includes(cutAfterText)) return void client.write(chunk);
      // Deliver what came so far, then drop the connection without a close frame.
      cut = true;
      state.cuts++;
      client.write(chunk, () => {
        client.destroy();
        upstream.destroy();
      });
    });
    const closeBoth = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', closeBoth).on('close', closeBoth);
    upstream.on('error', closeBoth).on('close', closeBoth);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${address.port}`,
    requestLines,
    get cuts() {
      return state.cuts;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

describe('conveyor CLI (client commands)', function () {
  this.timeout(60_000);
  let server: TestServer;
  let tmp: string;
  let n = 0;

  // A resource file on disk, as a user would write it.
  function file(doc: unknown): string {
    const path = join(tmp, `doc-${++n}.json`);
    writeFileSync(path, typeof doc === 'string' ? doc : JSON.stringify(doc, null, 2));
    return path;
  }

  function withServer(...args: string[]): string[] {
    return ['--server', server.url, ...args];
  }

  before(async () => {
    server = await startServer();
    tmp = mkdtempSync(join(tmpdir(), 'conveyor-cli-test-'));
  });
  // Nothing a client does may take the server down; if it went, say so with its log.
  afterEach(() => {
    const { exitCode, signalCode } = server.process;
    if (exitCode !== null || signalCode !== null) {
      throw new Error(`the server exited (${exitCode ?? signalCode}); its last output:\n${server.output.slice(-30).join('\n')}`);
    }
  });
  after(async () => {
    await server.stop();
    server.cleanup();
    rmSync(tmp, { recursive: true, force: true });
  });

  describe('run', () => {
    it('--follow creates the resource, prints its run id, streams the step messages and exits 0 on success', async () => {
      const path = file(pipeline('cli-hello', [
        ['greet', 'echo hello from conveyor'],
        ['count', 'echo one && echo two'],
      ]));
      const res = await cli(withServer('run', path, '--follow'));
      expect(res.stderr).to.equal('');
      expect(res.code).to.equal(0);
      const out = lines(res.stdout);
      const runid = UUID.exec(out[0]!)?.[0];
      expect(out[0]).to.equal(`Created pipeline/cli-hello (version 1), run ${runid}`);
      expect(out.slice(1)).to.deep.equal([
        'Executing step: greet',
        'hello from conveyor',
        'Step completed successfully',
        'Executing step: count',
        'one',
        'two',
        'Step completed successfully',
        `Run ${runid} Succeeded: Pipeline executed successfully`,
      ]);
      const run = await request(server.url, 'GET', `/runs/${runid}`);
      expect(run.body).to.include({ phase: 'Succeeded', name: 'cli-hello', resource: 'pipeline' });
    });

    it('--follow exits 1 when a step fails, printing the failure and the final phase; later steps never run', async () => {
      const res = await cli(withServer('run', '--follow', file(pipeline('cli-fails', [
        ['ok', 'echo fine'],
        ['broken', 'echo about to fail >&2; exit 3'],
        ['never', 'echo must not run'],
      ]))));
      expect(res.code).to.equal(1);
      const out = lines(res.stdout);
      const runid = UUID.exec(out[0]!)![0];
      expect(out.slice(1)).to.deep.equal([
        'Executing step: ok',
        'fine',
        'Step completed successfully',
        'Executing step: broken',
        'about to fail',
        'Step failed with exit code 3',
        `Run ${runid} Failed: step broken failed with exit code 3`,
      ]);
      expect(res.stdout).to.not.contain('must not run');
      expect((await request(server.url, 'GET', `/runs/${runid}`)).body.phase).to.equal('Failed');
    });

    it('run of the same file twice replaces the resource (version 2) and starts a second run', async () => {
      const path = file(pipeline('cli-twice', [['hi', 'echo hi']]));
      const first = await cli(withServer('run', path));
      expect(first.code).to.equal(0);
      const firstId = UUID.exec(first.stdout)![0];
      expect(first.stdout.trim()).to.equal(`Created pipeline/cli-twice (version 1), run ${firstId}`);

      const second = await cli(withServer('run', path));
      expect(second.code).to.equal(0);
      const secondId = UUID.exec(second.stdout)![0];
      expect(secondId).to.not.equal(firstId);
      expect(second.stdout.trim()).to.equal(`Replaced pipeline/cli-twice, which already existed (now version 2); started run ${secondId}`);

      const resource = await request(server.url, 'GET', '/resources/pipeline/cli-twice');
      expect(resource.body.metadata.version).to.equal('2');
      const runs = await request(server.url, 'GET', '/runs?resource=pipeline&name=cli-twice');
      expect(runs.body.items.map((r: any) => [r.runid, r.version])).to.deep.equal([
        [secondId, 2],
        [firstId, 1],
      ]);
      await waitForRun(server.url, secondId);
    });

    it('reads the resource from standard input with -, and --quiet prints only the run id', async () => {
      const res = await cli(withServer('run', '-', '--quiet'), { input: JSON.stringify(pipeline('cli-stdin', [['s', 'echo from stdin']])) });
      expect(res.code).to.equal(0);
      expect(res.stdout).to.match(new RegExp(`^${UUID.source}\\n$`));
      const run = await waitForRun(server.url, res.stdout.trim());
      expect(run).to.include({ name: 'cli-stdin', phase: 'Succeeded' });
    });

    it('resumes a log stream that breaks mid-run with ?since=, with no line lost or repeated', async () => {
      const proxy = await cuttingProxy(server.url, '"message":"line 5"');
      try {
        const script = 'i=1; while [ $i -le 30 ]; do echo "line $i"; i=$((i+1)); sleep 0.02; done';
        const res = await cli(['--server', proxy.url, 'run', '--follow', file(pipeline('cli-resume', [['count', script]]))]);
        expect(res.code, res.stderr).to.equal(0);
        expect(proxy.cuts).to.equal(1);
        const wsRequests = proxy.requestLines.filter((l) => l.includes('/drivers/streams/logs/'));
        expect(wsRequests).to.have.length.of.at.least(2);
        expect(wsRequests[0]).to.match(/\?format=json HTTP/);
        expect(wsRequests[1]).to.match(/\?format=json&since=\d+ HTTP/);
        expect(res.stderr).to.match(/the log stream broke .*; resuming after line \d+/);
        const numbered = lines(res.stdout).filter((l) => l.startsWith('line '));
        expect(numbered).to.deep.equal(Array.from({ length: 30 }, (_, i) => `line ${i + 1}`));
        expect(lines(res.stdout).filter((l) => l === 'Executing step: count')).to.have.length(1);
      } finally {
        await proxy.close();
      }
    });
  });

  describe('logs', () => {
    let runid: string;
    before(async () => {
      const res = await request(server.url, 'POST', '/resources', pipeline('cli-logs', [
        ['out', 'echo to stdout'],
        ['err', 'echo to stderr >&2'],
      ]));
      runid = res.body.runid;
      await waitForRun(server.url, runid);
    });

    it('prints the stored lines of a run, in order', async () => {
      const res = await cli(withServer('logs', runid));
      expect(res.code).to.equal(0);
      const stored = await request(server.url, 'GET', `/logs?runid=${runid}`);
      expect(lines(res.stdout)).to.deep.equal(stored.body.map((l: any) => l.message));
      expect(lines(res.stdout)).to.deep.equal([
        'Executing step: out',
        'to stdout',
        'Step completed successfully',
        'Executing step: err',
        'to stderr',
        'Step completed successfully',
      ]);
    });

    it('-o json prints the stored entries as one JSON object per line', async () => {
      const res = await cli(withServer('logs', runid, '-o', 'json'));
      expect(res.code).to.equal(0);
      const entries = lines(res.stdout).map((l) => JSON.parse(l));
      expect(entries.map((e) => [e.seq, e.stream, e.message])).to.deep.equal([
        [1, 'system', 'Executing step: out'],
        [2, 'stdout', 'to stdout'],
        [3, 'system', 'Step completed successfully'],
        [4, 'system', 'Executing step: err'],
        [5, 'stderr', 'to stderr'],
        [6, 'system', 'Step completed successfully'],
      ]);
    });

    it('--follow streams a live run until it ends and exits with its result', async () => {
      const res = await request(server.url, 'POST', '/resources', pipeline('cli-logs-live', [
        ['slow', 'sleep 0.5; echo after a while'],
        ['bad', 'exit 4'],
      ]));
      const followed = await cli(withServer('logs', res.body.runid, '--follow'));
      expect(followed.code).to.equal(1);
      expect(lines(followed.stdout)).to.deep.equal([
        'Executing step: slow',
        'after a while',
        'Step completed successfully',
        'Executing step: bad',
        'Step failed with exit code 4',
        `Run ${res.body.runid} Failed: step bad failed with exit code 4`,
      ]);
    });

    it('an unknown run id is an error from the server, not an empty log', async () => {
      const res = await cli(withServer('logs', '00000000-0000-4000-8000-000000000000'));
      expect(res.code).to.equal(1);
      expect(res.stdout).to.equal('');
      expect(res.stderr).to.equal('conveyor: run 00000000-0000-4000-8000-000000000000 not found\n');
    });
  });

  describe('get', () => {
    let runid: string;
    before(async () => {
      const res = await request(server.url, 'POST', '/resources', pipeline('cli-get', [['a', 'true'], ['b', 'true']]));
      runid = res.body.runid;
      await waitForRun(server.url, runid);
    });

    it('get pipeline lists the pipelines in a table', async () => {
      const res = await cli(withServer('get', 'pipeline'));
      expect(res.code).to.equal(0);
      const out = lines(res.stdout);
      expect(out[0]!.split(/\s+/)).to.deep.equal(['NAME', 'VERSION', 'STEPS', 'UPDATED']);
      const row = out.find((l) => l.startsWith('cli-get '));
      expect(row!.split(/\s+/).slice(0, 3)).to.deep.equal(['cli-get', '1', '2']);
      const listed = await request(server.url, 'GET', '/resources/pipeline');
      expect(out).to.have.length(listed.body.length + 1);
    });

    it('get pipeline NAME shows the resource, its spec and its runs', async () => {
      const res = await cli(withServer('get', 'pipeline', 'cli-get'));
      expect(res.code).to.equal(0);
      expect(res.stdout).to.match(/^Name: +cli-get$/m);
      expect(res.stdout).to.match(/^Type: +pipeline$/m);
      expect(res.stdout).to.match(/^Version: +1$/m);
      expect(res.stdout).to.contain('"command": "true"');
      expect(res.stdout).to.match(new RegExp(`^ {2}${runid} +1 +Succeeded `, 'm'));
    });

    it('get pipeline NAME -o json prints the server\'s JSON', async () => {
      const res = await cli(withServer('get', 'pipeline', 'cli-get', '-o', 'json'));
      expect(res.code).to.equal(0);
      const direct = await request(server.url, 'GET', '/resources/pipeline/cli-get');
      expect(JSON.parse(res.stdout)).to.deep.equal(direct.body);
    });

    it('get runs lists runs newest first with RUNID, RESOURCE, NAME, PHASE, STARTED', async () => {
      const res = await cli(withServer('get', 'runs'));
      expect(res.code).to.equal(0);
      const out = lines(res.stdout);
      expect(out[0]!.split(/\s+/)).to.deep.equal(['RUNID', 'RESOURCE', 'NAME', 'PHASE', 'STARTED']);
      const page = await request(server.url, 'GET', '/runs');
      expect(out.slice(1).map((l) => l.split(/\s+/)[0])).to.deep.equal(page.body.items.map((r: any) => r.runid));
      const row = out.find((l) => l.startsWith(runid))!;
      expect(row.split(/\s+/).slice(1, 4)).to.deep.equal(['pipeline', 'cli-get', 'Succeeded']);
    });

    it('get runs RUNID shows one run with its steps; -o json is GET /runs/RUNID', async () => {
      const res = await cli(withServer('get', 'runs', runid));
      expect(res.code).to.equal(0);
      expect(res.stdout).to.match(new RegExp(`^Run: +${runid}$`, 'm'));
      expect(res.stdout).to.match(/^Phase: +Succeeded$/m);
      expect(res.stdout).to.match(/^ {2}a +Succeeded +0 /m);
      expect(res.stdout).to.match(/^ {2}b +Succeeded +0 /m);
      const json = await cli(withServer('get', 'runs', runid, '-o', 'json'));
      expect(JSON.parse(json.stdout)).to.deep.equal((await request(server.url, 'GET', `/runs/${runid}`)).body);
    });

    it('get definitions lists the built-in pipeline definition', async () => {
      const res = await cli(withServer('get', 'definitions'));
      expect(res.code).to.equal(0);
      const row = lines(res.stdout).find((l) => l.startsWith('pipeline '));
      expect(row!.split(/\s+/).slice(0, 3)).to.deep.equal(['pipeline', '1.0.0', 'yes']);
      const alias = await cli(withServer('get', 'resource-definitions', 'pipeline', '-o', 'json'));
      expect(JSON.parse(alias.stdout)).to.include({ name: 'pipeline', builtIn: true });
    });

    it('an unknown type prints the server\'s error and exits 1', async () => {
      const res = await cli(withServer('get', 'no-such-type'));
      expect(res.code).to.equal(1);
      expect(res.stderr).to.equal('conveyor: resource type "no-such-type" is not defined\n');
    });
  });

  describe('cancel', () => {
    it('cancels a long run: the follower ends with Cancelled and exit 1, the run is Cancelled', async () => {
      const follower = startCli(withServer('run', '--follow', file(pipeline('cli-cancel', [['wait', 'echo waiting; sleep 30'], ['after', 'echo never']]))));
      const runid = await until('the run id', () => UUID.exec(follower.stdout())?.[0]);
      await until('the step to start', () => (follower.stdout().includes('waiting\n') ? true : undefined));

      const cancelled = await cli(withServer('cancel', runid));
      expect(cancelled.code).to.equal(0);
      expect(cancelled.stdout).to.equal(`Cancelled run ${runid} (phase: Cancelled)\n`);

      const followed = await follower.result;
      expect(followed.code).to.equal(1);
      expect(lines(followed.stdout).at(-1)).to.match(new RegExp(`^Run ${runid} Cancelled`));
      expect(followed.stdout).to.not.contain('Executing step: after');
      expect((await waitForRun(server.url, runid)).phase).to.equal('Cancelled');
    });

    it('cancelling a run that has ended prints the server\'s error and exits 1', async () => {
      const res = await request(server.url, 'POST', '/resources', pipeline('cli-cancel-late', [['x', 'true']]));
      await waitForRun(server.url, res.body.runid);
      const late = await cli(withServer('cancel', res.body.runid));
      expect(late.code).to.equal(1);
      expect(late.stderr).to.equal(`conveyor: run ${res.body.runid} has already ended (Succeeded)\n`);
    });
  });

  describe('apply', () => {
    it('applies a resource definition, then creates and replaces a resource of that type', async () => {
      const definition = {
        name: 'cli-widget',
        version: '0.1.0',
        description: 'a widget',
        schema: { type: 'object', required: ['size'], properties: { size: { type: 'integer' } } },
      };
      const def = await cli(withServer('apply', file(definition)));
      expect(def.code, def.stderr).to.equal(0);
      expect(def.stdout).to.equal('Applied resource definition cli-widget (version 0.1.0)\n');
      expect((await request(server.url, 'GET', '/resource-definitions/cli-widget')).body.schema).to.deep.equal(definition.schema);

      const path = file({ name: 'w1', resource: 'cli-widget', spec: { size: 3 } });
      const created = await cli(withServer('apply', path));
      expect(created.code).to.equal(0);
      expect(created.stdout).to.match(new RegExp(`^Created cli-widget/w1 \\(version 1\\), run ${UUID.source}\\n$`));
      const replaced = await cli(withServer('apply', path));
      expect(replaced.code).to.equal(0);
      expect(replaced.stdout).to.match(/^Replaced cli-widget\/w1, which already existed \(now version 2\)/);
      expect((await request(server.url, 'GET', '/resources/cli-widget/w1')).body.metadata.version).to.equal('2');

      const bad = await cli(withServer('apply', file({ name: 'w2', resource: 'cli-widget', spec: { size: 'big' } })));
      expect(bad.code).to.equal(1);
      expect(bad.stderr).to.match(/^conveyor: Resource validation failed: .*size/);
      expect((await request(server.url, 'GET', '/resources/cli-widget/w2')).status).to.equal(404);
    });

    it('applies an array of documents in order', async () => {
      const res = await cli(withServer('apply', file([
        { name: 'cli-gadget', schema: { type: 'object' } },
        { name: 'g1', resource: 'cli-gadget', spec: {} },
      ])));
      expect(res.code, res.stderr).to.equal(0);
      const stored = await request(server.url, 'GET', '/resource-definitions/cli-gadget');
      expect(lines(res.stdout)[0]).to.equal(`Applied resource definition cli-gadget (version ${stored.body.version})`);
      expect(lines(res.stdout)[1]).to.match(/^Created cli-gadget\/g1 \(version 1\)/);
    });
  });

  describe('errors', () => {
    it('a bad spec prints the server\'s error to stderr, exits 1 and stores nothing', async () => {
      const res = await cli(withServer('run', file({ name: 'cli-bad', resource: 'pipeline', spec: { steps: [{ name: 'x' }] } })));
      expect(res.code).to.equal(1);
      expect(res.stdout).to.equal('');
      expect(res.stderr).to.equal('conveyor: Resource validation failed: spec.steps[0].command is required\n');
      expect((await request(server.url, 'GET', '/resources/pipeline/cli-bad')).status).to.equal(404);
    });

    it('a file that is not JSON, or is missing, is named in the error', async () => {
      const notJson = await cli(withServer('run', file('name: yaml\n')));
      expect(notJson.code).to.equal(1);
      expect(notJson.stderr).to.match(/^conveyor: \S+doc-\d+\.json is not valid JSON/);
      const missing = await cli(withServer('run', join(tmp, 'nope.json')));
      expect(missing.code).to.equal(1);
      expect(missing.stderr).to.equal(`conveyor: cannot read ${join(tmp, 'nope.json')}: no such file\n`);
    });

    it('usage errors exit 2', async () => {
      const missing = await cli(withServer('cancel'));
      expect(missing.code).to.equal(2);
      expect(missing.stderr).to.contain("missing required argument 'runid'");
      const badOutput = await cli(withServer('get', 'runs', '-o', 'yaml'));
      expect(badOutput.code).to.equal(2);
      const badServer = await cli(['--server', 'not a url', 'get', 'runs']);
      expect(badServer.code).to.equal(2);
      expect(badServer.stderr).to.contain('--server "not a url" is not a URL');
    });

    it('a server that is not running gets a clear message naming its URL and `npm start`', async () => {
      // A port that was just free: nothing listens there.
      const probe = createTcpServer();
      await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
      const { port } = probe.address() as { port: number };
      await new Promise<void>((resolve) => probe.close(() => resolve()));
      const url = `http://127.0.0.1:${port}`;
      const res = await cli(['--server', url, 'get', 'runs']);
      expect(res.code).to.equal(1);
      expect(res.stderr).to.contain(`cannot connect to the Conveyor server at ${url} (connection refused)`);
      expect(res.stderr).to.contain('npm start');
      // CONVEYOR_SERVER is the default for --server
      const fromEnv = await cli(['get', 'runs'], { env: { CONVEYOR_SERVER: url } });
      expect(fromEnv.stderr).to.contain(`at ${url} `);
    });
  });

  describe('terminal output', () => {
    const path = () => file(pipeline(`cli-color-${n}`, [['paint', 'echo out; echo err >&2'], ['fail', 'exit 1']]));

    it('writes no ANSI escapes when stdout is not a TTY', async () => {
      const res = await cli(withServer('run', '--follow', path()));
      expect(res.code).to.equal(1);
      expect(res.stdout).to.contain('Executing step: paint');
      expect(res.stdout).to.not.match(ANSI);
      expect(res.stderr).to.not.match(ANSI);
      const runid = UUID.exec(res.stdout)![0];
      for (const args of [['logs', runid], ['get', 'runs'], ['get', 'runs', runid]]) {
        const other = await cli(withServer(...args));
        expect(other.stdout, args.join(' ')).to.not.match(ANSI);
      }
    });

    it('FORCE_COLOR makes step headers stand out; NO_COLOR still wins', async () => {
      const colored = await cli(withServer('run', '--follow', path()), { env: { FORCE_COLOR: '1' } });
      expect(colored.stdout).to.contain('\u001b[1m\u001b[36mExecuting step: paint\u001b[39m\u001b[22m\n');
      expect(colored.stdout).to.contain('\n\u001b[2merr\u001b[22m\n');
      expect(colored.stdout).to.contain('\nout\n');
      const none = await cli(withServer('run', '--follow', path()), { env: { FORCE_COLOR: '1', NO_COLOR: '1' } });
      expect(none.stdout).to.contain('Executing step: paint');
      expect(none.stdout).to.not.match(ANSI);
    });
  });

  describe('bin/conveyor', () => {
    const bin = join(repoRoot, 'bin/conveyor');

    it('is an executable POSIX sh script', () => {
      expect(statSync(bin).mode & 0o111).to.not.equal(0);
    });

    it('runs the CLI with the pinned node, also through a symlink to it from elsewhere', async () => {
      const direct = await cli(withServer('get', 'definitions'), { command: [bin] });
      expect(direct.code, direct.stderr).to.equal(0);
      expect(direct.stdout).to.match(/^pipeline +1\.0\.0 +yes/m);

      const linkDir = mkdtempSync(join(tmpdir(), 'conveyor-bin-'));
      try {
        // a relative link to an absolute link, as npm and users make them
        symlinkSync(bin, join(linkDir, 'real-link'));
        symlinkSync('real-link', join(linkDir, 'conveyor'));
        const linked = await cli(withServer('get', 'definitions', 'pipeline', '-o', 'json'), { command: [join(linkDir, 'conveyor')] });
        expect(linked.code, linked.stderr).to.equal(0);
        expect(JSON.parse(linked.stdout)).to.include({ name: 'pipeline', builtIn: true });
      } finally {
        rmSync(linkDir, { recursive: true, force: true });
      }
    });

    it('falls back to node on PATH when the repository has no node_modules/.bin/node, and says when that node is too old', async () => {
      const fake = mkdtempSync(join(tmpdir(), 'conveyor-fake-repo-'));
      try {
        // A copy of the wrapper in a tree without node_modules, whose src links to ours.
        mkdirSync(join(fake, 'bin'));
        mkdirSync(join(fake, 'pathbin'));
        copyFileSync(bin, join(fake, 'bin/conveyor'));
        chmodSync(join(fake, 'bin/conveyor'), 0o755);
        symlinkSync(join(repoRoot, 'src'), join(fake, 'src'));
        symlinkSync(process.execPath, join(fake, 'pathbin/node'));
        const pathWithNode24 = `${join(fake, 'pathbin')}:/usr/bin:/bin`;
        const ok = await cli(withServer('get', 'definitions'), { command: [join(fake, 'bin/conveyor')], env: { PATH: pathWithNode24 } });
        expect(ok.code, ok.stderr).to.equal(0);
        expect(ok.stdout).to.match(/^pipeline +1\.0\.0 +yes/m);

        // A "node" that reports version 20.
        rmSync(join(fake, 'pathbin/node'));
        writeFileSync(join(fake, 'pathbin/node'), '#!/bin/sh\necho 20\n');
        chmodSync(join(fake, 'pathbin/node'), 0o755);
        const old = await cli(['--help'], { command: [join(fake, 'bin/conveyor')], env: { PATH: pathWithNode24 } });
        expect(old.code).to.equal(1);
        expect(old.stderr).to.contain('needs Node 24 or newer, found Node 20 on PATH');
      } finally {
        rmSync(fake, { recursive: true, force: true });
      }
    });
  });
});
