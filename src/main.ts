import { buildProgram } from './cli/index.ts';

buildProgram()
  .parseAsync(process.argv)
  .catch((err: unknown) => {
    process.stderr.write(`conveyor: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  });
