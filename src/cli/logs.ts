// `conveyor logs RUNID [--follow]`: a run's stored log, or its live log until the run ends.
import { Option, type Command } from 'commander';
import { clientFor, exitOnUsageError, terminal, type ConveyorClient, type LogFrame, type Terminal } from './client.ts';
import { createStyle, formatLogLine, formatRunResult, type LogLineView, type RunView } from './output.ts';

const TERMINAL_PHASES = new Set(['Succeeded', 'Failed', 'Cancelled']);

export type LogFormat = 'text' | 'json';

function runPath(runid: string): string {
  return `/runs/${encodeURIComponent(runid)}`;
}

function printLine(term: Terminal, format: LogFormat, line: LogLineView | LogFrame): void {
  term.print(format === 'json' ? JSON.stringify(line) : formatLogLine(line, term.style));
}

// The websocket closes (1000) once the run has ended; its phase is normally final by then,
// but allow the store a moment in case the close raced the status write.
async function finalRun(client: ConveyorClient, runid: string): Promise<RunView> {
  const deadline = Date.now() + 5000;
  for (;;) {
    const run = await client.get<RunView>(runPath(runid));
    if (TERMINAL_PHASES.has(run.phase) || Date.now() > deadline) return run;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

// Streams a run's log until the run ends, then reports how it ended (stdout in text mode,
// stderr in json mode so the output stays one JSON line per log line) and returns the run.
export async function followRun(client: ConveyorClient, runid: string, term: Terminal, format: LogFormat = 'text'): Promise<RunView> {
  const run = await client.get<RunView>(runPath(runid));
  if (run.reason === 'NoDriver' && run.message) term.note(`conveyor: note: ${run.message}`);
  await client.followLogs(run.driver ?? 'command-runner', runid, {
    onLine: (line) => printLine(term, format, line),
    onReconnect: ({ delayMs, since, reason }) =>
      term.note(`conveyor: the log stream broke (${reason}); resuming after line ${since} in ${delayMs} ms`),
  });
  const final = await finalRun(client, runid);
  const summary = formatRunResult(final, format === 'json' ? createStyle(false) : term.style);
  if (format === 'json') term.note(summary);
  else term.print(summary);
  return final;
}

export function outputOption(): Option {
  return new Option('-o, --output <format>', 'output format').choices(['text', 'json']).default('text');
}

export function registerLogs(program: Command): void {
  program
    .command('logs')
    .description("print a run's log; with --follow, stream it until the run ends and exit with its result")
    .argument('<runid>', 'the run id (printed by `conveyor run`, listed by `conveyor get runs`)')
    .option('-f, --follow', 'stream live lines until the run ends; exit 0 if it Succeeded, 1 otherwise')
    .addOption(outputOption())
    .exitOverride(exitOnUsageError)
    .action(async (runid: string, opts: { follow?: boolean; output: LogFormat }, command: Command) => {
      const client = clientFor(command);
      const term = terminal();
      if (opts.follow) {
        const final = await followRun(client, runid, term, opts.output);
        process.exitCode = final.phase === 'Succeeded' ? 0 : 1;
        return;
      }
      // Asking for the run first turns an unknown id into "run … not found", not silence.
      await client.get(runPath(runid));
      const lines = await client.get<LogLineView[]>(`/logs?runid=${encodeURIComponent(runid)}`);
      for (const line of lines) printLine(term, opts.output, line);
    });
}
