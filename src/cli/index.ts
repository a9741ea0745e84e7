// The `conveyor` command.
import { Command } from 'commander';
import { registerServe } from './serve.ts';

export function buildProgram(): Command {
  const program = new Command('conveyor')
    .description('Conveyor: a Kubernetes-native CI/CD control plane')
    .option('--server <url>', 'API server for client commands (env CONVEYOR_SERVER)', process.env.CONVEYOR_SERVER ?? 'http://127.0.0.1:8080');
  registerServe(program);
  return program;
}
