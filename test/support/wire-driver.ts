// A driver of upstream Conveyor CI's current generation (0.5+), written here against the
// wire itself (subjects and payloads as upstream's pkg/driver-runtime sends them), with the
// official NATS client: what any driver in any language does.
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { AckPolicy, jetstream, jetstreamManager, type JetStreamClient, type JsMsg } from '@nats-io/jetstream';

export interface ReceivedEvent {
  event: string;
  payload: string;
  id: string;
  run_id: string;
}

export interface DriverContext {
  event: ReceivedEvent;
  resource: Record<string, unknown>;
  log(message: string): Promise<void>;
}

export interface DriverOutcome {
  success: boolean;
  message: string;
  data?: unknown;
}

export interface WireDriverOptions {
  natsUrl: string;
  name: string;
  // The subject its consumer filters (`resources.<type>` or `drivers.<name>.resources.<type>`).
  subject: string;
  handle(ctx: DriverContext): Promise<DriverOutcome | 'crash'>;
  ackWaitMs?: number;
  // Credentials, where the NATS server requires them (the chart's always does).
  user?: string;
  pass?: string;
}

export interface WireDriver {
  received: ReceivedEvent[];
  // Ends the connection without acking what is in hand: a crash, as the bus sees it.
  crash(): Promise<void>;
  stop(): Promise<void>;
}

// A JetStream publish fails while the server restarts (no responders, timeouts): a driver
// retries, as the NATS client's own reconnect does for core messages.
async function retrying<T>(attempt: () => Promise<T>): Promise<T> {
  for (let i = 0; ; i++) {
    try {
      return await attempt();
    } catch (err) {
      if (i >= 50) throw err;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

export async function startWireDriver(o: WireDriverOptions): Promise<WireDriver> {
  const nc: NatsConnection = await connect({
    servers: o.natsUrl,
    name: o.name,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 250,
    ...(o.user !== undefined ? { user: o.user, pass: o.pass } : {}),
  });
  const jsm = await jetstreamManager(nc);
  // Like upstream's manager: a consumer on `messages` named after the driver, filtered to its
  // subjects, explicit ack, one message in hand at a time.
  const config = {
    durable_name: o.name,
    ack_policy: AckPolicy.Explicit,
    max_ack_pending: 1,
    filter_subject: o.subject,
    ack_wait: (o.ackWaitMs ?? 30_000) * 1_000_000,
  };
  try {
    await jsm.consumers.info('messages', o.name);
    await jsm.consumers.update('messages', o.name, { ack_wait: config.ack_wait });
  } catch {
    await jsm.consumers.add('messages', config);
  }
  const js: JetStreamClient = jetstream(nc);
  const consumer = await js.consumers.get('messages', o.name);
  const messages = await consumer.consume({ max_messages: 1 });
  const received: ReceivedEvent[] = [];
  let crashed = false;

  const handle = async (m: JsMsg) => {
    const event = m.json<ReceivedEvent>();
    received.push(event);
    const resource = JSON.parse(event.payload) as Record<string, unknown>;
    const log = async (message: string) => {
      const line = { runid: event.run_id, driver: o.name, pipeline: String(resource.pipeline ?? ''), timestamp: new Date().toISOString(), message };
      const data = JSON.stringify(line);
      await retrying(() => js.publish(`logs.${event.run_id}`, data));
      nc.publish(`live.logs.${event.run_id}.${o.name}`, data);
    };
    const outcome = await o.handle({ event, resource, log });
    if (outcome === 'crash' || crashed) return; // dies with the event in hand, never acked
    const result = JSON.stringify({
      event: 'driver.result',
      run_id: event.run_id,
      resource,
      driverresult: { success: outcome.success, message: outcome.message, data: outcome.data ?? null, driver: o.name },
    });
    await retrying(() => js.publish('pipelines.driver.result', result));
    m.ack();
  };
  const loop = (async () => {
    for await (const m of messages) {
      if (crashed) break;
      await handle(m);
    }
  })().catch(() => undefined);

  return {
    received,
    async crash() {
      crashed = true;
      await nc.close();
      await loop;
    },
    async stop() {
      messages.stop();
      await nc.drain();
      await loop;
    },
  };
}
