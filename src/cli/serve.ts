import type { Command } from 'commander';
import { resolveConfig, type ServeFlags } from '../config.ts';

const collect = (value: string, previous: string[] = []) => [...previous, value];

export function registerServe(program: Command): void {
  program
    .command('serve')
    .description('run the Conveyor API server')
    .option('--mode <mode>', 'local or kubernetes (env CONVEYOR_MODE; default local)')
    .option('--host <host>', 'address to listen on (env CONVEYOR_HOST; default 127.0.0.1)')
    .option('--port <port>', 'port to listen on, 0 for any free one (env CONVEYOR_PORT; default 8080)')
    .option('--data-dir <dir>', 'where local mode keeps its database and workspaces (env CONVEYOR_DATA_DIR; default ./.data)')
    .option('--max-body-bytes <n>', 'largest request body accepted (env CONVEYOR_MAX_BODY_BYTES; default 1048576)')
    .option('--concurrency <n>', 'runs executed at once in local mode (env CONVEYOR_CONCURRENCY; default: CPU count)')
    .option('--shutdown-grace <seconds>', 'how long SIGTERM waits for running runs (env CONVEYOR_SHUTDOWN_GRACE_SECONDS; default 10)')
    .option('--namespace <ns>', 'kubernetes mode: namespace of Conveyor objects (env CONVEYOR_NAMESPACE; default: own namespace in a pod, else default)')
    .option('--max-line-bytes <n>', 'longer output lines are split into marked parts (env CONVEYOR_MAX_LINE_BYTES; default 1048576)')
    .option('--retain-runs <n>', 'kubernetes mode: finished runs kept per pipeline, 0 for no limit (env CONVEYOR_RETAIN_RUNS; default 100)')
    .option('--retain-seconds <n>', 'kubernetes mode: seconds a finished run is kept, 0 for no limit (env CONVEYOR_RETAIN_SECONDS; default 604800, 7 days)')
    .option('--retain-job-seconds <n>', 'kubernetes mode: seconds after a run finished that its Job and pods are deleted, once its log is archived (env CONVEYOR_RETAIN_JOB_SECONDS; default 300)')
    .option('--nats-url <url>', 'NATS server (with JetStream) for external drivers (env CONVEYOR_NATS_URL; credentials CONVEYOR_NATS_USER/_PASSWORD or _TOKEN; default: none, only the built-in command-runner)')
    .option('--driver-timeout <seconds>', 'a run that no connected driver serves fails NoDriver after this long (env CONVEYOR_DRIVER_TIMEOUT_SECONDS; default 300)')
    .option('--log-level <level>', 'pino log level (env CONVEYOR_LOG_LEVEL; default info)')
    .option('--allowed-host <host>', 'local mode: also serve this Host name (repeatable; env CONVEYOR_ALLOWED_HOSTS, comma-separated)', collect)
    .option('--allowed-origin <origin>', 'let web pages of this origin call the API, with CORS (repeatable; env CONVEYOR_ALLOWED_ORIGINS)', collect)
    .option('--token-file <file>', 'local mode: require "Authorization: Bearer <the file\'s token>" (env CONVEYOR_TOKEN_FILE, or the token itself in CONVEYOR_TOKEN)')
    .option('--auth <true|false>', 'kubernetes mode: authenticate and authorize every request (env CONVEYOR_AUTH; default true)')
    .action(async (flags: ServeFlags) => {
      // Loaded here so that client commands do not pay for the server's start-up.
      const { createLogger, serve } = await import('../serve/index.ts');
      const config = resolveConfig(flags);
      const logger = createLogger(config.logLevel);
      const running = await serve(config, logger);
      const shutdown = (signal: string) => {
        logger.info({ signal }, 'signal received');
        // The promise to whoever sent the signal: gone within the grace period plus 5 s,
        // whatever a run, a client or a stuck write does.
        setTimeout(() => {
          logger.error({ graceMs: config.shutdownGraceMs }, 'shutdown did not finish in time; exiting anyway');
          process.exit(1);
        }, config.shutdownGraceMs + 4_500).unref();
        running.stop().then(
          () => process.exit(0),
          (err: unknown) => {
            logger.error({ err }, 'shutdown failed');
            process.exit(1);
          },
        );
      };
      process.once('SIGTERM', () => shutdown('SIGTERM'));
      process.once('SIGINT', () => shutdown('SIGINT'));
    });
}
