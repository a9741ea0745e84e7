// Follows one container's log to its end, through breaks. A broken stream reconnects with
// `sinceTime` (after a backoff) and the resume filter drops what was already delivered;
// the log is complete when the kubelet has ended the stream cleanly after the container
// terminated.
import type { KubeConfig } from '@kubernetes/client-node';
import { ResumeFilter } from '../resume-filter.ts';
import { LogApiError, podLogLines, type PodLogLine } from './pod-log-stream.ts';

export interface ContainerLogFollowOptions {
  kc: KubeConfig;
  namespace: string;
  pod: string;
  container: string;
  filter: ResumeFilter;
  // True once the container has terminated; asked only after a stream ended or broke.
  isTerminated: () => boolean | Promise<boolean>;
  // True once the pod is gone from the API server: a 404 then means there is no more log.
  // While it exists, a 404 is passing (a kubelet that just restarted does not know its
  // containers yet) and the log is asked for again.
  isPodGone?: () => boolean;
  onLine: (line: PodLogLine) => void;
  signal: AbortSignal;
  onBreak?: (err: unknown, attempt: number) => void;
  // Each log request opened to the API server (one per container, unless a stream broke).
  onConnect?: () => void;
  backoffMs?: (attempt: number) => number;
  // Longer output lines are split into marked parts (--max-line-bytes).
  maxLineBytes?: number;
  // Opens the log request; replaceable so that tests can cut a real stream mid-run.
  open?: typeof podLogLines;
}

const defaultBackoff = (attempt: number) => Math.min(5_000, 100 * 2 ** attempt);
// Consecutive 404s for a pod that still exists before its log is taken as lost (with the
// backoff above, about a minute and a half).
const MAX_NOT_FOUND = 20;

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => {
      clearTimeout(timer);
      resolve();
    }, { once: true });
  });
}

export async function followContainerLog(options: ContainerLogFollowOptions): Promise<void> {
  const open = options.open ?? podLogLines;
  const backoff = options.backoffMs ?? defaultBackoff;
  let failures = 0;
  let notFound = 0;
  for (;;) {
    if (options.signal.aborted) return;
    let clean = false;
    try {
      options.onConnect?.();
      options.filter.restart();
      const lines = open(options.kc, {
        namespace: options.namespace,
        pod: options.pod,
        container: options.container,
        follow: true,
        sinceTime: options.filter.sinceTime,
        signal: options.signal,
        maxLineBytes: options.maxLineBytes,
      });
      for await (const line of lines) {
        failures = 0;
        notFound = 0;
        if (options.filter.accept(line.ts, line.message)) options.onLine(line);
      }
      clean = true;
    } catch (err) {
      if (options.signal.aborted) return;
      // The pod is gone: nothing more can be read, and what was archived is all there is.
      // A pod that still exists answering 404 many times over has lost its log (its
      // containers were removed from the node): give up then too, rather than wait forever.
      if (err instanceof LogApiError && err.status === 404) {
        notFound++;
        if (options.isPodGone?.() !== false || notFound > MAX_NOT_FOUND) return;
      }
      // The container has not started yet (or was never created): wait and ask again.
      options.onBreak?.(err, failures);
    }
    if (clean && (await options.isTerminated())) return;
    await sleep(backoff(failures++), options.signal);
  }
}
