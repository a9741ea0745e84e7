// A TCP proxy to the API server that tests can cut (connections reset, new ones refused) or
// black-hole (bytes stop flowing): real network faults between a client and the cluster.
import * as k8s from '@kubernetes/client-node';
import { isIP, createServer, connect, type Server, type Socket } from 'node:net';

export type ProxyMode = 'up' | 'reset' | 'blackhole';

/** A TCP proxy to the API server whose connections the test can break. */
export class FaultyProxy {
  readonly #targetHost: string;
  readonly #targetPort: number;
  readonly #server: Server;
  readonly #pairs = new Set<{ client: Socket; upstream: Socket }>();
  #mode: ProxyMode = 'up';
  port = 0;

  constructor(targetHost: string, targetPort: number) {
    this.#targetHost = targetHost;
    this.#targetPort = targetPort;
    this.#server = createServer((client) => this.#accept(client));
  }

  async listen(): Promise<number> {
    await new Promise<void>((done) => this.#server.listen(0, '127.0.0.1', done));
    const address = this.#server.address();
    if (!address || typeof address === 'string') throw new Error('proxy has no port');
    this.port = address.port;
    return this.port;
  }

  /** 'reset': every connection is reset and new ones too; 'blackhole': nothing flows any more. */
  set(mode: ProxyMode): void {
    this.#mode = mode;
    if (mode === 'up') return;
    for (const pair of [...this.#pairs]) {
      if (mode === 'reset') {
        pair.client.resetAndDestroy();
        pair.upstream.destroy();
        this.#pairs.delete(pair);
      } else {
        pair.client.unpipe();
        pair.upstream.unpipe();
        pair.client.pause();
        pair.upstream.pause();
      }
    }
  }

  get connections(): number {
    return this.#pairs.size;
  }

  async close(): Promise<void> {
    for (const { client, upstream } of this.#pairs) {
      client.destroy();
      upstream.destroy();
    }
    this.#pairs.clear();
    await new Promise<void>((done) => this.#server.close(() => done()));
  }

  #accept(client: Socket): void {
    client.on('error', () => {});
    if (this.#mode === 'reset') {
      client.resetAndDestroy();
      return;
    }
    if (this.#mode === 'blackhole') {
      client.pause(); // accepted, never answered: held until the proxy closes
      this.#pairs.add({ client, upstream: client });
      return;
    }
    const upstream = connect(this.#targetPort, this.#targetHost);
    upstream.on('error', () => client.destroy());
    const pair = { client, upstream };
    this.#pairs.add(pair);
    const drop = () => {
      this.#pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('close', drop);
    upstream.on('close', drop);
    client.pipe(upstream);
    upstream.pipe(client);
  }
}

/** The same cluster and user, reached through `proxyPort` on 127.0.0.1. */
export function proxiedKubeConfig(kc: k8s.KubeConfig, proxyPort: number): k8s.KubeConfig {
  const cluster = kc.getCurrentCluster();
  const user = kc.getCurrentUser();
  if (!cluster || !user) throw new Error('kubeconfig has no current cluster or user');
  const original = new URL(cluster.server);
  // The API server's certificate names 127.0.0.1; a cluster reached by DNS name keeps it for TLS.
  const host = original.hostname.replace(/^\[|\]$/g, '');
  const tlsServerName = cluster.tlsServerName ?? (isIP(host) ? undefined : host);
  const proxied = new k8s.KubeConfig();
  proxied.loadFromClusterAndUser({ ...cluster, name: `${cluster.name}-proxied`, server: `https://127.0.0.1:${proxyPort}`, tlsServerName }, user);
  return proxied;
}

export function apiServerAddress(kc: k8s.KubeConfig): { host: string; port: number } {
  const server = kc.getCurrentCluster()?.server;
  if (!server) throw new Error('kubeconfig has no server');
  const url = new URL(server);
  return { host: url.hostname.replace(/^\[|\]$/g, ''), port: Number(url.port || 443) };
}

