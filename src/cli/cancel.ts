// `conveyor cancel RUNID`: stop a run; it ends Cancelled and keeps its log.
import type { Command } from 'commander';
import { clientFor, exitOnUsageError, terminal } from './client.ts';
import { formatPhase } from './output.ts';

export function registerCancel(program: Command): void {
  program
    .command('cancel')
    .description('cancel a pending or running run')
    .argument('<runid>', 'the run id')
    .exitOverride(exitOnUsageError)
    .action(async (runid: string, _opts: unknown, command: Command) => {
      const client = clientFor(command);
      const term = terminal();
      const answer = await client.request<{ runid: string; phase: string }>('POST', `/runs/${encodeURIComponent(runid)}/cancel`);
      term.print(`Cancelled run ${answer.runid} (phase: ${formatPhase(answer.phase, term.style)})`);
    });
}
