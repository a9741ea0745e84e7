// Reads one container's log through the Kubernetes log API, line by line, with kubelet's
// timestamps. client-node's `Log` pipes the response into a stream without passing on a
// broken connection, and a follower must see that break to resume; so the request is made
// here, with client-node supplying the server, credentials and TLS settings.
import * as http from 'node:http';
import * as https from 'node:https';
import { LINE_CONTINUES, LineSplitter, DEFAULT_MAX_LINE_BYTES } from '../line-splitter.ts';
import type { KubeConfig } from '@kubernetes/client-node';
import { nanosFromIso } from '../../domain/index.ts';

export interface PodLogLine {
  ts: string;
  message: string;
}

export interface PodLogRequest {
  namespace: string;
  pod: string;
  container: string;
  follow: boolean;
  sinceTime?: string;
  signal?: AbortSignal;
  // Longer lines are split into marked parts (see line-splitter.ts), each part after the
  // first stamped with the first one's time.
  maxLineBytes?: number;
}

export class LogApiError extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

// With timestamps=true every line the container wrote starts with its time. A line that does
// not is the kubelet speaking instead of the container ("unable to retrieve container logs
// for containerd://…" once the containers were removed, e.g. in a namespace being deleted):
// the log is not there, which the follower treats like a 404, not as a line to retry forever.
export function splitTimestamp(line: string): PodLogLine {
  const space = line.indexOf(' ');
  const stamp = space < 0 ? line : line.slice(0, space);
  let ts: string;
  try {
    ts = nanosFromIso(stamp);
  } catch {
    throw new LogApiError(404, `the log API sent no container log but: ${line.slice(0, 200)}`);
  }
  return { ts, message: space < 0 ? '' : line.slice(space + 1) };
}

export async function* podLogLines(kc: KubeConfig, request: PodLogRequest): AsyncGenerator<PodLogLine> {
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new Error('the kubeconfig has no current cluster');
  const url = new URL(`${cluster.server}/api/v1/namespaces/${request.namespace}/pods/${request.pod}/log`);
  url.searchParams.set('container', request.container);
  url.searchParams.set('timestamps', 'true');
  if (request.follow) url.searchParams.set('follow', 'true');
  if (request.sinceTime) url.searchParams.set('sinceTime', request.sinceTime);
  const options: https.RequestOptions = { method: 'GET', signal: request.signal };
  await kc.applyToHTTPSOptions(options);
  const transport = url.protocol === 'https:' ? https : http;
  const response = await new Promise<http.IncomingMessage>((resolve, reject) => {
    const req = transport.request(url, options, resolve);
    req.once('error', reject);
    req.end();
  });
  if (response.statusCode !== 200) {
    let body = '';
    for await (const chunk of response) body += String(chunk);
    let message = body;
    try {
      message = (JSON.parse(body) as { message?: string }).message ?? body;
    } catch {
      // not a Status object
    }
    throw new LogApiError(response.statusCode ?? 0, message);
  }
  // The stream may end quietly when the socket breaks; the error tells a break from a clean end.
  let broken: Error | undefined;
  response.once('error', (err) => (broken = err));
  response.once('aborted', () => (broken ??= new Error('log stream aborted')));
  const parts: string[] = [];
  const splitter = new LineSplitter(request.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES, (part) => parts.push(part));
  // Set while a long line is being cut: its later parts carry no timestamp of their own.
  let continuing: string | undefined;
  const lines = function* (): Generator<PodLogLine> {
    for (const part of parts) {
      const line = continuing === undefined ? splitTimestamp(part) : { ts: continuing, message: part };
      continuing = part.endsWith(LINE_CONTINUES) ? line.ts : undefined;
      yield line;
    }
    parts.length = 0;
  };
  try {
    for await (const chunk of response) {
      splitter.push(chunk as Buffer);
      yield* lines();
    }
  } catch (err) {
    broken ??= err as Error;
  }
  splitter.end();
  yield* lines();
  if (broken) throw broken;
  if (!response.complete) throw new Error('log stream ended before the response was complete');
}
