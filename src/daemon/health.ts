/**
 * The health server (docs/flannel-compat.md §17): `GET /healthz` 200 while the process runs, `/readyz` 200
 * only once the device, the rules and subnet.env are in place (503 before), plus Prometheus
 * `/metrics`. Exact paths, any method, like flannel.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
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

export function startHealthServer(opts: HealthServerOptions): Promise<HealthServer> {
  const server: Server = createServer((req, res) => {
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
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => {
      server.off('error', reject);
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
