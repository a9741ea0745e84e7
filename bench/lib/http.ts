// A keep-alive JSON client on node:http, light enough that the server stays the bottleneck.
import { Agent, request } from 'node:http';

export interface Reply {
  status: number;
  text: string;
}

export class HttpClient {
  readonly agent: Agent;
  private readonly base: URL;

  constructor(url: string, sockets: number) {
    this.base = new URL(url);
    this.agent = new Agent({ keepAlive: true, maxSockets: sockets, maxFreeSockets: sockets });
  }

  send(method: string, path: string, body?: unknown): Promise<Reply> {
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    return new Promise((resolve, reject) => {
      const req = request(
        {
          host: this.base.hostname,
          port: this.base.port,
          method,
          path,
          agent: this.agent,
          headers: payload ? { 'content-type': 'application/json', 'content-length': payload.length } : {},
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
          res.on('error', reject);
        },
      );
      req.on('error', reject);
      req.end(payload);
    });
  }

  close(): void {
    this.agent.destroy();
  }
}

export function pipelineResource(name: string, steps: [string, string][]) {
  return { name, resource: 'pipeline', spec: { image: 'jimjuniorb/hello-node:1.2.3', steps: steps.map(([n, command]) => ({ name: n, command })) } };
}

export const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

// POST /resources/ and the run id it answers, or an error naming what was wrong.
export async function createRun(client: HttpClient, name: string, steps: [string, string][]): Promise<string> {
  const reply = await client.send('POST', '/resources/', pipelineResource(name, steps));
  if (reply.status !== 201) throw new Error(`POST /resources/ ${name}: ${reply.status} ${reply.text}`);
  const body = JSON.parse(reply.text) as { runid?: string; name?: string };
  if (body.name !== name || !UUID_V4.test(body.runid ?? '')) throw new Error(`POST /resources/ ${name}: unexpected body ${reply.text}`);
  return body.runid!;
}
