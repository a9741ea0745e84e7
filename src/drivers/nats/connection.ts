// The NATS connection and the JetStream streams and consumers Conveyor owns on it. The
// streams are upstream's (same names, subjects and retention), so its drivers find them.
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { AckPolicy, DeliverPolicy, JetStreamApiCodes, JetStreamApiError, RetentionPolicy, jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { Streams, Subjects } from './wire.ts';

export interface NatsAuth {
  user?: string;
  pass?: string;
  token?: string;
}

// Conveyor's own durable consumers: one for log lines, one for driver results.
export const Consumers = { logs: 'conveyor-logs', results: 'conveyor-results' } as const;

// How long a line delivered to a server that then died waits before it is delivered again.
export const LOG_ACK_WAIT_MS = 10_000;

export async function connectNats(url: string, auth: NatsAuth, name: string): Promise<NatsConnection> {
  return connect({
    servers: url.split(',').map((s) => s.trim()),
    name,
    ...(auth.user !== undefined ? { user: auth.user, pass: auth.pass } : {}),
    ...(auth.token !== undefined ? { token: auth.token } : {}),
    // The bus may restart under us: keep reconnecting, JetStream keeps what was sent.
    maxReconnectAttempts: -1,
    reconnectTimeWait: 250,
  });
}

function isNotFound(err: unknown, code: number): boolean {
  return err instanceof JetStreamApiError && err.code === code;
}

async function ensureStream(jsm: JetStreamManager, name: string, subjects: readonly string[], retention: RetentionPolicy): Promise<void> {
  try {
    await jsm.streams.info(name);
    return;
  } catch (err) {
    if (!isNotFound(err, JetStreamApiCodes.StreamNotFound)) throw err;
  }
  try {
    await jsm.streams.add({ name, subjects: [...subjects], retention });
  } catch (err) {
    // Another server (or a driver runtime) created it meanwhile: fine if it is there now.
    await jsm.streams.info(name).catch(() => {
      throw err;
    });
  }
}

export async function ensureTopology(nc: NatsConnection): Promise<JetStreamManager> {
  const jsm = await jetstreamManager(nc);
  await ensureStream(jsm, Streams.messages.name, Streams.messages.subjects, RetentionPolicy.Interest);
  await ensureStream(jsm, Streams.pipelineEngine.name, Streams.pipelineEngine.subjects, RetentionPolicy.Workqueue);
  await ensureStream(jsm, Streams.logsEngine.name, Streams.logsEngine.subjects, RetentionPolicy.Workqueue);
  const durable = { ack_policy: AckPolicy.Explicit, deliver_policy: DeliverPolicy.All };
  for (const [stream, name, filter, ackWaitMs] of [
    [Streams.logsEngine.name, Consumers.logs, 'logs.>', LOG_ACK_WAIT_MS],
    [Streams.pipelineEngine.name, Consumers.results, Subjects.result, 30_000],
  ] as const) {
    const ack_wait = ackWaitMs * 1_000_000;
    // Not found is the only answer that means "create it"; anything else is an error.
    const existing = await jsm.consumers.info(stream, name).catch((err: unknown) => {
      if (isNotFound(err, JetStreamApiCodes.ConsumerNotFound)) return undefined;
      throw err;
    });
    if (!existing) await jsm.consumers.add(stream, { ...durable, durable_name: name, filter_subject: filter, ack_wait });
    else if (existing.config.ack_wait !== ack_wait) await jsm.consumers.update(stream, name, { ack_wait });
  }
  return jsm;
}
