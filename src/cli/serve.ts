import type { Command } from 'commander';
import { resolveConfig, type ServeFlags } from '../config.ts';

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
    .option('--retain-runs <n>', 'kubernetes mode: finished runs kept per pipeline, 0 for no limit (env CONVEYOR_RETAIN_RUNS; default 100)')
    .option('--retain-seconds <n>', 'kubernetes mode: seconds a finished run is kept, 0 for no limit (env CONVEYOR_RETAIN_SECONDS; default 604800, 7 days)')
    .option('--retain-job-seconds <n>', 'kubernetes mode: seconds after a run finished that its Job and pods are deleted, once its log is archived (env CONVEYOR_RETAIN_JOB_SECONDS; default 300)')
    .option('--log-level <level>', 'pino log level (env CONVEYOR_LOG_LEVEL; default info)')
    .action(async (flags: ServeFlags) => {
      // Loaded here so that client commands do not pay for the server's start-up.
      const { createLogger, serve } = await import('../serve/index.ts');
      const config = resolveConfig(flags);
      const logger = createLogger(config.logLevel);
      const running = await serve(config, logger);
      const shutdown = (signal: string) => {
        logger.info({ signal }, 'signal received');
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
