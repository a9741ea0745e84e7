// Starts the real server (`conveyor serve`) as a child process on a free port with its own
// data directory, the way a user runs it: in local mode, or, when the cluster tier runs the
// integration scenarios (CONVEYOR_TEST_MODE=kubernetes), in Kubernetes mode in a namespace
// of its own on the test cluster, so that each server leads its own controller.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { forgetToken, registerToken } from './auth.ts';

export const repoRoot = resolve(import.meta.dirname, '../..');
export const mainScript = join(repoRoot, 'src/main.ts');

export interface TestServer {
  url: string;
  wsUrl: string;
  dataDir: string;
  process: ChildProcess;
  output: string[];
  // The bearer token the test helpers send it (Kubernetes mode), if any.
  token?: string;
  // SIGTERM and wait; resolves with the exit code.
  stop(): Promise<number | null>;
  // SIGKILL and wait: a crash, not a shutdown.
  kill(): Promise<void>;
  // Removes the data directory too (after stop or kill).
  cleanup(): void;
}

export interface StartOptions {
  dataDir?: string;
  args?: string[];
  env?: NodeJS.ProcessEnv;
  // A token the test helpers send this server (see ./auth.ts).
  token?: string;
}

export type ServerMode = 'local' | 'kubernetes';

export function serverMode(): ServerMode {
  return process.env.CONVEYOR_TEST_MODE === 'kubernetes' ? 'kubernetes' : 'local';
}

/** A suite's title with the mode its servers run in, e.g. `logs (kubernetes mode)`. */
export function inMode(title: string): string {
  return `${title} (${serverMode()} mode)`;
}

// What a server started in the test's mode needs beyond the caller's flags.
async function modeTarget(args: string[]): Promise<{ args: string[]; env: NodeJS.ProcessEnv; cleanup: () => void; token?: string }> {
  if (serverMode() === 'local' || args.includes('--mode')) return { args: [], env: {}, cleanup: () => undefined };
  const cluster = await import('../cluster/support/namespaces.ts');
  const namespace = await cluster.createScenarioNamespace();
  return {
    // Auth stays on: the helpers call with a token of a test client granted what they do.
    token: await cluster.scenarioToken(namespace),
    args: ['--mode', 'kubernetes', '--namespace', namespace],
    env: { KUBECONFIG: cluster.kubeconfigPath() },
    cleanup: () => cluster.deleteScenarioNamespace(namespace),
  };
}

// Servers still running, so that a failed test can show what they logged as errors.
const liveServers = new Set<TestServer>();

/** The error lines (pino level 50 and up) servers still running have logged. */
export function serverErrors(): string[] {
  return [...liveServers].flatMap((s) =>
    s.output.filter((line) => {
      try {
        return (JSON.parse(line) as { level?: number }).level! >= 50;
      } catch {
        return false;
      }
    }),
  );
}

export function newDataDir(): string {
  return mkdtempSync(join(tmpdir(), 'conveyor-test-'));
}

export async function startServer(options: StartOptions = {}): Promise<TestServer> {
  const dataDir = options.dataDir ?? newDataDir();
  const target = await modeTarget(options.args ?? []);
  const child = spawn(process.execPath, [mainScript, 'serve', '--port', '0', '--data-dir', dataDir, ...target.args, ...(options.args ?? [])], {
    env: { ...process.env, CONVEYOR_LOG_LEVEL: 'info', ...target.env, ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output: string[] = [];
  createInterface({ input: child.stderr! }).on('line', (l) => output.push(l));
  const exited = new Promise<number | null>((res) => child.once('exit', (code) => res(code)));
  const url = await new Promise<string>((res, rej) => {
    const timer = setTimeout(() => rej(new Error(`server did not start:\n${output.join('\n')}`)), 15_000);
    createInterface({ input: child.stdout! }).on('line', (line) => {
      output.push(line);
      try {
        const entry = JSON.parse(line) as { url?: string };
        if (entry.url) {
          clearTimeout(timer);
          res(entry.url);
        }
      } catch {
        // not a JSON log line
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      rej(new Error(`server exited with ${code} before listening:\n${output.join('\n')}`));
    });
  });
  const token = options.token ?? target.token;
  if (token) registerToken(url, token);
  const server: TestServer = {
    url,
    token,
    wsUrl: url.replace(/^http/, 'ws'),
    dataDir,
    process: child,
    output,
    async stop() {
      if (child.exitCode !== null) return child.exitCode;
      child.kill('SIGTERM');
      return exited;
    },
    async kill() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGKILL');
      await exited;
    },
    cleanup() {
      forgetToken(url);
      rmSync(dataDir, { recursive: true, force: true });
      target.cleanup();
    },
  };
  liveServers.add(server);
  void exited.then(() => liveServers.delete(server));
  return server;
}

/**
 * A server for one suite (call in the describe body): started before its tests with
 * `options`, stopped and its data removed after them.
 */
export function suiteServer(options?: StartOptions): { readonly server: TestServer } {
  let server: TestServer | undefined;
  before(async () => {
    server = await startServer(options);
  });
  after(async () => {
    await server?.stop();
    server?.cleanup();
  });
  return {
    get server(): TestServer {
      if (!server) throw new Error('the suite server is started in before(): use it inside a hook or a test');
      return server;
    },
  };
}
