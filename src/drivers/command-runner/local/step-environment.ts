// The environment a step runs with in local mode: a short, documented list, never the
// server's own environment (which may hold CONVEYOR_TOKEN, cloud credentials, the user's
// shell secrets). README "Local mode: the step environment" lists it; keep the two in step.
import { userInfo } from 'node:os';

const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export interface StepEnvironmentInput {
  runid: string;
  workspace: string;
  step: string;
  // The pipeline's own `env` entries, which win over everything but the CONVEYOR_ names.
  pipelineEnv?: { name: string; value: string }[];
  // The server's environment: only PATH, LANG and TZ are taken from it.
  serverEnv?: NodeJS.ProcessEnv;
}

function currentUser(): string | undefined {
  try {
    return userInfo().username;
  } catch {
    return undefined;
  }
}

export function stepEnvironment(input: StepEnvironmentInput): Record<string, string> {
  const server = input.serverEnv ?? process.env;
  const env: Record<string, string> = {
    // The user's tools (node, git, ...) where the server finds them.
    PATH: server.PATH || DEFAULT_PATH,
    HOME: input.workspace,
    PWD: input.workspace,
    LANG: server.LANG || 'C.UTF-8',
    SHELL: '/bin/sh',
    TERM: 'dumb',
  };
  if (server.TZ) env.TZ = server.TZ;
  const user = currentUser();
  if (user) env.USER = env.LOGNAME = user;
  for (const { name, value } of input.pipelineEnv ?? []) env[name] = value;
  env.CONVEYOR_RUN_ID = input.runid;
  env.CONVEYOR_WORKSPACE = input.workspace;
  env.CONVEYOR_STEP = input.step;
  return env;
}
