// The `conveyor` command.
import { Command } from 'commander';
import { registerApply } from './apply.ts';
import { registerCancel } from './cancel.ts';
import { registerCleanup } from './cleanup.ts';
import { registerGet } from './get.ts';
import { registerLogs } from './logs.ts';
import { registerRun } from './run.ts';
import { registerServe } from './serve.ts';

export function buildProgram(): Command {
  const program = new Command('conveyor')
    .description('Conveyor: a Kubernetes-native CI/CD control plane')
    .option('--server <url>', 'API server for client commands (env CONVEYOR_SERVER)', process.env.CONVEYOR_SERVER ?? 'http://127.0.0.1:8080')
    .option('--token <token>', 'bearer token for the server (env CONVEYOR_TOKEN)')
    .option('--kube', "authenticate with the current kubeconfig context's credentials, as kubectl does");
  registerServe(program);
  registerRun(program);
  registerLogs(program);
  registerGet(program);
  registerCancel(program);
  registerApply(program);
  registerCleanup(program);
  return program;
}
