// `conveyor run FILE [--follow]`: create a resource from a JSON file (replacing it when it
// already exists), which starts a run; print the run id, and with --follow stream the
// run's log and exit with its result.
import type { Command } from 'commander';
import { isDefinition, isObject, readJsonInput } from './apply.ts';
import { clientFor, exitOnUsageError, terminal } from './client.ts';
import { followRun } from './logs.ts';
import { formatSubmitResult } from './output.ts';

export function registerRun(program: Command): void {
  program
    .command('run')
    .description('create or replace a resource from a JSON file, starting a run; prints the run id')
    .argument('<file>', 'JSON resource file {"name","resource","spec"}, or - for standard input')
    .option('-f, --follow', "stream the run's log until it ends; exit 0 if it Succeeded, 1 otherwise")
    .option('-q, --quiet', 'print only the run id (and, with --follow, the log)')
    .exitOverride(exitOnUsageError)
    .action(async (file: string, opts: { follow?: boolean; quiet?: boolean }, command: Command) => {
      const doc = await readJsonInput(file);
      const label = file === '-' ? 'standard input' : file;
      if (!isObject(doc)) throw new Error(`${label} must hold one resource object {"name","resource","spec"}`);
      if (isDefinition(doc)) throw new Error(`${label} is a resource definition, which does not run; use \`conveyor apply ${file}\``);
      const client = clientFor(command);
      const term = terminal();
      const result = await client.submitResource(doc);
      term.print(opts.quiet ? result.runid : formatSubmitResult(result));
      if (!opts.follow) return;
      const final = await followRun(client, result.runid, term);
      process.exitCode = final.phase === 'Succeeded' ? 0 : 1;
    });
}
