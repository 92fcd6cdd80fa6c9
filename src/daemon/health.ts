/**
 * The health server (docs/flannel-compat.md §17): `GET /healthz` 200 while the process runs, `/readyz` 200
 * only once the device, the rules and subnet.env are in place (503 before), plus Prometheus
 * `/metrics`. Exact paths, any method, like flannel.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WeftError } from '../errors.js';
import type { Registry } from './prom.js';

export interface HealthServerOptions {
  readonly host: string;
  readonly port: number;
  readonly isReady: () => boolean;
  readonly registry: Registry;
}

export interface HealthServer {
  /** The bound address (port resolved when 0 was asked). */
  readonly address: AddressInfo;
  close(): Promise<void>;
}

/**
 * Limits against clients that connect and send nothing, or send slowly (the port may face the underlay
 * with --healthz-ip 0.0.0.0): a request's headers must arrive within HEADERS_TIMEOUT_MS and the whole
 * request within REQUEST_TIMEOUT_MS (Node checks every CHECK_INTERVAL_MS; its defaults are 60 s / 300 s /
 * 30 s), and at most MAX_CONNECTIONS are open at once (more are closed on accept), so a flood costs weftd
 * a bounded number of descriptors for a few seconds. A probe or a Prometheus scrape sends its request at
 * once and is answered in milliseconds.
 */
export const HEADERS_TIMEOUT_MS = 5000;
export const REQUEST_TIMEOUT_MS = 10_000;
const CHECK_INTERVAL_MS = 1000;
export const MAX_CONNECTIONS = 128;

export function startHealthServer(opts: HealthServerOptions): Promise<HealthServer> {
  const limits = {
    headersTimeout: HEADERS_TIMEOUT_MS,
    requestTimeout: REQUEST_TIMEOUT_MS,
    connectionsCheckingInterval: CHECK_INTERVAL_MS,
  };
  const server: Server = createServer(limits, (req, res) => {
    const path = (req.url ?? '').split('?')[0];
    const text = (code: number, body: string): void => {
      res.writeHead(code, { 'content-type': 'text/plain; charset=utf-8' });
      res.end(body);
    };
    if (path === '/healthz') return text(200, 'weftd is running\n');
    if (path === '/readyz')
      return opts.isReady() ? text(200, 'weftd is ready\n') : text(503, 'weftd is not ready yet\n');
    if (path === '/metrics') {
      opts.registry.metrics().then(
        (body) => {
          res.writeHead(200, { 'content-type': opts.registry.contentType });
          res.end(body);
        },
        (err: unknown) => text(500, `metrics failed: ${(err as Error).message}\n`),
      );
      return;
    }
    text(404, 'not found: try /healthz, /readyz or /metrics\n');
  });
  server.keepAliveTimeout = 1000;
  server.maxConnections = MAX_CONNECTIONS;
  return new Promise((resolve, reject) => {
    // The bare `listen EADDRINUSE …` named neither the step nor the flags to change.
    const failed = (err: Error): void =>
      reject(
        new WeftError(
          'E_IO',
          `health server: cannot listen on ${opts.host}:${opts.port}: ${err.message}; free the port or choose others with --healthz-ip, --healthz-port and --metrics-port`,
          { cause: err },
        ),
      );
    server.once('error', failed);
    server.listen(opts.port, opts.host, () => {
      server.off('error', failed);
      resolve({
        address: server.address() as AddressInfo,
        close: () =>
          new Promise<void>((res) => {
            const t = setTimeout(() => server.closeAllConnections(), 3000);
            server.close(() => {
              clearTimeout(t);
              res();
            });
            server.closeIdleConnections();
          }),
      });
    });
  });
}
