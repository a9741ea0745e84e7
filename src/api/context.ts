// What the API needs from the rest of the program, as interfaces, so that local and
// Kubernetes mode wire different parts behind the same routes.
import type { Logger } from 'pino';
import type { BrowserPolicy } from './auth/browser.ts';
import type { RequestAuth, User } from './auth/types.ts';
import type { RunRecord } from '../domain/index.ts';
import type { LogArchive, LogHub } from '../logs/index.ts';
import type { Metrics } from '../observability/metrics.ts';
import type { Store } from '../store/index.ts';

export interface RunControl {
  cancel(runid: string): Promise<RunRecord>;
}

// External drivers on the message bus (src/drivers/nats), when the server has one.
export interface DriverInfo {
  name: string;
  resources: string[];
  subjects: string[];
  connected: boolean;
  pending: number;
  ackPending: number;
  redelivered: number;
  lastActive: string | null;
}

export interface DriverBus {
  listDrivers(): Promise<DriverInfo[]>;
  // Lines older drivers push to Loki's API (`POST /loki/api/v1/push`).
  acceptLokiPush(body: unknown): Promise<number>;
}

export interface ApiDeps {
  store: Store;
  hub: LogHub;
  archive: LogArchive;
  runs: RunControl;
  metrics: Metrics;
  logger: Logger;
  maxBodyBytes: number;
  heartbeatMs: number;
  // Resource types a driver in this server executes; runs of others wait as Pending.
  driverFor: (resourceType: string) => string | null;
  // Kubernetes runs steps in the pipeline's image, so there it is required.
  requiresImage?: boolean;
  // Origin/Host checks (local mode checks Host too); absent: Origin checked, Host not.
  browser?: BrowserPolicy;
  // Bearer-token authentication and per-route authorization; absent: none (local mode on
  // loopback without a token), and every request acts as `defaultUser`.
  auth?: RequestAuth;
  defaultUser?: User;
  drivers?: DriverBus;
}
