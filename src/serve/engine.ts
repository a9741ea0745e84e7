// What differs between local and Kubernetes mode, behind one shape: where state lives,
// who executes runs, and how a run is cancelled. The HTTP server on top is the same.
import type { RunControl } from '../api/context.ts';
import type { RequestAuth } from '../api/auth/types.ts';
import type { LogArchive, LogHub } from '../logs/index.ts';
import type { Metrics } from '../observability/metrics.ts';
import type { Store } from '../store/index.ts';

export interface Engine {
  mode: 'local' | 'kubernetes';
  store: Store;
  hub: LogHub;
  archive: LogArchive;
  runs: RunControl;
  metrics: Metrics;
  driverFor: (resourceType: string) => string | null;
  requiresImage: boolean;
  // Kubernetes mode: TokenReview/SubjectAccessReview against the cluster.
  auth?: RequestAuth;
  // How the server describes itself at start-up.
  banner: string;
  details: Record<string, unknown>;
  start(): Promise<void>;
  // Stops executing runs, giving running ones `graceMs` where the mode can.
  stop(graceMs: number): Promise<void>;
}
