// Local mode: what a step prints and what it is given. Output of any shape keeps the server
// up and bounded, a step sees a clean environment, and a step that cannot start fails
// cleanly.
import { expect } from 'chai';
import { LINE_CONTINUES } from '../../src/logs/line-splitter.ts';
import { DOLLAR_STEP } from '../support/dollar-step.ts';
import { pipeline, request, waitForRun } from '../support/http.ts';
import { startServer, type TestServer } from '../support/server.ts';

describe('step output and environment (local mode)', () => {
  let server: TestServer;
  // Also the server's bearer token (local mode then asks every request for it).
  const secret = `s3cr3t-token-${process.pid}-0123456789`;
  before(async () => {
    // The helpers send the token as a client would (see test/support/auth.ts).
    server = await startServer({
      token: secret,
      args: ['--max-line-bytes', '65536'],
      env: { CONVEYOR_TOKEN: secret, SERVER_ONLY_SECRET: secret, HOME: '/root-of-the-server' },
    });
  });
  after(async () => {
    await server.stop();
    server.cleanup();
  });

  async function messages(runid: string): Promise<string[]> {
    return (await request(server.url, 'GET', `/logs?runid=${runid}`)).body.map((l: any) => l.message);
  }

  it('splits a line longer than --max-line-bytes into marked parts that join back to it', async () => {
    // 200,000 bytes and no newline at all, then a normal line.
    const res = await request(server.url, 'POST', '/resources', pipeline('long-line', [['print', "head -c 200000 /dev/zero | tr '\\0' a; echo; echo after"]]));
    expect((await waitForRun(server.url, res.body.runid)).phase).to.equal('Succeeded');
    const lines = (await messages(res.body.runid)).slice(1, -1);
    expect(lines).to.have.lengthOf(5);
    expect(lines.slice(0, 3).every((l) => l.endsWith(LINE_CONTINUES) && l.length === 65536 + LINE_CONTINUES.length)).to.equal(true);
    expect(lines.slice(0, 4).map((l) => l.replace(LINE_CONTINUES, '')).join('')).to.equal('a'.repeat(200_000));
    expect(lines[4]).to.equal('after');
  });

  it('gives steps a clean environment: none of the server\'s, HOME is the workspace', async () => {
    const res = await request(server.url, 'POST', '/resources', pipeline('clean-env', [['show', 'env | sort']], { env: [{ name: 'MINE', value: 'yes' }] }));
    expect((await waitForRun(server.url, res.body.runid)).phase).to.equal('Succeeded');
    const env = Object.fromEntries(
      (await messages(res.body.runid))
        .filter((l) => /^[A-Za-z_][A-Za-z0-9_]*=/.test(l))
        .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
    );
    expect(JSON.stringify(env)).not.to.include(secret);
    expect(env).not.to.have.any.keys('CONVEYOR_TOKEN', 'SERVER_ONLY_SECRET', 'CONVEYOR_LOG_LEVEL');
    expect(env.HOME).to.equal(env.CONVEYOR_WORKSPACE);
    expect(env).to.include({ CONVEYOR_RUN_ID: res.body.runid, CONVEYOR_STEP: 'show', MINE: 'yes' });
    expect(env.PATH).to.be.a('string');
    expect(env.LANG).to.be.a('string');
  });

  it("runs a step's command and env values as written ($$ is the shell's pid), as Kubernetes mode does", async () => {
    const res = await request(server.url, 'POST', '/resources', pipeline('dollars', [['dollars', DOLLAR_STEP.command]], { env: DOLLAR_STEP.env }));
    expect((await waitForRun(server.url, res.body.runid)).phase).to.equal('Succeeded');
    expect((await messages(res.body.runid)).slice(1, -1)).to.deep.equal(DOLLAR_STEP.printed);
  });

  it('fails the step and the run when a step cannot be started, leaving nothing Running', async () => {
    // The first step removes the workspace: the second cannot be started in it.
    const res = await request(server.url, 'POST', '/resources', pipeline('unstartable', [['remove', 'cd / && rm -rf "$CONVEYOR_WORKSPACE"'], ['stranded', 'echo never'], ['later', 'echo never']]));
    const run = await waitForRun(server.url, res.body.runid, undefined, 10_000);
    expect(run).to.include({ phase: 'Failed', reason: 'StartFailed' });
    expect(run.steps.map((s: any) => s.phase)).to.deep.equal(['Succeeded', 'Failed', 'Skipped']);
    const log = await messages(res.body.runid);
    expect(log.some((l) => l.startsWith('Step failed to start:'))).to.equal(true);
    expect(log).not.to.include('never');
  });

  it('refuses a command that no process could be given (a NUL byte, too long) with a 400 naming the field', async () => {
    const nul = await request(server.url, 'POST', '/resources', pipeline('nul-byte', [['ok', 'true'], ['bad', 'echo a\u0000b']]));
    expect(nul.status).to.equal(400);
    expect(nul.body.error).to.include('spec.steps[1].command').and.include('NUL');
    const long = await request(server.url, 'POST', '/resources', pipeline('too-long', [['bad', `echo ${'x'.repeat(140_000)}`]]));
    expect(long.status).to.equal(400);
    expect(long.body.error).to.include('spec.steps[0].command');
    const env = await request(server.url, 'POST', '/resources', pipeline('nul-env', [['ok', 'true']], { env: [{ name: 'A', value: 'x\u0000y' }] }));
    expect(env.status).to.equal(400);
    expect(env.body.error).to.include('spec.env[0].value');
    for (const name of ['nul-byte', 'too-long', 'nul-env']) expect((await request(server.url, 'GET', `/resources/pipeline/${name}`)).status).to.equal(404);
  });
});
